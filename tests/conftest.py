"""Shared test settings and small real datasets."""

from __future__ import annotations

import gzip
import importlib.resources
import pickle
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

from harmonic_nas.data import ArrayDataset, ModalitySpec, SplitData

# One intra-op thread: deterministic, and fair on a shared 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Commands under test pin their own thread count (runtime.threads); give the next test one again."""
    yield
    torch.set_num_threads(1)


@lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, ...]:
    path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    with gzip.open(str(path), "rb") as handle:
        (xtr, ytr), (xva, yva), _ = pickle.load(handle, encoding="latin1")
    return xtr, ytr, xva, yva


def _split(x: np.ndarray, y: np.ndarray) -> SplitData:
    images = ((x.reshape(-1, 1, 28, 28) - 0.13) / 0.31).astype(np.float32)
    # A second, real modality: the 7x7 average-pooled thumbnail as a 49-d vector.
    thumbs = images.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49).astype(np.float32)
    return SplitData(inputs={"image": images, "thumb": thumbs}, targets=y.astype(np.int64))


@pytest.fixture(scope="session")
def mnist_pair() -> ArrayDataset:
    """1024 train / 256 val / 256 test MNIST digits with an image and a thumbnail-vector modality."""
    xtr, ytr, xva, yva = _mnist()
    return ArrayDataset(
        name="mnist-pair",
        modalities={"image": ModalitySpec("image", (1, 28, 28)), "thumb": ModalitySpec("vector", (49,))},
        num_classes=10,
        task="multiclass",
        splits={"train": _split(xtr[:1024], ytr[:1024]), "val": _split(xva[:256], yva[:256]), "test": _split(xva[256:512], yva[256:512])},
    )


class _RunsCommand:
    """A pickled object whose unpickling runs a shell command: what a crafted shared file would carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (self.command,)


def write_code_running_file(path: Path, marker: Path, fmt: str) -> None:
    """A file at ``path`` that creates ``marker`` when fully unpickled, shaped like one of our files
    (``fmt`` is its format tag); written with torch.save (zip) and, for ``.ckpt``, as a bare pickle."""
    payload = {"format": fmt, "state_dict": {}, "payload": _RunsCommand(f"touch {marker}")}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".ckpt":
        path.write_bytes(pickle.dumps(payload, protocol=2))  # the protocol torch.save writes
    else:
        torch.save(payload, path)
