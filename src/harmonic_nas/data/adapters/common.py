"""Checks shared by the adapters: every problem with a user's files becomes one UserError line that
names the file and what is wrong with it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from harmonic_nas.data.cache import nonfinite
from harmonic_nas.errors import UserError


def require(path: Path, what: str = "file") -> Path:
    if not path.exists():
        raise UserError(f"{path}: missing {what}")
    return path


def first_existing(candidates: Sequence[Path], what: str) -> Path:
    """The first of several accepted file names; the error lists them all (relative to their folder)."""
    for path in candidates:
        if path.exists():
            return path
    base = Path(os.path.commonpath(candidates)) if len(candidates) > 1 else candidates[0].parent
    others = ", ".join(str(p.relative_to(base)) for p in candidates[1:])
    raise UserError(f"{candidates[0]}: missing {what} (also looked for {others} in {base})")


def load_npy(path: Path) -> np.ndarray:
    require(path)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None


def as_2d_input(array: np.ndarray, path: Path, square_from_flat: bool = True, channels: int | None = None) -> np.ndarray:
    """(N, H, W) -> (N, 1, H, W); (N, D) with D a square -> (N, 1, s, s); (N, C, H, W) kept."""
    if array.ndim == 2 and square_from_flat:
        side = int(round(np.sqrt(array.shape[1])))
        if side * side != array.shape[1]:
            raise UserError(f"{path}: expected square images, found {array.shape[1]} values per sample")
        array = array.reshape(len(array), 1, side, side)
    elif array.ndim == 3:
        array = array.reshape(len(array), 1, *array.shape[1:])
    if array.ndim != 4 or (channels is not None and array.shape[1] != channels):
        want = f"(N, {channels}, H, W)" if channels else "(N, H, W) or (N, C, H, W)"
        raise UserError(f"{path}: wrong shape {tuple(array.shape)}, expected {want}")
    return finite(np.asarray(array, dtype=np.float32), path)


def finite(array: np.ndarray, path: Path) -> np.ndarray:
    """``array`` if every value is finite, else a UserError naming the file, the count and where."""
    count, first = nonfinite(array)
    if count:
        raise UserError(f"{path}: {count} NaN or infinite values (first in sample {first}); replace or drop "
                        "those samples")
    return array


def same_length(arrays: dict[Path, np.ndarray]) -> int:
    """All arrays of one split have one row per sample: else a label mismatch between modalities."""
    lengths = {path: len(a) for path, a in arrays.items()}
    first = next(iter(lengths))
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{p.name}={n}" for p, n in lengths.items())
        raise UserError(f"{first}: sample counts differ between modalities and labels ({listed})")
    if lengths[first] == 0:
        raise UserError(f"{first}: no samples (an empty array)")
    return lengths[first]


def class_count(labels: dict[Path, np.ndarray], train_samples: int) -> int:
    """The number of classes that integer labels 0..K-1 imply. A label so large that there would be more
    classes than training samples is a wrong label (every class needs training samples), refused before
    anything the size of K is built."""
    top, path = max((int(a.max()), p) for p, a in labels.items())
    if top + 1 > train_samples:
        raise UserError(f"{path}: label {top} implies {top + 1} classes, more than the {train_samples} training "
                        "samples; labels must be class indices 0..K-1")
    return top + 1


def class_labels(labels: np.ndarray, path: Path, num_classes: int | None = None) -> np.ndarray:
    """Integer labels 0..K-1 (one-hot rows accepted); UserError on fractions or negatives."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    labels = labels.reshape(-1)
    if labels.size and (not np.all(np.equal(np.mod(labels, 1), 0)) or labels.min() < 0):
        raise UserError(f"{path}: labels must be non-negative integers")
    labels = labels.astype(np.int64)
    if num_classes is not None and labels.size and labels.max() >= num_classes:
        raise UserError(f"{path}: label {labels.max()} out of range for {num_classes} classes")
    return labels


def no_empty_class(counts: np.ndarray, path: Path, class_names: list[str], split: str) -> None:
    empty = [class_names[i] for i in np.flatnonzero(np.asarray(counts) == 0)]
    if empty:
        raise UserError(f"{path}: class(es) {', '.join(empty[:5])} have no {split} samples")


def stratified_holdout(labels: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask of ``count`` samples drawn per class in proportion (validation from train)."""
    mask = np.zeros(len(labels), dtype=bool)
    if count <= 0:
        return mask
    order = rng.permutation(len(labels))
    share = count / len(labels)
    for value in np.unique(labels):
        members = order[labels[order] == value]
        mask[members[: int(round(len(members) * share))]] = True
    return mask


def file_fingerprint(paths: Sequence[Path]) -> str:
    """Names, sizes and modification times of the input files: a changed file rebuilds the cache."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(paths):
        st = path.stat()
        digest.update(f"{path.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
