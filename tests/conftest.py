"""Shared test settings and fixtures: one thread, a small real dataset, the search tests' LUT, the smoke run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import IMAGE_SPACE, SMOKE, THUMB_SPACE, cli, make_lut, small_fusion, mnist_arrays

from harmonic_nas.data import ArrayDataset, ModalitySpec, SplitData

# One intra-op thread: deterministic, and fair on a shared 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Commands under test pin their own thread count (runtime.threads); give the next test one again."""
    yield
    torch.set_num_threads(1)


def _split(x: np.ndarray, y: np.ndarray) -> SplitData:
    images = ((x.reshape(-1, 1, 28, 28) - 0.13) / 0.31).astype(np.float32)
    # A second, real modality: the 7x7 average-pooled thumbnail as a 49-d vector.
    thumbs = images.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49).astype(np.float32)
    return SplitData(inputs={"image": images, "thumb": thumbs}, targets=y.astype(np.int64))


@pytest.fixture(scope="session")
def mnist_pair() -> ArrayDataset:
    """1024 train / 256 val / 256 test MNIST digits with an image and a thumbnail-vector modality."""
    xtr, ytr, xva, yva = mnist_arrays()
    return ArrayDataset(
        name="mnist-pair",
        modalities={"image": ModalitySpec("image", (1, 28, 28)), "thumb": ModalitySpec("vector", (49,))},
        num_classes=10,
        task="multiclass",
        splits={"train": _split(xtr[:1024], ytr[:1024]), "val": _split(xva[:256], yva[:256]), "test": _split(xva[256:512], yva[256:512])},
    )


@pytest.fixture(scope="module")
def lut() -> Any:
    """A fixture LUT with every layer of the search space of IMAGE_SPACE and THUMB_SPACE on mnist-pair."""
    from harmonic_nas.config.schema import ExperimentConfig
    from harmonic_nas.costing.catalog import search_space_specs

    cfg = ExperimentConfig.model_validate({"name": "x", "modalities": {"image": IMAGE_SPACE.model_dump(mode="json"),
                                          "thumb": THUMB_SPACE.model_dump(mode="json")},
                                           "fusion": small_fusion().model_dump(mode="json")})
    return make_lut(8, 4, specs=search_space_specs(cfg, {"image": (1, 28, 28), "thumb": (49,)}, 10))


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of the whole smoke job (``harmonic-nas run --config configs/smoke.yaml``), run once
    per session through the real command line (a minute or more: only slow tests, with a long timeout, use
    it). Tests read it or copy parts of it; one that writes into it must leave its results as they are."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    done = cli("run", "--config", str(SMOKE), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out
