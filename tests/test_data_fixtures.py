"""Writers of small fixture datasets in the exact public formats the adapters read (written by the
tests themselves: no data file is committed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile
from PIL import Image


def digit_images(labels: np.ndarray, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """(N, side, side) float32 in [0, 1): a bar whose position encodes the digit, plus noise."""
    out = rng.uniform(0, 0.2, size=(len(labels), side, side)).astype(np.float32)
    for i, label in enumerate(labels):
        row = 2 + int(label) * (side - 4) // 10
        out[i, row : row + 2, 4:-4] = 0.9
    return out


def write_avmnist(
    root: Path, n_train: int = 120, n_test: int = 40, seed: int = 0, nested: bool = True, image_dir: str = "image",
    misleading: float = 0.0, audio_signal: float = 3.0,
) -> Path:
    """MultiBench layout: image/{train,test}_data.npy, audio/{train,test}_data.npy, {train,test}_labels.npy
    (MFAS: ``image_dir="images"``). A share ``misleading`` of the images shows another digit's bar;
    ``audio_signal`` is how loud the digit's row stands out of the audio noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.concatenate([rng.permutation(10) for _ in range(n // 10)])  # every 10 in a row hold all digits
        shown = np.where(rng.uniform(size=n) < misleading, rng.integers(10, size=n), labels)
        image = digit_images(shown, rng).reshape(n, 784)
        audio = rng.normal(size=(n, 112, 112)).astype(np.float32)
        audio[np.arange(n), labels * 10, :] += audio_signal
        if nested:
            (root / image_dir).mkdir(exist_ok=True)
            (root / "audio").mkdir(exist_ok=True)
            np.save(root / image_dir / f"{split}_data.npy", image)
            np.save(root / "audio" / f"{split}_data.npy", audio)
        else:
            np.save(root / f"{split}_data.npy", image)
            np.save(root / f"{split}_audio.npy", audio)
        np.save(root / f"{split}_labels.npy", labels)
    return root


def tone(digit: int, rng: np.random.Generator, rate: int = 8000, shift: float = 0.0) -> np.ndarray:
    t = np.arange(int(rate * rng.uniform(0.3, 0.6))) / rate
    return (0.5 * np.sin(2 * np.pi * (200 + 150 * digit + shift) * t)).astype(np.float32)


def write_soundmnist(
    root: Path, per_class: tuple[int, int] = (6, 3), seed: int = 0, speakers: tuple[str, ...] = ("jackson",),
    images_per_class: tuple[int, int] | None = None,
) -> Path:
    """SMIL layout: mnist/{train,test}/<d>/*.png and sound_450/{train,test}/<d>/<d>_<speaker>_<n>.wav;
    ``per_class`` clips of each speaker and digit, ``images_per_class`` images (default: per_class)."""
    rng = np.random.default_rng(seed)
    for split, count, n_images in zip(("train", "test"), per_class, images_per_class or per_class):
        for digit in range(10):
            images = root / "mnist" / split / str(digit)
            sounds = root / "sound_450" / split / str(digit)
            images.mkdir(parents=True, exist_ok=True)
            sounds.mkdir(parents=True, exist_ok=True)
            for k in range(n_images):
                pixels = (digit_images(np.array([digit]), rng)[0] * 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(images / f"{k:05d}.png")
            for s, speaker in enumerate(speakers):
                for k in range(count):
                    clip = tone(digit, rng, shift=40.0 * s + 7.0 * k)
                    soundfile.write(sounds / f"{digit}_{speaker}_{k}.wav", clip, 8000)
    return root


GENRES = 23


def _multi_hot(n: int, rng: np.random.Generator) -> np.ndarray:
    labels = (rng.uniform(size=(n, GENRES)) < 0.15).astype(np.int8)
    labels[np.arange(n), np.arange(n) % GENRES] = 1  # every genre present once n >= 23
    return labels


def write_mmimdb_hdf5(path: Path, sizes: tuple[int, int, int] = (46, 23, 23), seed: int = 0) -> Path:
    """multimodal_imdb.hdf5: images (N, 3, 256, 160) uint8, features (N, 300), genres (N, 23)."""
    import h5py

    rng = np.random.default_rng(seed)
    n = sum(sizes)
    genres = np.concatenate([_multi_hot(s, rng) for s in sizes])
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=rng.integers(0, 256, size=(n, 3, 256, 160), dtype=np.uint8))
        handle.create_dataset("features", data=rng.normal(size=(n, 300)).astype(np.float32))
        handle.create_dataset("genres", data=genres)
        handle.create_dataset("imdb_ids", data=np.array([f"tt{i:07d}".encode() for i in range(n)]))
    return path


def write_mmimdb_npy(root: Path, sizes: tuple[int, int, int] = (23, 23, 23), seed: int = 0) -> Path:
    """BM-NAS per-sample layout: {train,dev,test}/image_%06d.npy, text_%06d.npy, label_%06d.npy."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "dev", "test"), sizes):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        labels = _multi_hot(n, rng)
        for i in range(n):
            np.save(folder / f"image_{i:06d}.npy", rng.integers(0, 256, size=(3, 64, 40), dtype=np.uint8))
            np.save(folder / f"text_{i:06d}.npy", rng.normal(size=300).astype(np.float32))
            np.save(folder / f"label_{i:06d}.npy", labels[i])
    return root


HARM_CLASSES = ["not harmful", "somewhat harmful", "very harmful"]


def write_harmp(root: Path, sizes: tuple[int, int, int] = (12, 6, 6), seed: int = 0) -> Path:
    """MOMENTA Harm-P: annotations/{train,val,test}.jsonl (id, image, text, labels) + images/."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    words = ["vaccine", "mask", "president", "virus", "lockdown", "hospital", "news", "cat"]
    for split, n in zip(("train", "val", "test"), sizes):
        lines = []
        for i in range(n):
            label = i % 3
            name = f"{split}_{i}.png"
            color = [(40, 200, 40), (200, 200, 40), (200, 40, 40)][label]
            Image.new("RGB", (int(rng.integers(60, 90)), 70), color).save(root / "images" / name)
            text = " ".join(rng.choice(words, size=5)) + f" {['fine', 'bad', 'awful'][label]}"
            labels = [HARM_CLASSES[label]] + (["individual"] if label else [])
            lines.append(json.dumps({"id": f"{split}_{i}", "image": name, "labels": labels, "text": text}))
        (root / "annotations" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_fixture_layouts(tmp_path: Path) -> None:
    """The writers produce the public layouts the adapters are documented to read."""
    assert (write_avmnist(tmp_path / "av") / "image" / "train_data.npy").is_file()
    assert (write_soundmnist(tmp_path / "sm", (1, 1)) / "sound_450" / "test" / "9" / "9_jackson_0.wav").is_file()
    assert (write_harmp(tmp_path / "hp", (3, 3, 3)) / "annotations" / "val.jsonl").is_file()
