"""SpecAugment-style masking of training spectrograms: a few random time and frequency bands of each
sample set to 0, the standardised mean. Spoken-digit spectrograms are few and noisy; masking keeps a
small training set from being memorised without costing a training step anything measurable."""

from __future__ import annotations

import torch
from torch import Tensor


def band_masks(batch: int, size: int, count: int, max_width: int, generator: torch.Generator) -> Tensor:
    """(batch, size) booleans: ``count`` bands per row, each of a width drawn from [0, max_width]."""
    width = torch.randint(0, max_width + 1, (batch, count), generator=generator)
    start = (torch.rand(batch, count, generator=generator) * (size - width + 1)).long()
    position = torch.arange(size).view(1, 1, size)
    inside = (position >= start.unsqueeze(-1)) & (position < (start + width).unsqueeze(-1))
    return inside.any(dim=1)


def spec_augment(x: Tensor, count: int, width: float, generator: torch.Generator, total: int | None = None,
                 offset: int = 0) -> Tensor:
    """``x`` (B, C, F, T) with ``count`` frequency and ``count`` time bands of at most ``width`` of the
    axis zeroed per sample. The masks are drawn for a global batch of ``total`` rows (default B) from
    ``generator`` and rows ``offset .. offset + B`` are applied, so a sharded batch is masked as it would
    be in one process."""
    total = x.shape[0] if total is None else total
    freq, time = x.shape[-2], x.shape[-1]
    f_mask = band_masks(total, freq, count, max(1, int(width * freq)), generator)[offset : offset + x.shape[0]]
    t_mask = band_masks(total, time, count, max(1, int(width * time)), generator)[offset : offset + x.shape[0]]
    keep = ~(f_mask[:, None, :, None] | t_mask[:, None, None, :])
    return x * keep.to(device=x.device, dtype=x.dtype)
