"""Plain MobileNetV3-style networks extracted from the supernet: ordinary torch layers only, so they
export (ONNX, TorchScript), profile and fine-tune like any other model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harmonic_nas.backbones.common import BackboneOutput, BackboneTrunk

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "hswish": nn.Hardswish}


class SqueezeExcite(nn.Module):
    def __init__(self, reduce: nn.Conv2d, expand: nn.Conv2d) -> None:
        super().__init__()
        self.reduce = reduce
        self.expand = expand

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.adaptive_avg_pool2d(x, 1)
        gate = F.hardsigmoid(self.expand(F.relu(self.reduce(gate))))
        return x * gate


class MBConv(nn.Module):
    """expand 1x1 -> depthwise kxk -> (SE) -> project 1x1, residual when shapes allow."""

    def __init__(
        self,
        expand: nn.Sequential,
        depthwise: nn.Sequential,
        se: SqueezeExcite | None,
        project: nn.Sequential,
        residual: bool,
    ) -> None:
        super().__init__()
        self.expand = expand
        self.depthwise = depthwise
        self.se = se
        self.project = project
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.depthwise(self.expand(x))
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        return out + x if self.residual else out


class StaticMBV3(nn.Module):
    """stem -> stages (taps after each) -> head conv -> global average pool -> dropout -> classifier."""

    def __init__(
        self, stem: nn.Module, stages: list[nn.Sequential], head: nn.Module, dropout: float, classifier: nn.Linear
    ) -> None:
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.dropout = nn.Dropout(dropout)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        x = self.stem(x)
        taps = []
        for stage in self.stages:
            x = stage(x)
            taps.append(x)
        x = F.adaptive_avg_pool2d(self.head(x), 1).flatten(1)
        return BackboneOutput(taps, self.classifier(self.dropout(x)))

    def trunk(self, last_tap: int | None = None) -> BackboneTrunk:
        """Stem and stages 0..``last_tap`` (all stages if None), sharing this network's modules: what a
        fusion that reads no later tap runs (no head, no classifier)."""
        return BackboneTrunk.cut(self.stages, last_tap, stem=self.stem)
