"""From a (memory-mapped, read-only) split to torch tensors for a batch: one copy, sorted reads."""

from __future__ import annotations

import numpy as np
import torch

from harmonic_nas.data.base import SplitData


def batch_tensors(data: SplitData, index: np.ndarray | slice | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs per modality and targets of ``index`` (all samples if None) as writable tensors.

    Indices are read in sorted order (sequential memory-mapped reads) and returned in the order given."""
    if index is None:
        index = slice(None)
    if isinstance(index, slice):
        inputs = {k: torch.from_numpy(np.array(v[index], copy=True)) for k, v in data.inputs.items()}
        return inputs, torch.from_numpy(np.array(data.targets[index], copy=True))
    index = np.asarray(index)
    order = np.argsort(index, kind="stable")
    restore = np.empty_like(order)
    restore[order] = np.arange(len(order))
    sorted_index = index[order]
    inputs = {k: torch.from_numpy(np.asarray(v[sorted_index])[restore]) for k, v in data.inputs.items()}
    return inputs, torch.from_numpy(np.asarray(data.targets[sorted_index])[restore])
