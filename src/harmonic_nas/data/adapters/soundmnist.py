"""SoundMNIST as SMIL's code loads it: mnist/{train,test}/<digit>/*.png and
sound_450/{train,test}/<digit>/<digit>_<speaker>_<n>.wav (FSDD clips); validation is a stratified share
of train. Two recipes:

* ``logmel`` (default): images and clips of a digit paired in sorted order, clips as log-mel spectrograms.
* ``smil``: the pairs and features of SMIL's loader, which the Harmonic-NAS authors used: per digit,
  the first 105 training images with 35 clips of jackson, 35 of nicolas and 35 of the other speakers
  (sorted by name), the *last* 45 test images with the first 45 test clips (1050 / 450 pairs), and
  20 x 20 MFCCs (``data/mfcc.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from harmonic_nas.data.adapters.common import file_fingerprint, no_empty_class, require, stratified_holdout
from harmonic_nas.data.audio import SAMPLE_RATE, log_compress, mel_power, read_audio, trim_and_fit
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.mfcc import FRAMES, N_MFCC, smil_mfcc
from harmonic_nas.data.options import Options
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.errors import UserError

SMIL_PAIRS = {"train": 105, "test": 45}
SMIL_SPEAKERS = ("jackson", "nicolas")  # SMIL's loader names these two; every other speaker is its third group


class SoundMNISTOptions(Options):
    recipe: Literal["logmel", "smil"] = Field(
        "logmel", description="smil: SMIL's pairs (last 45 test images per digit) and 20 x 20 MFCCs, as the authors used."
    )
    spectrogram: int = Field(32, ge=8, le=128, description="logmel: audio is 1 x S x S log-mel.")
    per_class: int | None = Field(
        None, ge=1, description="Training pairs per digit (logmel: all; smil: 105, rounded down to 3 speaker groups); "
        "also the test cap unless test_per_class is set."
    )
    test_per_class: int | None = Field(None, ge=1, description="Test pairs per digit (logmel: per_class; smil: 45).")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0


def _speaker_groups(clips: list[Path], per_group: int) -> list[Path]:
    """SMIL's training clips of one digit: the first ``per_group`` of jackson, of nicolas, then of all others."""
    groups: list[list[Path]] = [[] for _ in range(len(SMIL_SPEAKERS) + 1)]
    for clip in clips:
        parts = clip.stem.split("_")
        speaker = parts[1] if len(parts) > 1 else ""
        group = groups[SMIL_SPEAKERS.index(speaker) if speaker in SMIL_SPEAKERS else -1]
        if len(group) < per_group:
            group.append(clip)
    return [clip for group in groups for clip in group]


def _select(images: list[Path], sounds: list[Path], split: str, opts: SoundMNISTOptions) -> tuple[list[Path], list[Path]]:
    """The images and clips of one digit (both non-empty, sorted) that are paired, index by index."""
    wanted = opts.test_per_class if split == "test" and opts.test_per_class else opts.per_class
    if opts.recipe == "logmel":
        n = min(len(images), len(sounds), wanted or 10**9)
        return images[:n], sounds[:n]
    n = wanted or SMIL_PAIRS[split]
    if split == "train":
        n -= n % 3
        chosen = images[:n], _speaker_groups(sounds, n // 3)
    else:
        chosen = images[max(len(images) - n, 0) :], sounds[:n]
    for found, available, what in zip(chosen, (images, sounds), ("images", "clips")):
        if len(found) < n:
            groups = " (a third each of jackson, nicolas, the others)" if what == "clips" and split == "train" else ""
            raise UserError(f"{available[0].parent}: recipe smil pairs {n} {split} {what}{groups} a digit, found "
                            f"{len(found)}; set per_class / test_per_class to what your copy holds")
    return chosen


def _pairs(root: Path, split: str, opts: SoundMNISTOptions) -> list[tuple[Path, Path, int]]:
    images = require(root / "mnist" / split, "image folder")
    sounds = require(root / "sound_450" / split, "sound folder")
    pairs = []
    for digit in range(10):
        image_files = sorted((images / str(digit)).glob("*.png"))
        sound_files = sorted((sounds / str(digit)).glob("*.wav"))
        if not image_files or not sound_files:
            empty = images / str(digit) if not image_files else sounds / str(digit)
            raise UserError(f"{empty}: class {digit} has no {split} {'images' if not image_files else 'clips'}")
        chosen_images, chosen_sounds = _select(image_files, sound_files, split, opts)
        pairs += [(a, b, digit) for a, b in zip(chosen_images, chosen_sounds)]
    return pairs


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"{path}: unreadable image ({exc})") from None
    return array


class SoundMNIST(Recipe):
    name = "soundmnist"
    modalities = ("image", "audio")
    version = 1
    needs_path = True
    description = "SoundMNIST, SMIL layout (mnist/ + sound_450/); recipe smil: SMIL's pairs and 20 x 20 MFCCs"
    OptionsModel = SoundMNISTOptions

    def detect(self, path: Path) -> bool:
        return (path / "sound_450").is_dir() and (path / "mnist").is_dir()

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        assert path is not None
        files = [p for split in ("train", "test") for a, b, _ in _pairs(path, split, options) for p in (a, b)]
        return {"files": file_fingerprint(files)}

    def licences(self, options: Any) -> list[str]:
        return ["SoundMNIST: MNIST CC BY-SA 3.0, Free Spoken Digit Dataset CC BY-SA 4.0 (your copy)"]

    def build(self, ctx: BuildContext) -> None:
        assert ctx.path is not None
        opts: SoundMNISTOptions = ctx.options
        rng = np.random.default_rng(opts.seed)
        pairs = {split: _pairs(ctx.path, split, opts) for split in ("train", "test")}
        step = ctx.progress.step("reading images and clips", total=sum(len(p) for p in pairs.values()))
        data = {}
        shape = None
        audio_side = (N_MFCC, FRAMES) if opts.recipe == "smil" else (opts.spectrogram, opts.spectrogram)
        for split, items in pairs.items():
            images, clips = [], []
            for image_path, sound_path, _ in items:
                image = _read_image(image_path)
                if shape is None:
                    shape = image.shape
                elif image.shape != shape:
                    raise UserError(f"{image_path}: wrong shape {image.shape}, the first image was {shape}")
                images.append(image)
                samples = read_audio(sound_path)
                clips.append(smil_mfcc(samples) if opts.recipe == "smil" else trim_and_fit(samples, SAMPLE_RATE))
                step.advance()
            audio = np.stack(clips) if opts.recipe == "smil" else log_compress(mel_power(np.stack(clips), *audio_side))
            data[split] = (np.stack(images)[:, None], audio[:, None], np.array([d for _, _, d in items]))
        assert shape is not None
        x, a, y = data["train"]
        held = stratified_holdout(y, int(round(len(y) * opts.val_fraction)), rng)
        splits = {"train": (x[~held], a[~held], y[~held]), "val": (x[held], a[held], y[held]), "test": data["test"]}
        names = [str(d) for d in range(10)]
        ctx.declare(
            {"image": ModalitySpec("image", (1, *shape)), "audio": ModalitySpec("audio", (1, *audio_side))},
            task="multiclass", num_classes=10, class_names=names,
        )
        for split, (x, a, y) in splits.items():
            no_empty_class(np.bincount(y, minlength=10), ctx.path / "mnist" / ("test" if split == "test" else "train"), names, split)
            ctx.writer.put(split, "image", x)
            ctx.writer.put(split, "audio", a)
            ctx.writer.put_targets(split, y, "multiclass")
