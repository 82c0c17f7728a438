"""The hardware terms of the architecture loss (paper eq. 11) and the cost of a derived genotype.

Costs come from the device's LUT, read once when the search starts (not per batch as in the authors'
code), and are normalised by that device's own min/max over the candidate operators (not by constants
of another device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from harmonic_nas.config.schema import LossExponents
from harmonic_nas.fusion.specs import op_spec
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.space.fusion import live_parts


def _normalise(values: Tensor, low: float, high: float) -> Tensor:
    """1 + (v - min) / (max - min), in [1, 2] (all ones if every op costs the same).

    The shift by one per node only adds a constant (no gradient at exponent 1) but keeps the summed term
    >= 1, so that a larger exponent b or c always means more pressure towards cheap operators; on [0, 1]
    a larger exponent would weaken it, and 0 ** b has no usable gradient.
    """
    span = high - low
    return 1.0 + ((values - low) / span if span > 0 else torch.zeros_like(values))


class HardwareCost:
    """Per-operator latency and energy at one (C, L), raw (ms, mJ) and normalised for the loss."""

    def __init__(self, lut: LookupTable, operators: Sequence[str], channels: int, length: int) -> None:
        self.operators = list(operators)
        specs = [op_spec(name, channels, length) for name in self.operators]
        entries = [lut.lookup(spec) for spec in specs]  # a missing op is one error naming its key
        self.latency_ms = torch.tensor([e.latency_ms for e in entries], dtype=torch.float64)
        self.energy_mj = torch.tensor([e.energy_mj for e in entries], dtype=torch.float64)
        self.latency_norm = _normalise(self.latency_ms, *lut.latency_range(specs)).float()
        self.energy_norm = _normalise(self.energy_mj, *lut.energy_range(specs)).float()

    def to(self, device: torch.device) -> HardwareCost:
        self.latency_norm = self.latency_norm.to(device)
        self.energy_norm = self.energy_norm.to(device)
        return self

    def terms(self, op_probs: Tensor) -> tuple[Tensor, Tensor]:
        """(L_lat, L_energy) = sum over cells and nodes of softmax(gamma) . normalised LUT cost.

        ``op_probs``: (cells, nodes, operators), each row a softmax over the operators.
        """
        return (op_probs * self.latency_norm).sum(), (op_probs * self.energy_norm).sum()

    def objective(self, task: Tensor, op_probs: Tensor, exponents: LossExponents) -> Tensor:
        """L_task^a + L_lat^b + L_energy^c; a zero exponent drops its (then constant) term."""
        latency, energy = self.terms(op_probs)
        total = torch.zeros((), device=task.device)
        for value, power in ((task, exponents.task), (latency, exponents.latency), (energy, exponents.energy)):
            if power != 0:
                total = total + value**power
        return total

    def expected(self, op_probs: Tensor) -> tuple[float, float]:
        """Expected (ms, mJ) of all nodes' operators under the current softmax(gamma), for reporting."""
        probs = op_probs.detach().double().cpu()
        return float((probs * self.latency_ms).sum()), float((probs * self.energy_mj).sum())

    def genotype_cost(self, genotype: dict[str, Any]) -> tuple[float, float]:
        """(ms, mJ) of the operators of the nodes the derived network runs."""
        live = live_parts(genotype)
        index = {name: i for i, name in enumerate(self.operators)}
        ops = [index[genotype["cells"][p]["nodes"][d]["op"]] for p in live.cells for d in live.nodes[p]]
        return float(self.latency_ms[ops].sum()), float(self.energy_mj[ops].sum())
