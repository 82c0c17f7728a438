"""Synthetic spoken digits with espeak-ng: many short processes run in parallel (about 20 ms each),
decoded from stdout, so that thousands of clips take well under a minute."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from harmonic_nas.data.audio import read_audio, trim_and_fit
from harmonic_nas.data.progress import Step
from harmonic_nas.errors import UserError

# espeak-ng voice variants (their names are part of espeak-ng's data, see `espeak-ng --voices=variant`).
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3", "croak")


@dataclass(frozen=True)
class Utterance:
    text: str
    language: str
    variant: str
    speed: int  # words per minute
    pitch: int  # 0..99
    digit: int


def plan_utterances(
    count: int, languages: list[str], rng: np.random.Generator, variants: tuple[str, ...] = VARIANTS
) -> list[Utterance]:
    """``count`` digit utterances balanced over digits and languages, random voice, speed and pitch."""
    plan = []
    for i in range(count):
        digit = i % 10
        language = languages[(i // 10) % len(languages)]
        plan.append(
            Utterance(
                text=str(digit),
                language=language,
                variant=variants[int(rng.integers(len(variants)))],
                speed=int(rng.integers(110, 230)),
                pitch=int(rng.integers(15, 85)),
                digit=digit,
            )
        )
    return plan


def _speak(utterance: Utterance, length: int) -> np.ndarray:
    command = [
        "espeak-ng", "--stdout", "-v", f"{utterance.language}+{utterance.variant}",
        "-s", str(utterance.speed), "-p", str(utterance.pitch), utterance.text,
    ]
    try:
        result = subprocess.run(command, capture_output=True, check=True, timeout=60)
    except FileNotFoundError:
        raise UserError("espeak-ng is not installed: apt-get install espeak-ng") from None
    except subprocess.CalledProcessError as exc:
        raise UserError(f"espeak-ng failed for voice {utterance.language}: {exc.stderr.decode().strip()[:200]}") from None
    return trim_and_fit(read_audio(f"espeak-ng:{utterance.language}", data=result.stdout), length)


def synthesise(plan: list[Utterance], length: int, step: Step, workers: int | None = None) -> np.ndarray:
    """Clips (len(plan), length) at 8 kHz; espeak-ng processes run ``workers`` at a time."""
    workers = workers or max(1, os.cpu_count() or 1)
    out = np.empty((len(plan), length), dtype=np.float32)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for index, clip in enumerate(pool.map(lambda u: _speak(u, length), plan)):
            out[index] = clip
            step.advance()
    return out
