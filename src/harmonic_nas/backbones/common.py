"""What every backbone supernet returns and offers, and the small helpers they share."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


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


_CONV_BN = ((nn.Conv1d, nn.BatchNorm1d), (nn.Conv2d, nn.BatchNorm2d))
_INPLACE_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU)


def fused_for_inference(module: nn.Module) -> nn.Module:
    """An inference-only copy of ``module`` (its eval-mode function, within float rounding) that runs
    faster: every BatchNorm that directly follows a conv inside an ``nn.Sequential`` is folded into
    the conv's weights and bias, and the activation right after such a conv works in place (on the
    conv's fresh output). ``module`` itself is untouched; the copy is in eval mode and must not be
    trained (its BatchNorm statistics are baked in)."""
    fused = copy.deepcopy(module).eval()
    for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        kept: list[nn.Module] = []
        for child in seq:
            previous = kept[-1] if kept else None
            if any(isinstance(previous, conv) and isinstance(child, bn) for conv, bn in _CONV_BN):
                if child.track_running_stats and child.running_mean is not None:
                    kept[-1] = fuse_conv_bn_eval(previous, child)  # type: ignore[arg-type]
                    continue
            if isinstance(child, _INPLACE_ACTIVATIONS) and isinstance(previous, (nn.Conv1d, nn.Conv2d)):
                child.inplace = True
            kept.append(child)
        if len(kept) != len(seq):
            for name in list(seq._modules):
                del seq._modules[name]
            for i, child in enumerate(kept):
                seq.add_module(str(i), child)
    return fused


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of ``divisor`` without dropping more than 10 % (MobileNet rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded
