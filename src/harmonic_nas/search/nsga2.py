"""NSGA-II building blocks (Deb et al. 2002): sorting, crowding, survival and mating selection.

All objectives are minimised. ``F`` is a float array of shape ``(n, m)``; ``n`` may be 0 or 1. The
search keeps its own small implementation (rather than driving pymoo's algorithm object) so that
every step is deterministic given a seed and supports Deb's constraint domination on a per-candidate
violation (e.g. how far a latency budget is exceeded). The tests check it against pymoo.
"""

from __future__ import annotations

import random

import numpy as np

__all__ = [
    "binary_tournament",
    "crowding_distance",
    "dominance_matrix",
    "non_dominated_ranks",
    "normalise",
    "select_survivors",
]


def _objectives(F: np.ndarray) -> np.ndarray:
    """Validate ``F`` as an ``(n, m)`` float array, so shape mistakes fail here and not deep inside."""
    F = np.asarray(F, dtype=float)
    if F.ndim != 2:
        raise ValueError(f"objectives must have shape (n, m), got {F.shape}")
    return F


def _violation(violation: np.ndarray | None, n: int) -> np.ndarray | None:
    """Validate a constraint violation vector: shape ``(n,)``, finite, >= 0 (0 means feasible)."""
    if violation is None:
        return None
    v = np.asarray(violation, dtype=float)
    if v.shape != (n,):
        raise ValueError(f"violation must have shape ({n},), got {v.shape}")
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError("violation must be finite and >= 0")
    return v


def normalise(
    F: np.ndarray, ideal: np.ndarray | None = None, nadir: np.ndarray | None = None
) -> np.ndarray:
    """Min-max scale each objective so that objectives of different units (accuracy, ms, mJ) compare.

    ``ideal``/``nadir`` default to the per-objective min/max of ``F``, giving values in [0, 1]; explicit
    bounds are used as given (points outside them land outside [0, 1]). Objectives whose range is zero
    map to 0.
    """
    F = _objectives(F)
    if F.shape[0] == 0:
        return F.copy()
    low = F.min(axis=0) if ideal is None else np.asarray(ideal, dtype=float)
    high = F.max(axis=0) if nadir is None else np.asarray(nadir, dtype=float)
    span = high - low
    constant = span == 0
    out = (F - low) / np.where(constant, 1.0, span)
    out[:, constant] = 0.0
    return out


def dominance_matrix(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """``D[i, j]`` is True when ``i`` dominates ``j``; O(n^2 m), ample for NAS populations.

    Without ``violation``: Pareto dominance (no worse everywhere, strictly better somewhere), so
    duplicates do not dominate each other. With ``violation``: Deb's constraint domination.
    """
    F = _objectives(F)
    v = _violation(violation, F.shape[0])
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    dom = le & lt
    if v is None:
        return dom
    feasible = v == 0
    both_feasible = feasible[:, None] & feasible[None, :]
    feasible_beats_infeasible = feasible[:, None] & ~feasible[None, :]
    both_infeasible = ~feasible[:, None] & ~feasible[None, :]
    smaller_violation = both_infeasible & (v[:, None] < v[None, :])
    return (both_feasible & dom) | feasible_beats_infeasible | smaller_violation


def non_dominated_ranks(F: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Front index of every point (0 = non-dominated), by fast non-dominated sorting.

    Peels fronts using domination counts: a point enters the next front once every point that
    dominates it has been ranked. ``violation`` switches to Deb's constraint domination.
    """
    dom = dominance_matrix(F, violation)
    n = dom.shape[0]
    ranks = np.full(n, -1, dtype=np.int64)
    counts = dom.sum(axis=0)
    rank = 0
    while True:
        front = np.flatnonzero((counts == 0) & (ranks < 0))
        if front.size == 0:
            return ranks
        ranks[front] = rank
        counts = counts - dom[front].sum(axis=0)
        rank += 1


def _front_crowding(F: np.ndarray) -> np.ndarray:
    """Crowding distance of one front, as pymoo's ``calc_crowding_distance`` defines it.

    Per objective (normalised within the front): the gap between a point's two neighbours in sorted
    order, infinite at the two ends; summed and divided by the number of objectives. An objective
    constant over the front carries no information and contributes 0, ends included.
    """
    n, m = F.shape
    if n <= 2:
        return np.full(n, np.inf)
    order = np.argsort(F, axis=0, kind="stable")
    sorted_F = np.take_along_axis(normalise(F), order, axis=0)
    padded = np.vstack([np.full(m, -np.inf), sorted_F, np.full(m, np.inf)])
    gaps = padded[2:] - padded[:-2]
    constant = F.max(axis=0) == F.min(axis=0)
    gaps[:, constant] = 0.0
    crowding = np.zeros((n, m))
    np.put_along_axis(crowding, order, gaps, axis=0)
    return crowding.sum(axis=1) / m


def crowding_distance(F: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Crowding distance of every point within its own front: larger means a less crowded region."""
    F = _objectives(F)
    ranks = np.asarray(ranks)
    if ranks.shape != (F.shape[0],):
        raise ValueError(f"ranks must have shape ({F.shape[0]},), got {ranks.shape}")
    crowding = np.zeros(F.shape[0])
    for rank in np.unique(ranks):
        front = np.flatnonzero(ranks == rank)
        crowding[front] = _front_crowding(F[front])
    return crowding


def select_survivors(F: np.ndarray, n: int, violation: np.ndarray | None = None) -> list[int]:
    """Indices of the ``n`` survivors of elitist NSGA-II survival, best first.

    Whole fronts are taken in rank order; the front that does not fit is cut by crowding distance,
    largest first, ties by index so that a resumed search makes the same choice.
    """
    F = _objectives(F)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    ranks = non_dominated_ranks(F, violation)
    crowding = crowding_distance(F, ranks)
    order = np.lexsort((np.arange(F.shape[0]), -crowding, ranks))
    return [int(i) for i in order[:n]]


def binary_tournament(
    rng: random.Random, ranks: np.ndarray, crowding: np.ndarray, k: int
) -> list[int]:
    """Pick ``k`` parents, each the winner of a tournament between two distinct random candidates.

    Lower rank wins, then larger crowding distance, then a coin flip; all draws come from ``rng`` so
    a seeded search is reproducible. A single candidate always wins its own tournament.
    """
    ranks = np.asarray(ranks)
    crowding = np.asarray(crowding, dtype=float)
    size = ranks.shape[0]
    if crowding.shape != (size,):
        raise ValueError(f"crowding must have shape ({size},), got {crowding.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if k > 0 and size == 0:
        raise ValueError("cannot run a tournament without candidates")
    winners: list[int] = []
    for _ in range(k):
        if size == 1:
            winners.append(0)
            continue
        a, b = rng.sample(range(size), 2)
        if ranks[a] != ranks[b]:
            winners.append(a if ranks[a] < ranks[b] else b)
        elif crowding[a] != crowding[b]:
            winners.append(a if crowding[a] > crowding[b] else b)
        else:
            winners.append(a if rng.random() < 0.5 else b)
    return winners
