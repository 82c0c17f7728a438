"""Input projection: brings every backbone tap, whatever its shape, to the fusion layout (B, C, L)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _grid_side(length: int) -> int:
    side = math.isqrt(length) if length > 0 else 0
    if side * side != length or side == 0:
        raise ValueError(f"length must be a perfect square (L = s x s pooled grid), found {length}")
    return side


def _bins(size: int, side: int) -> list[tuple[int, int]]:
    """[start, end) of each of ``side`` adaptive-pooling bins over ``size`` (PyTorch's floor/ceil rule).
    The ceiling is written with non-negative operands only: the ONNX exporter traces ``//`` on sizes as a
    truncating Div, which equals floor division only for them."""
    return [((i * size) // side, ((i + 1) * size + side - 1) // side) for i in range(side)]


def pool_to_sequence(feature: Tensor, length: int) -> Tensor:
    """(B, C, H, W) -> (B, C, L): max over each cell of an s x s adaptive grid (s = sqrt(L)), row-major.

    Parameter-free, so a feature cache can store its result instead of the full map. Same values as
    adaptive_max_pool2d; when H or W is not a multiple of s (a 7x7 tap on a 4x4 grid) the bins are taken
    one by one (separable: rows then columns), because the ONNX exporter cannot express uneven adaptive
    pooling. The branch depends on static shapes only.
    """
    side = _grid_side(length)
    height, width = feature.shape[-2], feature.shape[-1]
    if height % side == 0 and width % side == 0:
        grid = F.adaptive_max_pool2d(feature, side)
    else:
        rows = torch.stack([feature[:, :, a:b].amax(dim=2) for a, b in _bins(height, side)], dim=2)
        grid = torch.stack([rows[..., a:b].amax(dim=-1) for a, b in _bins(width, side)], dim=-1)
    return grid.flatten(2)


class InputProjection(nn.Module):
    """Project one tapped feature to (B, C, L) so that any two taps can be fused.

    Accepts a map (B, C_in, H, W), pooled by ``pool_to_sequence``; an already pooled sequence
    (B, C_in, L), e.g. from a feature cache; or a vector (B, C_in), repeated over the L positions (what
    pooling a 1x1 map gives). Then Conv1d(C_in -> C, k=1) without bias (BatchNorm's shift makes it
    redundant), BatchNorm1d, ReLU, Dropout. Forward branches only on the input's rank.
    """

    def __init__(self, in_channels: int, channels: int, length: int, dropout: float) -> None:
        super().__init__()
        _grid_side(length)
        self.in_channels = in_channels
        self.channels = channels
        self.length = length
        self.conv = nn.Conv1d(in_channels, channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm1d(channels)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, feature: Tensor) -> Tensor:
        """(B, C_in, H, W), (B, C_in, L) or (B, C_in) -> (B, C, L)."""
        if feature.dim() == 4:
            sequence = pool_to_sequence(feature, self.length)
        elif feature.dim() == 3 and feature.shape[-1] == self.length:
            sequence = feature
        elif feature.dim() == 2:
            sequence = feature.unsqueeze(-1).expand(-1, -1, self.length)
        else:
            raise ValueError(
                f"a fusion input must be a map (B, C, H, W), a pooled sequence (B, C, {self.length}) or a "
                f"vector (B, C), found shape {tuple(feature.shape)}"
            )
        # The 1x1 conv as one matrix product over all B L positions and BatchNorm on the (B L, C) view:
        # the same statistics per channel as on (B, C, L), several times faster on CPU.
        rows = F.linear(sequence.transpose(1, 2), self.conv.weight.squeeze(-1))  # (B, L, C)
        out = self.dropout(self.act(self.bn(rows.reshape(-1, self.channels))))
        return out.view(rows.shape).transpose(1, 2)
