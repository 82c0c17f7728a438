"""Mini-batches straight from (possibly memory-mapped) arrays: no per-sample Python work, no copies
of whole splits, so data loading never dominates a training step."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


def to_device(array: np.ndarray, device: torch.device, channels_last: bool) -> torch.Tensor:
    """The batch on ``device``; for CUDA it goes through pinned (page-locked) memory, so that the copy
    is asynchronous and the host can prepare the next step while the GPU still works."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if channels_last and tensor.dim() == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def batch_indices(n: int, batch_size: int, *, order: np.ndarray | None = None, drop_last: bool = False) -> Iterator[np.ndarray]:
    """The sample indices of every batch, in ``order`` (default: sequential), sorted inside a batch so
    that reads from a memory-mapped file stay close together."""
    order = np.arange(n) if order is None else order
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield np.sort(order[start : start + batch_size])


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
    for idx in batch_indices(len(targets), batch_size, order=order, drop_last=drop_last):
        yield to_device(inputs[idx], device, channels_last), to_device(targets[idx], device, False)
