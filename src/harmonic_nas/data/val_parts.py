"""The val split in two disjoint parts, so that the metric the search ranks is not selected on the
samples it is measured on.

* ``select``: every choice the search makes on val (the fusion's architecture steps, the fine-tune epoch
  kept). DARTS fits alpha, beta and gamma to these samples and the best epoch is picked on them, so a
  metric measured here is optimistic.
* ``score``: touched by nothing but the final measurement of each evaluated backbone and multimodal
  candidate: the val metric NSGA-II ranks, the store keeps and the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmonic_nas.errors import UserError


@dataclass(frozen=True)
class ValParts:
    select: np.ndarray  # sorted indices into the val split
    score: np.ndarray


def val_parts(n: int, score_fraction: float, seed: int) -> ValParts:
    """A seeded partition of ``n`` val samples with ``score_fraction`` of them (at least one) in ``score``."""
    if n < 2:
        raise UserError(f"the val split has {n} sample(s); the search needs at least 2 (one part selects "
                        "architectures and epochs, the other scores them)")
    k = min(n - 1, max(1, round(n * score_fraction)))
    order = np.random.default_rng([seed, n]).permutation(n)
    return ValParts(select=np.sort(order[k:]), score=np.sort(order[:k]))
