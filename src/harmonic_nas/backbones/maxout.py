"""Elastic Maxout network for vector inputs (text embeddings): elastic hidden units, pieces per unit
(factor) and number of blocks, plus extraction to a plain network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harmonic_nas.backbones.common import BackboneOutput, BackboneTrunk
from harmonic_nas.backbones.elastic import ElasticBatchNorm1d
from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.space.maxout import MaxoutArch, MaxoutArchSpace


class MaxoutBlock(nn.Module):
    """Plain block: Linear(in -> hidden * factor) -> max over the factor pieces -> BatchNorm -> dropout."""

    def __init__(self, linear: nn.Linear, factor: int, bn: nn.BatchNorm1d, dropout: float) -> None:
        super().__init__()
        self.linear, self.factor, self.bn, self.dropout = linear, factor, bn, nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        out = out.view(out.shape[0], -1, self.factor).amax(dim=-1)
        return self.dropout(self.bn(out))


class StaticMaxout(nn.Module):
    def __init__(self, blocks: list[MaxoutBlock], classifier: nn.Linear) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        taps = []
        for block in self.blocks:
            x = block(x)
            taps.append(x)
        return BackboneOutput(taps, self.classifier(x))

    def trunk(self, last_tap: int | None = None) -> BackboneTrunk:
        """Blocks 0..``last_tap`` (all if None), sharing this network's modules: what a fusion that reads
        no later tap runs (no classifier)."""
        return BackboneTrunk.cut(self.blocks, last_tap)


class ElasticMaxoutBlock(nn.Module):
    """Stores Linear(in -> max_hidden * max_factor); row ``u * max_factor + p`` is piece ``p`` of unit ``u``,
    so a subnet uses the first ``hidden`` units, the first ``factor`` pieces of each, the first inputs."""

    def __init__(self, in_features: int, max_hidden: int, max_factor: int, dropout: float) -> None:
        super().__init__()
        self.max_hidden, self.max_factor = max_hidden, max_factor
        self.linear = nn.Linear(in_features, max_hidden * max_factor)
        self.bn = ElasticBatchNorm1d(max_hidden)
        self.dropout = nn.Dropout(dropout)

    def _weights(self, hidden: int, factor: int, inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.linear.weight.view(self.max_hidden, self.max_factor, -1)[:hidden, :factor, :inputs]
        bias = self.linear.bias.view(self.max_hidden, self.max_factor)[:hidden, :factor]
        return weight.reshape(hidden * factor, inputs), bias.reshape(hidden * factor)

    def forward(self, x: torch.Tensor, hidden: int, factor: int) -> torch.Tensor:
        out = F.linear(x, *self._weights(hidden, factor, x.shape[1]))
        out = out.view(out.shape[0], hidden, factor).amax(dim=-1)
        return self.dropout(self.bn(out))

    def to_static(self, hidden: int, factor: int, inputs: int) -> MaxoutBlock:
        weight, bias = self._weights(hidden, factor, inputs)
        linear = nn.Linear(inputs, hidden * factor, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        return MaxoutBlock(linear, factor, self.bn.to_static(hidden), self.dropout.p)


class ElasticMaxout(nn.Module):
    """Supernet of every arch of a :class:`MaxoutSpace`; taps are the outputs of every active block."""

    def __init__(self, space_cfg: MaxoutSpace, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.space = MaxoutArchSpace(space_cfg)
        self.in_features, self.num_classes = in_features, num_classes
        max_arch = self.space.max()
        hidden, factor = max_arch.hidden, max_arch.factor
        self.blocks = nn.ModuleList(
            ElasticMaxoutBlock(in_features if i == 0 else hidden, hidden, factor, space_cfg.dropout)
            for i in range(max_arch.blocks)
        )
        self.classifier = nn.Linear(hidden, num_classes)
        self.set_active(max_arch)

    def set_active(self, arch: MaxoutArch) -> None:
        self.active_arch = arch
        self._hidden, self._blocks, self._factor = arch.hidden, arch.blocks, arch.factor

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        taps = []
        for block in self.blocks[: self._blocks]:
            x = block(x, self._hidden, self._factor)
            taps.append(x)
        return BackboneOutput(taps, F.linear(x, self.classifier.weight[:, : self._hidden], self.classifier.bias))

    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """No-op by design. A block's hidden units feed the next block when it is active and the
        classifier when it is the last one, and the active depth changes per subnet, so no single
        consumer defines their importance; the nets are small and trained with every width, so the
        hidden units keep their original order."""

    def extract(self, arch: MaxoutArch) -> StaticMaxout:
        """A plain network equal to subnet ``arch`` (weights copied; the supernet's active arch is untouched)."""
        hidden, factor = arch.hidden, arch.factor
        blocks = [
            block.to_static(hidden, factor, self.in_features if i == 0 else hidden)
            for i, block in enumerate(self.blocks[: arch.blocks])
        ]
        weight = self.classifier.weight
        classifier = nn.Linear(hidden, self.num_classes, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            classifier.weight.copy_(weight[:, :hidden])
            classifier.bias.copy_(self.classifier.bias)
        return StaticMaxout(blocks, classifier).train(self.training)

    def tap_channels(self, arch: MaxoutArch) -> list[int]:
        return [arch.hidden] * arch.blocks
