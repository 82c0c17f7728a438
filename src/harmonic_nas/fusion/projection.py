"""Input projection: brings every backbone tap, whatever its shape, to the fusion layout (B, C, L)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


class InputProjection(nn.Module):
    """Project one tapped feature to (B, C, L) so that any two taps can be fused.

    A map (B, C_in, H, W) is adaptive-max-pooled to an s x s grid (s = sqrt(L)) and flattened row-major
    (position l = row * s + col); a vector (B, C_in) is repeated over the L positions (what pooling a 1x1
    map to s x s gives). Then Conv1d(C_in -> C, k=1) without bias (BatchNorm's shift makes it redundant),
    BatchNorm1d, ReLU, Dropout. Forward branches only on the input rank, which is fixed at export time.
    """

    def __init__(self, in_channels: int, channels: int, length: int, dropout: float) -> None:
        super().__init__()
        side = math.isqrt(length)
        if length < 1 or side * side != length:
            raise ValueError(f"length must be a perfect square (L = s x s pooled grid), found {length}")
        self.in_channels = in_channels
        self.channels = channels
        self.length = length
        self.side = side
        self.conv = nn.Conv1d(in_channels, channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm1d(channels)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, feature: Tensor) -> Tensor:
        """(B, C_in, H, W) or (B, C_in) -> (B, C, L)."""
        if feature.dim() == 4:
            sequence = F.adaptive_max_pool2d(feature, self.side).flatten(2)
        elif feature.dim() == 2:
            sequence = feature.unsqueeze(-1).expand(-1, -1, self.length)
        else:
            raise ValueError(
                f"a fusion input must be a map (B, C, H, W) or a vector (B, C), found shape {tuple(feature.shape)}"
            )
        return self.dropout(self.act(self.bn(self.conv(sequence))))
