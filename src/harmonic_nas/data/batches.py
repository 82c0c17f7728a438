"""Mini-batches straight from (possibly memory-mapped) arrays: no per-sample Python work, no copies
of whole splits, so data loading never dominates a training step."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def to_device(array: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if channels_last and tensor.dim() == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor.to(device, non_blocking=True)


def iterate_batches(
    inputs: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    device: torch.device,
    *,
    order: np.ndarray | None = None,
    channels_last: bool = False,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches in ``order`` (default: sequential). Indices inside a batch are sorted so
    that reads from a memory-mapped file stay close together."""
    n = len(targets)
    order = np.arange(n) if order is None else order
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        idx = np.sort(order[start : start + batch_size])
        yield to_device(inputs[idx], device, channels_last), to_device(targets[idx], device, False)
