"""Quality indicators of a set of candidates, to compare search runs and to track progress.

All objectives are minimised; ``F`` has shape ``(n, m)`` and may be empty.
"""

from __future__ import annotations

import moocore
import numpy as np

from harmonic_nas.search.nsga2 import dominance_matrix

__all__ = ["hypervolume", "pareto_mask"]


def hypervolume(F: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``F`` and bounded by ``reference``: larger is better, 0.0 for no points.

    Points that are not strictly better than ``reference`` in every objective add no volume and are
    dropped first, so a run with only over-budget candidates scores 0.0 instead of failing.
    """
    F = np.asarray(F, dtype=float)
    reference = np.asarray(reference, dtype=float)
    if F.ndim != 2 or reference.shape != (F.shape[1],):
        raise ValueError(
            f"need F of shape (n, m) and reference of shape (m,), got {F.shape} and {reference.shape}"
        )
    inside = F[np.all(F < reference, axis=1)]
    if inside.shape[0] == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=reference))


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """True for the non-dominated points of ``F``; duplicated non-dominated points are all kept."""
    return ~dominance_matrix(F).any(axis=0)
