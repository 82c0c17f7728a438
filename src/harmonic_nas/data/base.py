"""The dataset contract every part of the tool codes against: named modalities, three splits,
arrays already preprocessed (no per-sample decoding while training)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

ModalityKind = Literal["image", "audio", "vector"]
Task = Literal["multiclass", "multilabel"]
SplitName = Literal["train", "val", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality looks like per sample: (C, H, W) for image/audio, (D,) for vectors."""

    kind: ModalityKind
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        expected = 1 if self.kind == "vector" else 3
        if len(self.shape) != expected:
            raise ValueError(f"a {self.kind} modality needs a shape of {expected} dims, found {self.shape}")


@dataclass
class SplitData:
    """One split: float32 arrays per modality (possibly memory-mapped) and the targets.

    targets are int64 class indices (N,) for multiclass, or a {0,1} float32 matrix (N, K) for multilabel.
    """

    inputs: dict[str, np.ndarray]
    targets: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.targets)
        for name, array in self.inputs.items():
            if len(array) != n:
                raise ValueError(f"modality {name!r} has {len(array)} samples but there are {n} targets")

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, indices: np.ndarray) -> "SplitData":
        """A copy holding only ``indices`` (sorted access keeps memory-mapped reads sequential)."""
        indices = np.asarray(indices)
        return SplitData(
            inputs={k: np.asarray(v[indices]) for k, v in self.inputs.items()},
            targets=np.asarray(self.targets[indices]),
            meta={k: np.asarray(v[indices]) for k, v in self.meta.items()},
        )


class MultimodalDataset(Protocol):
    """Any number (>= 2) of named modalities with train/val/test splits."""

    name: str
    modalities: dict[str, ModalitySpec]
    num_classes: int
    task: Task
    class_names: list[str]

    def split(self, name: SplitName) -> SplitData: ...


@dataclass
class ArrayDataset:
    """A dataset held in arrays: the in-memory implementation of the contract (tests, notebooks,
    and the form every builtin dataset and adapter opens into)."""

    name: str
    modalities: dict[str, ModalitySpec]
    num_classes: int
    task: Task
    splits: dict[str, SplitData]
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        for split_name, data in self.splits.items():
            for name, spec in self.modalities.items():
                if name not in data.inputs:
                    raise ValueError(f"split {split_name!r} lacks modality {name!r}")
                found = tuple(data.inputs[name].shape[1:])
                if found != spec.shape:
                    raise ValueError(f"split {split_name!r}, modality {name!r}: expected shape {spec.shape}, found {found}")

    def split(self, name: SplitName) -> SplitData:
        if name not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {name!r} (has {sorted(self.splits)})")
        return self.splits[name]


def limit_split(data: SplitData, limit: int | None, seed: int) -> SplitData:
    """A seeded random subset of at most ``limit`` samples, in sorted order (reproducible subsets)."""
    if limit is None or limit >= len(data):
        return data
    rng = np.random.default_rng(seed)
    return data.subset(np.sort(rng.choice(len(data), size=limit, replace=False)))
