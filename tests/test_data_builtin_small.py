"""The emoji (image + text) and tuxpaint (image + text + speech) builtins on small subsets with the
hashing text encoder (skipped where the Debian sources are not installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.data import load_dataset
from harmonic_nas.data.sources import debian_version
from harmonic_nas.errors import UserError


@pytest.mark.skipif(debian_version("fonts-noto-color-emoji") is None or debian_version("unicode-data") is None, reason="emoji sources not installed")
def test_emoji(tmp_path: Path) -> None:
    options = {"text_encoder": "hashing", "text_dim": 64, "max_items": 400, "label": "group", "image_size": 24}
    dataset = load_dataset(DatasetConfig(name="emoji", cache_dir=tmp_path, options=options), progress=False)
    assert set(dataset.modalities) == {"image", "text"} and dataset.modalities["image"].shape == (3, 24, 24)
    assert "Smileys & Emotion" in dataset.class_names
    for split in ("train", "val", "test"):
        assert np.bincount(dataset.split(split).targets, minlength=dataset.num_classes).min() > 0
    with pytest.raises(UserError, match="option 'label'"):
        load_dataset(DatasetConfig(name="emoji", cache_dir=tmp_path, options={"label": "colour"}), progress=False)


@pytest.mark.skipif(debian_version("tuxpaint-stamps-default") is None, reason="tuxpaint stamps not installed")
def test_tuxpaint_has_three_modalities(tmp_path: Path) -> None:
    options = {"text_encoder": "hashing", "text_dim": 64, "max_items": 150, "min_items": 5, "image_size": 24, "spectrogram": 24}
    dataset = load_dataset(DatasetConfig(name="tuxpaint", cache_dir=tmp_path, options=options), progress=False)
    assert {n: m.kind for n, m in dataset.modalities.items()} == {"image": "image", "text": "vector", "speech": "audio"}
    assert dataset.modalities["speech"].shape == (1, 24, 24)
    assert len(dataset.split("train")) > len(dataset.split("test")) > 0
    with pytest.raises(UserError, match="fewer than 2 categories"):
        load_dataset(DatasetConfig(name="tuxpaint", cache_dir=tmp_path, options={**options, "speech_language": "xx"}), progress=False)


def test_missing_source_names_the_package() -> None:
    from harmonic_nas.data.sources import require_debian

    with pytest.raises(UserError, match="needs the Debian package no-such-package-hnas: apt-get install no-such-package-hnas"):
        require_debian("no-such-package-hnas", "av-digits")


def test_missing_sources_are_named_together() -> None:
    """One line names every missing package, so a user installs them in one go, not one error per try."""
    from harmonic_nas.data.sources import require_debians

    with pytest.raises(UserError, match=r"packages hnas-missing-a, hnas-missing-b: apt-get install hnas-missing-a hnas-missing-b \("):
        require_debians(["hnas-missing-a", "dpkg", "hnas-missing-b"], "av-digits")
