"""Fusion encodings: the macro-architecture gene {"cells": C, "nodes": D} of stage 1 and the genotype
(the derived micro-architecture) that stage 2 hands back, both plain JSON.

Genotype layout::

    {"taps": [[modality, stage], ...],
     "cells": [{"inputs": [i, j], "nodes": [{"inputs": [a, b], "op": "sum"}, ...]}, ...]}

Cell input indices index ``taps + [outputs of earlier cells]``; node input indices index
``[cell input i, cell input j] + [outputs of earlier nodes of the same cell]``. A cell's output is its
last node (+ its first input), the network's output the last two cells, so some cells and nodes may feed
nothing: :func:`live_parts` says which ones run.

The fusion of the FB+FF baseline is not derived: it is the whole hypernet, every tap, every allowed input
pair and every operator at every node with uniform weights (:func:`dense_genotype`)::

    {"taps": [[modality, stage], ...],
     "dense": {"cells": C, "nodes": D, "operators": [...], "min_modalities": k}}
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harmonic_nas.errors import short_repr
from harmonic_nas.space.base import check_keys, match_choice
from harmonic_nas.space.encoding import InvalidArchError, stable_hash

_MACRO_KEYS = ("cells", "nodes")


class FusionMacroSpace:
    """Choices of the number of cells C and nodes per cell D (genes of stage 1, inherited and mutated)."""

    kind = "fusion_macro"

    def __init__(self, cells: Sequence[int], nodes: Sequence[int], name: str = "fusion") -> None:
        self.name = name
        self.choices: dict[str, list[int]] = {"cells": sorted(set(cells)), "nodes": sorted(set(nodes))}
        for key, values in self.choices.items():
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise InvalidArchError(f"fusion {key} choices must be positive integers, found {values}")

    def min(self) -> dict[str, int]:
        return {k: self.choices[k][0] for k in _MACRO_KEYS}

    def max(self) -> dict[str, int]:
        return {k: self.choices[k][-1] for k in _MACRO_KEYS}

    def sample(self, rng: random.Random) -> dict[str, int]:
        return {k: rng.choice(self.choices[k]) for k in _MACRO_KEYS}

    def validate(self, macro: Any) -> dict[str, int]:
        check_keys(self.name, macro, _MACRO_KEYS)
        return {k: match_choice(self.name, k, macro[k], self.choices[k]) for k in _MACRO_KEYS}

    def normalize(self, macro: Any) -> dict[str, int]:
        return self.validate(macro)

    def arch_hash(self, macro: Any) -> str:
        return stable_hash(self.normalize(macro))

    def mutate(self, macro: Any, rng: random.Random, prob: float) -> dict[str, int]:
        """Each of C and D redrawn with probability ``prob``."""
        out = self.validate(macro)
        for k in _MACRO_KEYS:
            if rng.random() < prob:
                out[k] = rng.choice(self.choices[k])
        return out

    def crossover(self, a: Any, b: Any, rng: random.Random) -> tuple[dict[str, int], dict[str, int]]:
        """Uniform crossover: C and D each swapped with p = 0.5."""
        x, y = self.validate(a), self.validate(b)
        for k in _MACRO_KEYS:
            if rng.random() < 0.5:
                x[k], y[k] = y[k], x[k]
        return x, y


def _index_pair(where: str, value: Any, size: int) -> list[int]:
    """Two distinct integer indices below ``size`` in increasing order (the only order derivation makes)."""
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
    if not ok:
        raise InvalidArchError(f"fusion genotype: {where} must be two integer indices, found {short_repr(value)}")
    i, j = value
    if not 0 <= i < j < size:
        raise InvalidArchError(
            f"fusion genotype: {where} = {[i, j]} must be two indices i < j below {size} (the inputs available there)"
        )
    return [i, j]


def dense_genotype(taps_per_modality: dict[str, int], cells: int, nodes: int, operators: Sequence[str],
                   min_modalities: int) -> dict[str, Any]:
    """The FB+FF fusion as the paper defines it: the un-derived hypernet of a macro over every tap."""
    return {"taps": [[m, s] for m, n in taps_per_modality.items() for s in range(n)],
            "dense": {"cells": cells, "nodes": nodes, "operators": list(operators), "min_modalities": min_modalities}}


def is_dense(genotype: dict[str, Any]) -> bool:
    """Whether ``genotype`` is the FB+FF hypernet rather than a derived micro-architecture."""
    return "dense" in genotype


def genotype_macro(genotype: dict[str, Any]) -> tuple[int, int]:
    """(cells, nodes per cell) of a validated genotype, derived or dense."""
    if is_dense(genotype):
        return genotype["dense"]["cells"], genotype["dense"]["nodes"]
    return len(genotype["cells"]), len(genotype["cells"][0]["nodes"])


def _validate_taps(taps: Any) -> list[list[Any]]:
    if not isinstance(taps, (list, tuple)) or len(taps) < 2:
        raise InvalidArchError(f"fusion genotype: taps must list at least two [modality, stage] pairs, found {taps!r}")
    clean_taps: list[list[Any]] = []
    for t, tap in enumerate(taps):
        if not (
            isinstance(tap, (list, tuple)) and len(tap) == 2 and isinstance(tap[0], str)
            and isinstance(tap[1], int) and not isinstance(tap[1], bool) and tap[1] >= 0
        ):
            raise InvalidArchError(f"fusion genotype: taps[{t}] must be [modality, stage index], found {tap!r}")
        clean_taps.append([tap[0], tap[1]])
    if len({(m, s) for m, s in clean_taps}) != len(clean_taps):
        raise InvalidArchError("fusion genotype: taps lists a [modality, stage] pair twice")
    return clean_taps


def _validate_dense(genotype: Any, operators: Sequence[str] | None) -> dict[str, Any]:
    check_keys("dense fusion genotype", genotype, ("taps", "dense"))
    dense = genotype["dense"]
    check_keys("dense fusion genotype: dense", dense, ("cells", "nodes", "operators", "min_modalities"))
    for key in ("cells", "nodes", "min_modalities"):
        value = dense[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidArchError(f"dense fusion genotype: dense.{key} must be a positive integer, found {value!r}")
    ops = dense["operators"]
    if not isinstance(ops, list) or not ops or not all(isinstance(op, str) for op in ops) or (
            operators is not None and any(op not in operators for op in ops)):
        allowed = f" from {list(operators)}" if operators is not None else ""
        raise InvalidArchError(f"dense fusion genotype: dense.operators must be operator names{allowed}, found {ops!r}")
    clean = {k: dense[k] for k in ("cells", "nodes", "min_modalities")}
    return {"taps": _validate_taps(genotype["taps"]), "dense": {**clean, "operators": list(ops)}}


def validate_genotype(genotype: Any, operators: Sequence[str] | None = None) -> dict[str, Any]:
    """A clean copy of ``genotype`` (derived, or FB+FF's dense one) or an InvalidArchError naming the
    first bad field.

    ``operators``: the allowed op names (default: any name); taps must be [modality, stage >= 0] pairs.
    """
    if isinstance(genotype, dict) and "dense" in genotype:
        return _validate_dense(genotype, operators)
    check_keys("fusion genotype", genotype, ("taps", "cells"))
    clean_taps = _validate_taps(genotype["taps"])
    cells = genotype["cells"]
    if not isinstance(cells, (list, tuple)) or not cells:
        raise InvalidArchError(f"fusion genotype: cells must be a non-empty list, found {cells!r}")
    clean_cells = []
    depth = None
    for p, cell in enumerate(cells):
        where = f"cells[{p}]"
        check_keys(f"fusion genotype {where}", cell, ("inputs", "nodes"))
        inputs = _index_pair(f"{where}.inputs", cell["inputs"], len(clean_taps) + p)
        nodes = cell["nodes"]
        if not isinstance(nodes, (list, tuple)) or not nodes:
            raise InvalidArchError(f"fusion genotype: {where}.nodes must be a non-empty list, found {nodes!r}")
        if depth is not None and len(nodes) != depth:
            raise InvalidArchError(f"fusion genotype: {where} has {len(nodes)} nodes, cells[0] has {depth}")
        depth = len(nodes)
        clean_nodes = []
        for d, node in enumerate(nodes):
            check_keys(f"fusion genotype {where}.nodes[{d}]", node, ("inputs", "op"))
            node_inputs = _index_pair(f"{where}.nodes[{d}].inputs", node["inputs"], 2 + d)
            op = node["op"]
            if not isinstance(op, str) or (operators is not None and op not in operators):
                allowed = f"one of {list(operators)}" if operators is not None else "an operator name"
                raise InvalidArchError(f"fusion genotype: {where}.nodes[{d}].op must be {allowed}, found {op!r}")
            clean_nodes.append({"inputs": node_inputs, "op": op})
        clean_cells.append({"inputs": inputs, "nodes": clean_nodes})
    return {"taps": clean_taps, "cells": clean_cells}


def output_cells(num_cells: int) -> list[int]:
    """The cells whose outputs form the network output: the last two (the only one if C = 1)."""
    return list(range(max(0, num_cells - 2), num_cells))


@dataclass(frozen=True)
class LiveParts:
    """What actually runs at inference: the rest of a genotype feeds nothing and is never built."""

    taps: tuple[int, ...]  # tap indices read by live cells, increasing
    cells: tuple[int, ...]  # live cell indices, increasing
    nodes: tuple[tuple[int, ...], ...]  # per cell (all cells, empty for dead ones): live node indices


def _live_nodes(cell: dict[str, Any]) -> set[int]:
    live = {len(cell["nodes"]) - 1}
    for d in reversed(range(len(cell["nodes"]))):
        if d in live:
            live.update(i - 2 for i in cell["nodes"][d]["inputs"] if i >= 2)
    return live


def live_parts(genotype: dict[str, Any]) -> LiveParts:
    """Cells reachable from the output cells, nodes reachable from each cell's last node, taps read (all
    of them in a dense genotype)."""
    num_taps = len(genotype["taps"])
    if is_dense(genotype):
        cells, nodes = genotype["dense"]["cells"], genotype["dense"]["nodes"]
        return LiveParts(tuple(range(num_taps)), tuple(range(cells)), tuple(tuple(range(nodes)) for _ in range(cells)))
    cells = genotype["cells"]
    nodes = [_live_nodes(cell) for cell in cells]
    # Input i always feeds the residual; input j only if a live node reads it.
    second = [any(1 in cell["nodes"][d]["inputs"] for d in live) for cell, live in zip(cells, nodes)]
    used = [cell["inputs"][:2] if second[p] else cell["inputs"][:1] for p, cell in enumerate(cells)]
    live_cells = set(output_cells(len(cells)))
    for p in reversed(range(len(cells))):
        if p in live_cells:
            live_cells.update(i - num_taps for i in used[p] if i >= num_taps)
    taps = sorted({i for p in live_cells for i in used[p] if i < num_taps})
    return LiveParts(
        taps=tuple(taps),
        cells=tuple(sorted(live_cells)),
        nodes=tuple(tuple(sorted(n)) if p in live_cells else () for p, n in enumerate(nodes)),
    )


def genotype_modalities(genotype: dict[str, Any]) -> list[str]:
    """The modalities whose taps the network of ``genotype`` reads, in tap order."""
    live = live_parts(genotype)
    return list(dict.fromkeys(genotype["taps"][t][0] for t in live.taps))
