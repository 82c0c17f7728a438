"""Seeded stratified train/val/test assignment for builtin datasets that ship as one pool of items."""

from __future__ import annotations

import numpy as np


def stratified_split(labels: np.ndarray, val: float, test: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sorted indices per split; every class with >= 3 items lands in all three splits."""
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for value in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == value))
        n = len(members)
        n_val = max(1, int(round(n * val))) if n >= 3 else 0
        n_test = max(1, int(round(n * test))) if n >= 3 else 0
        parts["val"] += members[:n_val].tolist()
        parts["test"] += members[n_val : n_val + n_test].tolist()
        parts["train"] += members[n_val + n_test :].tolist()
    return {name: np.sort(np.array(idx, dtype=np.int64)) for name, idx in parts.items()}
