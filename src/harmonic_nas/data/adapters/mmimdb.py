"""MM-IMDB in its two public forms: the multimodal_imdb.hdf5 release (images (N, 3, 256, 160) uint8,
300-d averaged word2vec ``features``, 23-genre multi-hot ``genres``; official split 15552 / 2608 / 7799
in file order) and the per-sample .npy layout written by the BM-NAS preparation
({split}/image_%06d.npy, text_%06d.npy, label_%06d.npy). Multilabel; posters are resized to
``image_size`` (128 x 80 keeps the aspect at a CPU-friendly size; the authors stretched them to 224 x 224)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from harmonic_nas.data.adapters.common import file_fingerprint, no_empty_class, require
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.options import Options
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.errors import UserError

GENRES = [
    "Drama", "Comedy", "Romance", "Thriller", "Crime", "Action", "Adventure", "Horror", "Documentary", "Mystery",
    "Sci-Fi", "Fantasy", "Family", "Biography", "War", "History", "Music", "Animation", "Musical", "Western",
    "Sport", "Short", "Film-Noir",
]
HDF5_NAME = "multimodal_imdb.hdf5"
SPLIT_DIRS = {"train": ("train",), "val": ("dev", "val"), "test": ("test",)}
_CHUNK = 256


class MMIMDBOptions(Options):
    image_size: tuple[int, int] = Field(
        (128, 80), description="Posters are resized to 3 x H x W; one number S is S x S (224: the authors' 224 x 224)."
    )
    split_sizes: tuple[int, int, int] = Field((15552, 2608, 7799), description="hdf5: train/val/test counts in file order.")

    @field_validator("image_size", mode="before")
    @classmethod
    def _square(cls, value: Any) -> Any:
        return (value, value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _check(self) -> "MMIMDBOptions":
        if min(self.image_size) < 8 or min(self.split_sizes) < 1:
            raise ValueError(f"image_size sides must be >= 8 and split sizes >= 1, found {self.image_size}, {self.split_sizes}")
        return self


def _resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area averaging when both sides shrink (no aliasing); bilinear (antialiased) when a side grows, as
    the 256 x 160 posters stretched to the authors' 224 x 224 do (area mode would repeat pixels)."""
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    if tuple(x.shape[-2:]) != tuple(size):
        grows = size[0] > x.shape[-2] or size[1] > x.shape[-1]
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True) if grows else F.interpolate(x, size=size, mode="area")
    return x.numpy()


