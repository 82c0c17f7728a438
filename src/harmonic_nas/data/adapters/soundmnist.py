"""SoundMNIST as SMIL's code loads it: mnist/{train,test}/<digit>/*.png and
sound_450/{train,test}/<digit>/<digit>_<speaker>_<n>.wav (FSDD clips). Images and clips of a digit are
paired in sorted order, like the authors' loader (1050 train / 450 test pairs in their copy);
validation is a stratified share of train."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from harmonic_nas.data.adapters.common import file_fingerprint, no_empty_class, require, stratified_holdout
from harmonic_nas.data.audio import SAMPLE_RATE, log_compress, mel_power, read_audio, trim_and_fit
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.options import Options
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.errors import UserError


class SoundMNISTOptions(Options):
    spectrogram: int = Field(32, ge=8, le=128, description="Audio is 1 x S x S log-mel.")
    per_class: int | None = Field(None, ge=1, description="Cap on pairs per digit and split (SMIL: 105 train, 45 test).")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    seed: int = 0


def _pairs(root: Path, split: str, per_class: int | None) -> list[tuple[Path, Path, int]]:
    images = require(root / "mnist" / split, "image folder")
    sounds = require(root / "sound_450" / split, "sound folder")
    pairs = []
    for digit in range(10):
        image_files = sorted((images / str(digit)).glob("*.png"))
        sound_files = sorted((sounds / str(digit)).glob("*.wav"))
        if not image_files or not sound_files:
            empty = images / str(digit) if not image_files else sounds / str(digit)
            raise UserError(f"{empty}: class {digit} has no {split} {'images' if not image_files else 'clips'}")
        n = min(len(image_files), len(sound_files), per_class or 10**9)
        pairs += [(image_files[i], sound_files[i], digit) for i in range(n)]
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
    description = "SoundMNIST, SMIL layout (mnist/ + sound_450/)"
    OptionsModel = SoundMNISTOptions

    def detect(self, path: Path) -> bool:
        return (path / "sound_450").is_dir() and (path / "mnist").is_dir()

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        assert path is not None
        files = [p for split in ("train", "test") for a, b, _ in _pairs(path, split, options.per_class) for p in (a, b)]
        return {"files": file_fingerprint(files)}

    def licences(self, options: Any) -> list[str]:
        return ["SoundMNIST: MNIST CC BY-SA 3.0, Free Spoken Digit Dataset CC BY-SA 4.0 (your copy)"]

    def build(self, ctx: BuildContext) -> None:
        assert ctx.path is not None
        opts: SoundMNISTOptions = ctx.options
        rng = np.random.default_rng(opts.seed)
        pairs = {split: _pairs(ctx.path, split, opts.per_class) for split in ("train", "test")}
        step = ctx.progress.step("reading images and clips", total=sum(len(p) for p in pairs.values()))
        data = {}
        shape = None
        for split, items in pairs.items():
            images, clips = [], []
            for image_path, sound_path, _ in items:
                image = _read_image(image_path)
                if shape is None:
                    shape = image.shape
                elif image.shape != shape:
                    raise UserError(f"{image_path}: wrong shape {image.shape}, the first image was {shape}")
                images.append(image)
                clips.append(trim_and_fit(read_audio(sound_path), SAMPLE_RATE))
                step.advance()
            spectrograms = log_compress(mel_power(np.stack(clips), opts.spectrogram, opts.spectrogram))
            data[split] = (np.stack(images)[:, None], spectrograms[:, None], np.array([d for _, _, d in items]))
        assert shape is not None
        x, a, y = data["train"]
        held = stratified_holdout(y, int(round(len(y) * opts.val_fraction)), rng)
        splits = {"train": (x[~held], a[~held], y[~held]), "val": (x[held], a[held], y[held]), "test": data["test"]}
        names = [str(d) for d in range(10)]
        ctx.declare(
            {"image": ModalitySpec("image", (1, *shape)), "audio": ModalitySpec("audio", (1, opts.spectrogram, opts.spectrogram))},
            task="multiclass", num_classes=10, class_names=names,
        )
        for split, (x, a, y) in splits.items():
            no_empty_class(np.bincount(y, minlength=10), ctx.path / "mnist" / ("test" if split == "test" else "train"), names, split)
            ctx.writer.put(split, "image", x)
            ctx.writer.put(split, "audio", a)
            ctx.writer.put_targets(split, y, "multiclass")
