"""The pieces the searchable and the discrete fusion networks share, so weights carry over one to one:
the cell output (last node + residual, LayerNorm) and the head (last cells -> LayerNorm -> ReLU -> Linear)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CellOutput(nn.Module):
    """LayerNorm over (C, L) of the cell's last node plus the cell's first input (a residual path, so a
    cell can never do worse than passing its input on)."""

    def __init__(self, channels: int, length: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm([channels, length])

    def forward(self, node: Tensor, residual: Tensor) -> Tensor:
        # LayerNorm over (C, L) taken on the (L, C) view: the fusion tensors hold positions as rows in
        # memory, so this normalises them in place of layout (same mean and variance, same affine map).
        # The shape is the module's own (static: ONNX needs a constant normalised shape).
        rows = (node + residual).transpose(1, 2)
        norm = self.norm
        shape = tuple(reversed(norm.normalized_shape))
        return F.layer_norm(rows, shape, norm.weight.t(), norm.bias.t(), norm.eps).transpose(1, 2)


class OutputNorm(nn.Module):
    """Concatenate the output cells over channels, LayerNorm over (k C, L), ReLU, flatten to k C L."""

    def __init__(self, num_inputs: int, channels: int, length: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm([num_inputs * channels, length])
        self.act = nn.ReLU()

    def forward(self, *cells: Tensor) -> Tensor:
        return self.act(self.norm(torch.cat(cells, dim=1))).flatten(1)


class FusionHead(nn.Module):
    """OutputNorm then a Linear classifier: what turns the output cells into logits."""

    def __init__(self, num_inputs: int, channels: int, length: int, num_classes: int) -> None:
        super().__init__()
        self.out_norm = OutputNorm(num_inputs, channels, length)
        self.classifier = nn.Linear(num_inputs * channels * length, num_classes)

    def forward(self, cells: Sequence[Tensor]) -> Tensor:
        return self.classifier(self.out_norm(*cells))
