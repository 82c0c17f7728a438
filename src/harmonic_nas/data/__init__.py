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

__all__ = [
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
