"""Elastic Maxout network for vector inputs (text embeddings): elastic units of the first block, pieces per
unit, number of blocks and width multiplier per block, plus extraction to a plain network."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harmonic_nas.backbones.common import BackboneOutput, BackboneTrunk
from harmonic_nas.backbones.elastic import ElasticBatchNorm1d
from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.space.maxout import MaxoutArch, MaxoutArchSpace, block_width


class MaxoutBlock(nn.Module):
    """Plain block: Linear(in -> units * pieces) -> max over the pieces -> BatchNorm -> dropout."""

    def __init__(self, linear: nn.Linear, pieces: int, bn: nn.BatchNorm1d, dropout: float) -> None:
        super().__init__()
        self.linear, self.pieces, self.bn, self.dropout = linear, pieces, bn, nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        out = out.view(out.shape[0], -1, self.pieces).amax(dim=-1)
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
    """Stores Linear(in -> max_units * max_pieces); row ``u * max_pieces + p`` is piece ``p`` of unit ``u``,
    so a subnet uses the first ``units`` units, the first ``pieces`` pieces of each, the first inputs."""

    def __init__(self, in_features: int, max_units: int, max_pieces: int, dropout: float) -> None:
        super().__init__()
        self.max_units, self.max_pieces = max_units, max_pieces
        self.linear = nn.Linear(in_features, max_units * max_pieces)
        self.bn = ElasticBatchNorm1d(max_units)
        self.dropout = nn.Dropout(dropout)

    def _weights(self, units: int, pieces: int, inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = self.linear.weight.view(self.max_units, self.max_pieces, -1)[:units, :pieces, :inputs]
        bias = self.linear.bias.view(self.max_units, self.max_pieces)[:units, :pieces]
        return weight.reshape(units * pieces, inputs), bias.reshape(units * pieces)

    def forward(self, x: torch.Tensor, units: int, pieces: int) -> torch.Tensor:
        out = F.linear(x, *self._weights(units, pieces, x.shape[1]))
        out = out.view(out.shape[0], units, pieces).amax(dim=-1)
        return self.dropout(self.bn(out))

    def to_static(self, units: int, pieces: int, inputs: int) -> MaxoutBlock:
        weight, bias = self._weights(units, pieces, inputs)
        linear = nn.Linear(inputs, units * pieces, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        return MaxoutBlock(linear, pieces, self.bn.to_static(units), self.dropout.p)


class ElasticMaxout(nn.Module):
    """Supernet of every arch of a :class:`MaxoutSpace`; taps are the outputs of every active block."""

    def __init__(self, space_cfg: MaxoutSpace, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.space = MaxoutArchSpace(space_cfg)
        self.in_features, self.num_classes = in_features, num_classes
        max_arch = self.space.max()  # the most units of every block (a multiplier below 1 shrinks blocks)
        widest = [max(block_width(max_arch.hidden, m, i) for m in space_cfg.width_multipliers)
                  for i in range(max_arch.blocks)]
        self.blocks = nn.ModuleList(
            ElasticMaxoutBlock(in_features if i == 0 else widest[i - 1], units, max_arch.pieces, space_cfg.dropout)
            for i, units in enumerate(widest)
        )
        self.classifier = nn.Linear(max(widest), num_classes)
        self.set_active(max_arch)

    def set_active(self, arch: MaxoutArch) -> None:
        self.active_arch = arch
        self._widths, self._pieces = arch.widths(), arch.pieces

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        taps = []
        for block, units in zip(self.blocks, self._widths):
            x = block(x, units, self._pieces)
            taps.append(x)
        return BackboneOutput(taps, F.linear(x, self.classifier.weight[:, : x.shape[1]], self.classifier.bias))

    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """No-op by design. A block's hidden units feed the next block when it is active and the
        classifier when it is the last one, and the active depth changes per subnet, so no single
        consumer defines their importance; the nets are small and trained with every width, so the
        hidden units keep their original order."""

    def extract(self, arch: MaxoutArch) -> StaticMaxout:
        """A plain network equal to subnet ``arch`` (weights copied; the supernet's active arch is untouched)."""
        widths = arch.widths()
        blocks = [
            block.to_static(units, arch.pieces, self.in_features if i == 0 else widths[i - 1])
            for i, (block, units) in enumerate(zip(self.blocks, widths))
        ]
        weight = self.classifier.weight
        classifier = nn.Linear(widths[-1], self.num_classes, device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            classifier.weight.copy_(weight[:, : widths[-1]])
            classifier.bias.copy_(self.classifier.bias)
        return StaticMaxout(blocks, classifier).train(self.training)

    def tap_channels(self, arch: MaxoutArch) -> list[int]:
        return arch.widths()
