"""The fusion macro-architecture {"cells": C, "nodes": D}: the gene of stage 1 that stage 2's fusion search
fills in (space/genotype.py holds what it hands back)."""

from __future__ import annotations

from collections.abc import Sequence

from harmonic_nas.space.base import ChoiceGenes
from harmonic_nas.space.encoding import InvalidArchError
from harmonic_nas.space.values import Value


class Macro(Value):
    cells: int
    nodes: int


class FusionMacroSpace(ChoiceGenes):
    """Choices of the number of cells C and nodes per cell D (genes of stage 1, inherited and mutated)."""

    value_type = Macro

    def __init__(self, cells: Sequence[int], nodes: Sequence[int], name: str = "fusion") -> None:
        super().__init__(name, {"cells": sorted(set(cells)), "nodes": sorted(set(nodes))})
        for key, values in self.choices.items():
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise InvalidArchError(f"fusion {key} choices must be positive integers, found {values}")

    def every(self) -> list[Macro]:
        """Every (C, D) choice, C-major."""
        return [Macro(cells=c, nodes=d) for c in self.choices["cells"] for d in self.choices["nodes"]]


def output_cells(num_cells: int) -> list[int]:
    """The cells whose outputs form the network output: the last two (the only one if C = 1)."""
    return list(range(max(0, num_cells - 2), num_cells))
