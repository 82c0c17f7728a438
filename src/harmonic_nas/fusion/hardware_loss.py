"""The hardware terms of the architecture loss (paper eq. 11), scaled so that task and hardware both have
a say, and the cost of a derived genotype.

Costs come from the device's LUT, read once when the search starts (not per batch as in the authors'
code), and are normalised by that device's own min/max over the candidate operators (not by constants
of another device). The loss of one architecture step is

    L_task^a + lambda * (H_lat^b + H_energy^c),    H = 1 + mean over nodes of softmax(gamma) . cost01

* ``cost01`` in [0, 1] (the device's cheapest operator 0, its dearest 1), so H is in [1, 2] whatever the
  number of cells and nodes: a larger exponent always means more pressure towards cheap operators
  (d H^b = b H^(b-1) dH, which grows with b on H >= 1), and 0 drops the term.
* ``lambda`` is fixed at the first architecture step so that the hardware gradient on gamma at the
  reference exponents (1 for each term the config turns on) has the norm of the task gradient on gamma.
  Summed over nodes and left unscaled, the hardware gradient was 30-45x the task's at the default
  exponents: Adam followed its sign and every node derived the cheapest operator whatever the task.
  With the balance the exponents are real knobs: b = 1 weighs the two equally at the start, b = 2 about
  3x towards the hardware, b = 4 about 13x, b = 0.5 about 0.4x.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from harmonic_nas.config.schema import LossExponents
from harmonic_nas.fusion.specs import op_spec
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.space.genotype import Genotype


def _unit_range(values: Tensor, low: float, high: float) -> Tensor:
    """(v - min) / (max - min) in [0, 1] (all zeros if every op costs the same)."""
    span = high - low
    return (values - low) / span if span > 0 else torch.zeros_like(values)


class HardwareCost:
    """Per-operator latency and energy at one (C, L): raw (ms, mJ) and in [0, 1] for the loss."""

    def __init__(self, lut: LookupTable, operators: Sequence[str], channels: int, length: int) -> None:
        self.operators = list(operators)
        specs = [op_spec(name, channels, length) for name in self.operators]
        entries = [lut.lookup(spec) for spec in specs]  # a missing op is one error naming its key
        self.latency_ms = torch.tensor([e.latency_ms for e in entries], dtype=torch.float64)
        self.energy_mj = torch.tensor([e.energy_mj for e in entries], dtype=torch.float64)
        self.latency_unit = _unit_range(self.latency_ms, *lut.latency_range(specs)).float()
        self.energy_unit = _unit_range(self.energy_mj, *lut.energy_range(specs)).float()

    def to(self, device: torch.device) -> HardwareCost:
        self.latency_unit = self.latency_unit.to(device)
        self.energy_unit = self.energy_unit.to(device)
        return self

    def terms(self, op_probs: Tensor) -> tuple[Tensor, Tensor]:
        """(H_lat, H_energy) = 1 + mean over nodes of softmax(gamma) . unit cost, each in [1, 2].

        ``op_probs``: (cells, nodes, operators), each row a softmax over the operators.
        """
        nodes = op_probs.shape[0] * op_probs.shape[1]
        latency = (op_probs * self.latency_unit).sum() / nodes
        energy = (op_probs * self.energy_unit).sum() / nodes
        return 1.0 + latency, 1.0 + energy

    def expected(self, op_probs: Tensor) -> tuple[float, float]:
        """Expected (ms, mJ) of all nodes' operators under the current softmax(gamma), for reporting."""
        probs = op_probs.detach().double().cpu()
        return float((probs * self.latency_ms).sum()), float((probs * self.energy_mj).sum())

    def genotype_cost(self, genotype: Genotype) -> tuple[float, float]:
        """(ms, mJ) of the operators of the nodes the derived network runs."""
        live = genotype.live
        index = {name: i for i, name in enumerate(self.operators)}
        ops = [index[genotype.cells[p].nodes[d].op] for p in live.cells for d in live.nodes[p]]
        return float(self.latency_ms[ops].sum()), float(self.energy_mj[ops].sum())


class HardwareLoss:
    """The hardware part of one search's architecture loss, ``lambda * (H_lat^b + H_energy^c)``, with
    ``lambda`` balanced against the task gradient on gamma at the first step (see the module docstring)."""

    def __init__(self, cost: HardwareCost, exponents: LossExponents) -> None:
        self.cost = cost
        self.exponents = exponents
        self.scale: float | None = None  # lambda, set by the first call of ``gradients``

    @property
    def active(self) -> bool:
        return self.exponents.latency != 0 or self.exponents.energy != 0

    def value(self, op_probs: Tensor, reference: bool = False) -> Tensor:
        """H_lat^b + H_energy^c (each term only if its exponent is not 0; at exponent 1 if ``reference``)."""
        latency, energy = self.cost.terms(op_probs)
        total = torch.zeros((), device=op_probs.device)
        for term, power in ((latency, self.exponents.latency), (energy, self.exponents.energy)):
            if power != 0:
                total = total + (term if reference else term**power)
        return total

    def gradient(self, gamma: Tensor, task_grad: Tensor | None) -> Tensor:
        """d(lambda * hardware term)/d gamma; the first call fixes lambda from ``task_grad`` (the task's
        gradient on gamma at that step; None when the task term is off: lambda = 1)."""
        if self.scale is None:
            (reference,) = torch.autograd.grad(self.value(gamma.softmax(-1), reference=True), gamma)
            self.scale = balance(task_grad, reference)
        (grad,) = torch.autograd.grad(self.value(gamma.softmax(-1)), gamma)
        return self.scale * grad


def balance(task_grad: Tensor | None, hardware_grad: Tensor) -> float:
    """||task gradient|| / ||hardware gradient|| on gamma; 1 when either is absent or zero."""
    hardware = float(hardware_grad.norm())
    task = float(task_grad.norm()) if task_grad is not None else 0.0
    return task / hardware if task > 0 and hardware > 0 else 1.0