def _chw(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim == 3 and image.shape[0] != 3 and image.shape[-1] == 3:
        image = image.transpose(2, 0, 1)
    if image.ndim != 3 or image.shape[0] != 3:
        raise UserError(f"{path}: wrong shape {image.shape}, expected a (3, H, W) or (H, W, 3) poster")
    return image


def _scale(images: np.ndarray) -> np.ndarray:
    return images / 255.0 if images.dtype == np.uint8 else images


class MMIMDB(Recipe):
    name = "mmimdb"
    modalities = ("image", "text")
    version = 1
    needs_path = True
    description = "MM-IMDB (multimodal_imdb.hdf5, or BM-NAS per-sample .npy)"
    OptionsModel = MMIMDBOptions

    def detect(self, path: Path) -> bool:
        return (path.is_file() and path.suffix in (".hdf5", ".h5")) or (path / HDF5_NAME).is_file() or (path / "train" / "label_000000.npy").is_file()

    def _hdf5(self, path: Path) -> Path | None:
        if path.is_file():
            return path
        return path / HDF5_NAME if (path / HDF5_NAME).is_file() else None

    def _sample_files(self, path: Path) -> dict[str, list[tuple[Path, Path, Path]]]:
        out = {}
        for split, names in SPLIT_DIRS.items():
            folder = next((path / n for n in names if (path / n).is_dir()), None)
            if folder is None:
                raise UserError(f"{path / names[0]}: missing MM-IMDB {split} folder (looked for {', '.join(names)})")
            labels = sorted(folder.glob("label_*.npy"))
            if not labels:
                raise UserError(f"{folder}: no label_%06d.npy files")
            triples = []
            for label in labels:
                index = label.stem.removeprefix("label_")
                image, text = folder / f"image_{index}.npy", folder / f"text_{index}.npy"
                triples.append((require(image), require(text), label))
            out[split] = triples
        return out

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        assert path is not None
        h5 = self._hdf5(path)
        if h5 is not None:
            return {"files": file_fingerprint([h5])}
        return {"files": file_fingerprint([p for t in self._sample_files(path).values() for triple in t for p in triple])}

    def licences(self, options: Any) -> list[str]:
        return ["MM-IMDB (Arevalo et al. 2017): IMDb data for non-commercial research, your copy"]

    def build(self, ctx: BuildContext) -> None:
        assert ctx.path is not None
        opts: MMIMDBOptions = ctx.options
        h5 = self._hdf5(ctx.path)
        if h5 is not None:
            self._build_hdf5(ctx, h5, opts)
        else:
            self._build_samples(ctx, opts)

    def _declare(self, ctx: BuildContext, opts: MMIMDBOptions, text_dim: int, classes: int) -> list[str]:
        names = GENRES if classes == len(GENRES) else [f"genre_{i}" for i in range(classes)]
        ctx.declare(
            {"image": ModalitySpec("image", (3, *opts.image_size)), "text": ModalitySpec("vector", (text_dim,))},
            task="multilabel", num_classes=classes, class_names=names,
        )
        return names

    def _build_hdf5(self, ctx: BuildContext, path: Path, opts: MMIMDBOptions) -> None:
        try:
            import h5py
        except ImportError:
            raise UserError("reading MM-IMDB hdf5 needs h5py: pip install h5py") from None
        try:
            handle = h5py.File(path, "r")
        except OSError as exc:
            raise UserError(f"{path}: not a readable hdf5 file ({exc})") from None
        with handle:
            for key in ("images", "features", "genres"):
                if key not in handle:
                    raise UserError(f"{path}: missing dataset {key!r} (has {', '.join(handle.keys())})")
            images, features, genres = handle["images"], handle["features"], handle["genres"]
            n = len(genres)
            if len(images) != n or len(features) != n:
                raise UserError(f"{path}: sample counts differ (images={len(images)}, features={len(features)}, genres={n})")
            if images.ndim != 4 or images.shape[1] != 3:
                raise UserError(f"{path}: images have shape {images.shape}, expected (N, 3, H, W)")
            if features.ndim != 2 or genres.ndim != 2:
                raise UserError(f"{path}: features {features.shape} / genres {genres.shape}, expected (N, D) / (N, K)")
            if sum(opts.split_sizes) != n:
                raise UserError(f"{path}: {n} samples but split_sizes {list(opts.split_sizes)} add up to {sum(opts.split_sizes)}")
            names = self._declare(ctx, opts, features.shape[1], genres.shape[1])
            bounds = np.cumsum([0, *opts.split_sizes])
            step = ctx.progress.step("reading MM-IMDB hdf5", total=n)
            for index, split in enumerate(("train", "val", "test")):
                start, stop = int(bounds[index]), int(bounds[index + 1])
                labels = np.asarray(genres[start:stop], dtype=np.float32)
                no_empty_class(labels.sum(axis=0), path, names, split)
                out = ctx.writer.allocate(split, "image", (stop - start, 3, *opts.image_size))
                for s in range(start, stop, _CHUNK):
                    e = min(s + _CHUNK, stop)
                    out[s - start : e - start] = _resize(_scale(np.asarray(images[s:e])), opts.image_size)
                    step.advance(e - s)
                out.flush()
                del out
                ctx.writer.put(split, "text", np.asarray(features[start:stop], dtype=np.float32))
                ctx.writer.put_targets(split, labels, "multilabel")

    def _build_samples(self, ctx: BuildContext, opts: MMIMDBOptions) -> None:
        assert ctx.path is not None
        files = self._sample_files(ctx.path)
        first_image, first_text, first_label = files["train"][0]
        text_dim = int(np.load(first_text).reshape(-1).shape[0])
        classes = int(np.load(first_label).reshape(-1).shape[0])
        names = self._declare(ctx, opts, text_dim, classes)
        step = ctx.progress.step("reading MM-IMDB samples", total=sum(len(v) for v in files.values()))
        for split, triples in files.items():
            out = ctx.writer.allocate(split, "image", (len(triples), 3, *opts.image_size))
            texts = np.empty((len(triples), text_dim), dtype=np.float32)
            labels = np.empty((len(triples), classes), dtype=np.float32)
            for i, (image_path, text_path, label_path) in enumerate(triples):
                image = _chw(_load(image_path), image_path)
                out[i] = _resize(_scale(image)[None], opts.image_size)[0]
                text = _load(text_path).reshape(-1)
                label = _load(label_path).reshape(-1)
                if text.shape[0] != text_dim:
                    raise UserError(f"{text_path}: wrong shape {text.shape}, expected ({text_dim},) like {first_text.name}")
                if label.shape[0] != classes:
                    raise UserError(f"{label_path}: {label.shape[0]} genres, expected {classes} like {first_label.name}")
                texts[i], labels[i] = text, label
                step.advance()
            out.flush()
            del out
            no_empty_class(labels.sum(axis=0), ctx.path / split, names, split)
            ctx.writer.put(split, "text", texts)
            ctx.writer.put_targets(split, labels, "multilabel")


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None
