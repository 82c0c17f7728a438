"""The prepared-dataset cache: one directory per (recipe, options, sources) fingerprint holding
memory-mapped .npy arrays per split and modality plus a manifest (shapes, dtypes, CRC-32 checksums,
normalisation statistics, recipe and source versions). Written into a temporary directory and renamed
into place, so that an interrupted preparation never looks complete; checked on every open, so that a
corrupt cache is rebuilt instead of silently used."""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.config.schema import MODALITY_PATTERN
from harmonic_nas.data.base import SPLITS, ArrayDataset, ModalitySpec, SplitData, Task
from harmonic_nas.data.progress import Reporter
from harmonic_nas.errors import UserError
from harmonic_nas.jsonfile import write_json

FORMAT = 1
MANIFEST = "manifest.json"
TARGETS = "_targets"
_META_PREFIX = "_meta."
_NAME = re.compile(MODALITY_PATTERN)
_CHUNK = 8192  # samples per chunk when normalising in place


class CacheError(Exception):
    """The cache directory is missing, stale or corrupt (the caller rebuilds it)."""


@dataclass
class DatasetInfo:
    """What a builder declares about the dataset it writes."""

    name: str
    modalities: dict[str, ModalitySpec]
    task: Task
    num_classes: int
    class_names: list[str]

    def __post_init__(self) -> None:
        if len(self.modalities) < 2:
            raise ValueError(f"dataset {self.name!r} needs at least two modalities, found {list(self.modalities)}")
        for name in self.modalities:
            if not _NAME.match(name):
                raise ValueError(f"modality name {name!r} must match {_NAME.pattern}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")


class CacheWriter:
    """Creates the .npy files of one cache directory; arrays can be filled chunk by chunk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, dict[str, str]] = {split: {} for split in SPLITS}

    def allocate(self, split: str, key: str, shape: tuple[int, ...], dtype: Any = np.float32) -> np.memmap:
        """A writable memory-mapped array stored as ``split/key.npy`` (fill it, then drop the reference)."""
        if split not in self.files:
            raise ValueError(f"unknown split {split!r}")
        rel = f"{split}/{key}.npy"
        (self.root / split).mkdir(parents=True, exist_ok=True)
        self.files[split][key] = rel
        return np.lib.format.open_memmap(self.root / rel, mode="w+", dtype=np.dtype(dtype), shape=tuple(shape))

    def put(self, split: str, key: str, array: np.ndarray) -> None:
        """Store a whole array (modality inputs are stored as float32)."""
        array = np.asarray(array)
        out = self.allocate(split, key, array.shape, array.dtype)
        out[...] = array
        out.flush()
        del out

    def put_targets(self, split: str, targets: np.ndarray, task: Task) -> None:
        dtype = np.int64 if task == "multiclass" else np.float32
        self.put(split, TARGETS, np.asarray(targets, dtype=dtype))

    def put_meta(self, split: str, name: str, values: np.ndarray) -> None:
        """Per-sample provenance (source ids, voices ...) kept for audits, not for training."""
        self.put(split, _META_PREFIX + name, np.asarray(values))


def crc32_file(path: Path, block: int = 1 << 24) -> int:
    """CRC-32 of a whole file (about 3.5 GB/s here: cheap next to reading the data at all)."""
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            crc = zlib.crc32(chunk, crc)
    return crc


def nonfinite(array: np.ndarray) -> tuple[int, int | None]:
    """How many NaN or infinite values ``array`` holds and the first sample with one (chunked: the array
    may be a memory map larger than memory)."""
    count, first = 0, None
    for start in range(0, len(array), _CHUNK):
        bad = ~np.isfinite(np.asarray(array[start : start + _CHUNK]))
        if bad.any():
            count += int(bad.sum())
            if first is None:
                first = start + int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
    return count, first


def _require_usable(array: np.ndarray, dataset: str, split: str, modality: str) -> None:
    """A split with samples and finite values only: one NaN makes the normalisation statistics, hence the
    whole cached modality, NaN, and every later command would reuse it."""
    if len(array) == 0:
        raise UserError(f"dataset {dataset!r}: the {split} split has no samples")
    count, first = nonfinite(array)
    if count:
        raise UserError(f"dataset {dataset!r}: {count} NaN or infinite values in {split} {modality!r} (first in "
                        f"sample {first}); the cache was not written")


def _channel_axes(array: np.ndarray) -> tuple[int, ...]:
    return (0, 2, 3) if array.ndim == 4 else tuple(range(array.ndim))


def normalisation_stats(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per channel (C,) for 2-D kinds, one scalar (1,) for vectors, in float64, chunked."""
    n = len(array)
    channels = array.shape[1] if array.ndim == 4 else 1
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    for start in range(0, n, _CHUNK):
        chunk = np.asarray(array[start : start + _CHUNK], dtype=np.float64)
        axes = _channel_axes(chunk)
        total += chunk.sum(axis=axes).reshape(-1)
        total_sq += np.square(chunk).sum(axis=axes).reshape(-1)
        count += chunk.size // channels
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
    std[std < 1e-8] = 1.0
    return mean, std


