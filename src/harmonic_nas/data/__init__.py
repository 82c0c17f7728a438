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
from harmonic_nas.data.tensors import batch_tensors

__all__ = [
    "available",
    "batch_tensors",
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
    "limit_split",
]
