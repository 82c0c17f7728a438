"""Datasets: the multimodal contract, builtin datasets, adapters for the paper's datasets."""

from harmonic_nas.data.base import (
    SPLITS,
    ArrayDataset,
    ModalityKind,
    ModalitySpec,
    MultimodalDataset,
    SplitData,
    SplitName,
    Task,
    limit_split,
)
from harmonic_nas.data.registry import available, load_dataset, prepare_dataset
from harmonic_nas.data.batches import iterate_batches, to_device

__all__ = [
    "available",
    "load_dataset",
    "prepare_dataset",
    "SPLITS",
    "ArrayDataset",
    "ModalityKind",
    "ModalitySpec",
    "MultimodalDataset",
    "SplitData",
    "SplitName",
    "Task",
    "iterate_batches",
    "limit_split",
    "to_device",
]
