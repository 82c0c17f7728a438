"""The fusion genotype: the derived micro-architecture stage 2 hands back, or FB+FF's dense hypernet.

JSON layout (what the store, fusion files and arch.json hold)::

    {"taps": [[modality, stage], ...],
     "cells": [{"inputs": [i, j], "nodes": [{"inputs": [a, b], "op": "sum"}, ...]}, ...]}

Cell input indices index ``taps + [outputs of earlier cells]``; node input indices index
``[cell input i, cell input j] + [outputs of earlier nodes of the same cell]``. A cell's output is its
last node (+ its first input), the network's output the last two cells, so some cells and nodes may feed
nothing: :attr:`Genotype.live` says which ones run.

The fusion of the FB+FF baseline is not derived: it is the whole hypernet, every tap, every allowed input
pair and every operator at every node with uniform weights (:meth:`Genotype.dense_over`)::

    {"taps": [[modality, stage], ...],
     "dense": {"cells": C, "nodes": D, "operators": [...], "min_modalities": k}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from harmonic_nas.errors import short_repr
from harmonic_nas.space.base import check_keys
from harmonic_nas.space.encoding import InvalidArchError
from harmonic_nas.space.fusion import output_cells
from harmonic_nas.space.values import Value

Tap = tuple[str, int]  # (modality, stage)


class Node(Value):
    inputs: tuple[int, int]
    op: str


class Cell(Value):
    inputs: tuple[int, int]
    nodes: tuple[Node, ...]


class DenseFusion(Value):
    cells: int
    nodes: int
    operators: tuple[str, ...]
    min_modalities: int


@dataclass(frozen=True)
class LiveParts:
    """What actually runs at inference: the rest of a genotype feeds nothing and is never built."""

    taps: tuple[int, ...]  # tap indices read by live cells, increasing
    cells: tuple[int, ...]  # live cell indices, increasing
    nodes: tuple[tuple[int, ...], ...]  # per cell (all cells, empty for dead ones): live node indices


class Genotype(Value):
    """A fusion network over ``taps``: derived ``cells``, or FB+FF's ``dense`` hypernet (exactly one)."""

    taps: tuple[tuple[str, int], ...]
    cells: tuple[Cell, ...] = ()
    dense: DenseFusion | None = None

    @classmethod
    def parse(cls, genotype: Any, operators: Sequence[str] | None = None) -> Genotype:
        """``genotype`` (its JSON, or a genotype) checked, or an InvalidArchError naming the first bad field.

        ``operators``: the allowed op names (default: any name); taps must be [modality, stage >= 0] pairs.
        """
        raw = genotype.to_json() if isinstance(genotype, Genotype) else genotype
        if isinstance(raw, dict) and "dense" in raw:
            return _parse_dense(raw, operators)
        return _parse_derived(raw, operators)

    @classmethod
    def dense_over(cls, taps_per_modality: Mapping[str, int], cells: int, nodes: int, operators: Sequence[str],
                   min_modalities: int) -> Genotype:
        """The FB+FF fusion as the paper defines it: the un-derived hypernet of a macro over every tap."""
        return cls(taps=[(m, s) for m, n in taps_per_modality.items() for s in range(n)],
                   dense=DenseFusion(cells=cells, nodes=nodes, operators=operators, min_modalities=min_modalities))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"cells"} if self.is_dense else {"dense"})

    @property
    def is_dense(self) -> bool:
        """Whether this is FB+FF's hypernet rather than a derived micro-architecture."""
        return self.dense is not None

    @property
    def macro(self) -> tuple[int, int]:
        """(cells, nodes per cell)."""
        if self.dense is not None:
            return self.dense.cells, self.dense.nodes
        return len(self.cells), len(self.cells[0].nodes)

    @property
    def outputs(self) -> list[int]:
        """The cells whose outputs form the network output."""
        return output_cells(self.macro[0])

    @cached_property
    def live(self) -> LiveParts:
        """Cells reachable from the output cells, nodes reachable from each cell's last node, taps read (all
        of them in a dense genotype)."""
        return _live_parts(self)

    @property
    def tap_modalities(self) -> list[str]:
        """The modalities of the taps in tap order, each once: the order of a network's inputs."""
        return list(dict.fromkeys(m for m, _ in self.taps))

    @property
    def modalities(self) -> list[str]:
        """The modalities whose taps the network reads, in tap order."""
        return list(dict.fromkeys(self.taps[t][0] for t in self.live.taps))

    @property
    def last_taps(self) -> dict[str, int]:
        """Per modality the network reads, its last tap read: the backbone runs up to that stage only."""
        last: dict[str, int] = {}
        for t in self.live.taps:
            modality, stage = self.taps[t]
            last[modality] = max(stage, last.get(modality, stage))
        return last


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


def _parse_taps(taps: Any) -> list[list[Any]]:
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


def _parse_dense(genotype: Any, operators: Sequence[str] | None) -> Genotype:
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
    return Genotype(taps=_parse_taps(genotype["taps"]), dense=DenseFusion(**dense))


def _parse_derived(genotype: Any, operators: Sequence[str] | None) -> Genotype:
    check_keys("fusion genotype", genotype, ("taps", "cells"))
    clean_taps = _parse_taps(genotype["taps"])
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
            clean_nodes.append(Node(inputs=node_inputs, op=op))
        clean_cells.append(Cell(inputs=inputs, nodes=clean_nodes))
    return Genotype(taps=clean_taps, cells=clean_cells)


def _live_nodes(cell: Cell) -> set[int]:
    live = {len(cell.nodes) - 1}
    for d in reversed(range(len(cell.nodes))):
        if d in live:
            live.update(i - 2 for i in cell.nodes[d].inputs if i >= 2)
    return live


def _live_parts(genotype: Genotype) -> LiveParts:
    num_taps = len(genotype.taps)
    if genotype.dense is not None:
        cells, nodes = genotype.dense.cells, genotype.dense.nodes
        return LiveParts(tuple(range(num_taps)), tuple(range(cells)), tuple(tuple(range(nodes)) for _ in range(cells)))
    cells = genotype.cells
    nodes = [_live_nodes(cell) for cell in cells]
    # Input i always feeds the residual; input j only if a live node reads it.
    second = [any(1 in cell.nodes[d].inputs for d in live) for cell, live in zip(cells, nodes)]
    used = [cell.inputs[:2] if second[p] else cell.inputs[:1] for p, cell in enumerate(cells)]
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