def _normalise_in_place(array: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    shape = (1, -1, 1, 1) if array.ndim == 4 else (1,) * array.ndim
    m = mean.reshape(shape).astype(np.float32)
    s = std.reshape(shape).astype(np.float32)
    for start in range(0, len(array), _CHUNK):
        array[start : start + _CHUNK] = (array[start : start + _CHUNK] - m) / s


def class_counts(targets: np.ndarray, task: Task, num_classes: int) -> list[int]:
    if task == "multiclass":
        return np.bincount(np.asarray(targets), minlength=num_classes).tolist()
    return np.asarray(targets).sum(axis=0).astype(np.int64).tolist()


def finalise(
    writer: CacheWriter,
    info: DatasetInfo,
    header: dict[str, Any],
    progress: Reporter,
) -> dict[str, Any]:
    """Normalise every modality with train statistics, checksum every file, write the manifest last."""
    root = writer.root
    modalities: dict[str, Any] = {}
    step = progress.step("normalising", total=len(info.modalities))
    for name, spec in info.modalities.items():
        for split in SPLITS:
            if name not in writer.files[split] or TARGETS not in writer.files[split]:
                raise ValueError(f"builder wrote no {name!r} or targets for split {split!r}")
        for split in SPLITS:
            _require_usable(np.load(root / writer.files[split][name], mmap_mode="r"), info.name, split, name)
        train = np.load(root / writer.files["train"][name], mmap_mode="r")
        mean, std = normalisation_stats(train)
        del train
        for split in SPLITS:
            array = np.load(root / writer.files[split][name], mmap_mode="r+")
            expected = (array.shape[0],) + spec.shape
            if array.shape != expected or array.dtype != np.float32:
                raise ValueError(f"{split}/{name}: builder wrote {array.shape} {array.dtype}, declared {expected} float32")
            _normalise_in_place(array, mean, std)
            array.flush()
            del array
        modalities[name] = {"kind": spec.kind, "shape": list(spec.shape), "mean": mean.tolist(), "std": std.tolist()}
        step.advance()
    splits: dict[str, Any] = {}
    step = progress.step("checksumming", total=sum(len(f) for f in writer.files.values()))
    for split in SPLITS:
        targets = np.load(root / writer.files[split][TARGETS], mmap_mode="r")
        entries = {}
        for key, rel in writer.files[split].items():
            path = root / rel
            array = np.load(path, mmap_mode="r")
            entries[key] = {
                "path": rel,
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "crc32": crc32_file(path),
                "size": path.stat().st_size,
            }
            del array
            step.advance()
        splits[split] = {
            "n": int(len(targets)),
            "class_counts": class_counts(targets, info.task, info.num_classes),
            "files": entries,
        }
        del targets
    manifest = dict(header)
    manifest.update(
        {
            "format": FORMAT,
            "name": info.name,
            "task": info.task,
            "num_classes": info.num_classes,
            "class_names": info.class_names,
            "modalities": modalities,
            "splits": splits,
        }
    )
    write_json(root / MANIFEST, manifest, indent=1)
    _record_stats(root, manifest)
    return manifest


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _record_stats(root: Path, manifest: dict[str, Any]) -> None:
    """File stats at the time the checksums held: an unchanged stat lets an open skip re-reading."""
    stats = {e["path"]: _stat_key(root / e["path"]) for s in manifest["splits"].values() for e in s["files"].values()}
    write_json(root / ".verified.json", stats, indent=1)


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise CacheError(f"{root}: no manifest (not prepared, or preparation was interrupted)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CacheError(f"{path}: unreadable manifest ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise CacheError(f"{path}: cache format {manifest.get('format')} (expected {FORMAT})")
    return manifest


def verify(root: Path, manifest: dict[str, Any], full: bool = False) -> None:
    """Shapes and dtypes always; CRC-32 when a file's stat changed since it was verified, or ``full``."""
    try:
        stats = json.loads((root / ".verified.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stats = {}
    for split in SPLITS:
        if split not in manifest.get("splits", {}):
            raise CacheError(f"{root}: manifest lacks split {split!r}")
        for key, entry in manifest["splits"][split]["files"].items():
            path = root / entry["path"]
            if not path.is_file():
                raise CacheError(f"{path}: missing")
            if path.stat().st_size != entry["size"]:
                raise CacheError(f"{path}: size {path.stat().st_size}, manifest says {entry['size']}")
            try:
                array = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise CacheError(f"{path}: unreadable ({exc})") from None
            if list(array.shape) != entry["shape"] or str(array.dtype) != entry["dtype"]:
                raise CacheError(f"{path}: {array.shape} {array.dtype}, manifest says {entry['shape']} {entry['dtype']}")
            del array
            if full or stats.get(entry["path"]) != _stat_key(path):
                if crc32_file(path) != entry["crc32"]:
                    raise CacheError(f"{path}: checksum mismatch (corrupt)")


@dataclass
class CachedDataset(ArrayDataset):
    """A prepared dataset opened from its cache directory (arrays are read-only memory maps)."""

    path: Path = field(default_factory=Path)
    manifest: dict[str, Any] = field(default_factory=dict)


def open_cache(root: Path, fingerprint: str | None = None, full_verify: bool = False) -> CachedDataset:
    """Open and check a cache directory; CacheError if it is stale (other fingerprint) or corrupt."""
    manifest = read_manifest(root)
    if fingerprint is not None and manifest.get("fingerprint") != fingerprint:
        raise CacheError(f"{root}: recipe or sources changed since preparation")
    verify(root, manifest, full=full_verify)
    modalities = {
        name: ModalitySpec(kind=m["kind"], shape=tuple(m["shape"])) for name, m in manifest["modalities"].items()
    }
    splits = {}
    for split in SPLITS:
        files = manifest["splits"][split]["files"]
        arrays = {key: np.load(root / e["path"], mmap_mode="r") for key, e in files.items()}
        splits[split] = SplitData(
            inputs={name: arrays[name] for name in modalities},
            targets=arrays[TARGETS],
            meta={k.removeprefix(_META_PREFIX): v for k, v in arrays.items() if k.startswith(_META_PREFIX)},
        )
    return CachedDataset(
        name=manifest["name"],
        modalities=modalities,
        num_classes=manifest["num_classes"],
        task=manifest["task"],
        splits=splits,
        class_names=list(manifest["class_names"]),
        path=root,
        manifest=manifest,
    )
