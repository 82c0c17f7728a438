"""Which Pareto model to export: a key, a unique key prefix, ``best-acc`` or ``fastest``."""

from __future__ import annotations

from collections.abc import Sequence

from harmonic_nas.errors import UserError
from harmonic_nas.search.store import Evaluation

ALIASES = ("best-acc", "fastest")


def select_model(front: Sequence[Evaluation], which: str, where: str = "the run") -> Evaluation:
    """The model of ``front`` named by ``which``.

    ``best-acc``: highest val metric (ties: lower LUT latency, then key); ``fastest``: lowest LUT latency
    (ties: higher val metric, then key); anything else: a key or a prefix matching exactly one key.
    An empty front, an unknown id or an ambiguous prefix is a one-line UserError.
    """
    if not front:
        raise UserError(f"{where}: the Pareto front is empty (has the search finished a generation?)")
    if which == "best-acc":
        return min(front, key=lambda e: (-e.val_metric, e.latency_ms, e.key))
    if which == "fastest":
        return min(front, key=lambda e: (e.latency_ms, -e.val_metric, e.key))
    exact = [e for e in front if e.key == which]
    if exact:
        return exact[0]
    matches = [e for e in front if which and e.key.startswith(which)]
    ids = ", ".join(e.key[:10] for e in front)
    if not matches:
        raise UserError(f"model {which!r}: no Pareto model of {where} has this id or id prefix "
                        f"(front: {ids}; or best-acc, fastest)")
    if len(matches) > 1:
        raise UserError(f"model {which!r}: the prefix matches {len(matches)} Pareto models "
                        f"({', '.join(e.key for e in matches)}); give more characters")
    return matches[0]
