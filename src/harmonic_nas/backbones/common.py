"""What every backbone supernet returns and offers, and the small helpers they share."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from harmonic_nas.space.base import ArchSpace


class BackboneOutput(NamedTuple):
    """Feature taps for the fusion network (one per stage or block) and the backbone's own logits."""

    taps: list[torch.Tensor]
    logits: torch.Tensor


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
