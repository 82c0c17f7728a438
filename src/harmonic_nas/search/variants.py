"""The paper's Figure 4 ablation as variants of one search engine, plus random search at equal budget.

* ``sb-sf-hw``: the full method (searched backbones, searched fusion, hardware objectives everywhere).
* ``sb-sf``: no hardware objectives (stage-1 and multimodal ranking on the metric alone, no hardware
  loss in the fusion search); latency and energy are still measured from the LUT.
* ``fb-sf``: fixed backbones (the max subnets), searched fusion for each fusion macro choice.
* ``fb-ff``: fixed backbones and a fixed dense fusion (:func:`dense_genotype`), trained, not searched.
* ``random``: candidates drawn at random, as many stage-2 evaluations per generation as the full method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VARIANTS = ("sb-sf-hw", "sb-sf", "fb-sf", "fb-ff", "random")


@dataclass(frozen=True)
class Variant:
    name: str

    def __post_init__(self) -> None:
        if self.name not in VARIANTS:
            from harmonic_nas.errors import UserError

            raise UserError(f"variant {self.name!r}: expected one of {', '.join(VARIANTS)}")

    @property
    def hardware(self) -> bool:
        """Latency and energy are objectives (ranking and fusion loss)."""
        return self.name in ("sb-sf-hw", "random")

    @property
    def fixed_backbones(self) -> bool:
        return self.name in ("fb-sf", "fb-ff")

    @property
    def evolves(self) -> bool:
        return self.name in ("sb-sf-hw", "sb-sf")

    @property
    def is_baseline(self) -> bool:
        return self.name != "sb-sf-hw"

    def generations(self, configured: int) -> int:
        """Generations this variant runs: the configured number if it evolves or samples at random each
        generation; one otherwise (the fixed-backbone baselines evaluate every macro choice once)."""
        return configured if self.evolves or self.name == "random" else 1


def dense_genotype(taps_per_modality: Mapping[str, int], cells: int, nodes: int, operators: Sequence[str]) -> dict[str, Any]:
    """The fixed fusion of FB+FF: cell 0 fuses the deepest tap of the first two modalities (the last two
    taps if there is one), each later cell the previous cell with the deepest tap of the next modality;
    every node applies ConcatFC (or the first operator) to the previous node and the cell's second input."""
    taps = [[m, s] for m, n in taps_per_modality.items() for s in range(n)]
    deepest = [i for i, (m, s) in enumerate(taps) if s == taps_per_modality[m] - 1]
    op = "concat_fc" if "concat_fc" in operators else operators[0]
    node_list = [{"inputs": [0, 1] if d == 0 else [1, d + 1], "op": op} for d in range(nodes)]
    first = sorted(deepest[:2]) if len(deepest) > 1 else [len(taps) - 2, len(taps) - 1]
    cell_list = [{"inputs": first, "nodes": node_list}]
    for p in range(1, cells):
        tap = deepest[p % len(deepest)]
        cell_list.append({"inputs": [tap, len(taps) + p - 1], "nodes": [dict(n) for n in node_list]})
    return {"taps": taps, "cells": cell_list}
