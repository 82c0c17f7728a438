"""What every backbone supernet returns and offers, and the small helpers they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from harmonic_nas.space.base import ArchSpace


class BackboneOutput(NamedTuple):
    """Feature taps for the fusion network (one per stage or block) and the backbone's own logits."""

    taps: list[torch.Tensor]
    logits: torch.Tensor


class BackboneTrunk(nn.Module):
    """The part of an extracted backbone that a fusion network reads: the stem (if any), then the stages
    (blocks) up to the last tap used. ``forward(x)`` returns the taps, one per stage it holds, and runs
    nothing else: no later stage, no head, no classifier (an exported trunk does not contain them).

    The modules are shared with the backbone it was cut from, not copied.
    """

    def __init__(self, stages: Sequence[nn.Module], stem: nn.Module | None = None) -> None:
        super().__init__()
        if not stages:
            raise ValueError("a backbone trunk needs at least one stage (tap)")
        self.stem = stem
        self.stages = nn.ModuleList(stages)

    @classmethod
    def cut(cls, stages: Sequence[nn.Module], last_tap: int | None, stem: nn.Module | None = None) -> BackboneTrunk:
        """The trunk of ``stages[0..last_tap]`` (all of them if ``last_tap`` is None)."""
        if last_tap is not None and not 0 <= last_tap < len(stages):
            raise ValueError(f"last_tap must be in [0, {len(stages) - 1}], found {last_tap}")
        return cls(list(stages)[: None if last_tap is None else last_tap + 1], stem)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.stem is not None:
            x = self.stem(x)
        taps = []
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        return taps


@runtime_checkable
class Supernet(Protocol):
    """An elastic backbone: any arch of ``space`` runs by weight sharing and extracts to a plain module."""

    space: ArchSpace

    def set_active(self, arch: dict[str, Any]) -> None:
        """Validate ``arch`` and make it the subnet that ``forward`` runs."""

    def forward(self, x: torch.Tensor) -> BackboneOutput: ...

    def extract(self, arch: dict[str, Any]) -> nn.Module:
        """A standalone plain-torch network equal to the subnet ``arch`` (eval mode), returning BackboneOutput."""

    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Reorder elastic channels by importance so that narrow subnets keep the most important ones."""

    def tap_channels(self, arch: dict[str, Any]) -> list[int]:
        """Channel count of every tap of ``arch`` (inputs of the fusion projections)."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without dropping more than 10 % (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
