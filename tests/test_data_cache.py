"""The prepared-dataset cache: built once, reused, invalidated by recipe or source changes, rebuilt
when corrupt or incomplete; load_dataset applies limits and returns normalised float32 arrays."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import pytest

from harmonic_nas.config.schema import DatasetConfig, SplitLimits
from harmonic_nas.data import load_dataset, prepare_dataset
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.cache import MANIFEST, CacheWriter, DatasetInfo, finalise
from harmonic_nas.data.progress import NullReporter
from harmonic_nas.errors import UserError
from helpers import write_avmnist


@pytest.fixture()
def avmnist(tmp_path: Path) -> DatasetConfig:
    root = write_avmnist(tmp_path / "avmnist")
    return DatasetConfig(name="avmnist", path=root, cache_dir=tmp_path / "cache")


def test_load_dataset_contract(avmnist: DatasetConfig) -> None:
    dataset = load_dataset(avmnist, progress=False)
    assert dataset.task == "multiclass" and dataset.num_classes == 10
    assert dataset.modalities["image"].shape == (1, 28, 28) and dataset.modalities["image"].kind == "image"
    assert dataset.modalities["audio"].shape == (1, 112, 112)
    train = dataset.split("train")
    assert [len(dataset.split(s)) for s in ("train", "val", "test")] == [110, 10, 40]
    assert train.targets.dtype == np.int64
    for name, array in train.inputs.items():
        assert array.dtype == np.float32
        assert abs(float(array.mean())) < 1e-3 and abs(float(array.std()) - 1) < 1e-2, name
    assert isinstance(train.inputs["image"], np.memmap)  # memory-mapped, not decoded per sample


def test_limits_are_seeded_subsets(avmnist: DatasetConfig) -> None:
    cfg = avmnist.model_copy(update={"limit": SplitLimits(train=30, test=5)})
    a, b = load_dataset(cfg, seed=1, progress=False), load_dataset(cfg, seed=1, progress=False)
    assert len(a.split("train")) == 30 and len(a.split("val")) == 10 and len(a.split("test")) == 5
    np.testing.assert_array_equal(a.split("train").targets, b.split("train").targets)
    c = load_dataset(cfg, seed=2, progress=False)
    assert not np.array_equal(a.split("train").inputs["image"], c.split("train").inputs["image"])


def test_manifest_and_reuse(avmnist: DatasetConfig) -> None:
    first = prepare_dataset(avmnist, progress=False)
    assert first.built
    manifest = json.loads((first.root / MANIFEST).read_text())
    assert manifest["recipe"]["name"] == "avmnist" and manifest["sources"]["files"]
    entry = manifest["splits"]["train"]["files"]["image"]
    assert entry["shape"] == [110, 1, 28, 28] and entry["dtype"] == "float32" and "crc32" in entry
    assert sum(manifest["splits"]["test"]["class_counts"]) == 40
    again = prepare_dataset(avmnist, progress=False)
    assert not again.built and again.root == first.root


def test_option_change_gets_its_own_cache(avmnist: DatasetConfig) -> None:
    first = prepare_dataset(avmnist, progress=False)
    other = prepare_dataset(avmnist.model_copy(update={"options": {"val_size": 20}}), progress=False)
    assert other.built and other.root != first.root


def test_changed_source_invalidates(avmnist: DatasetConfig) -> None:
    first = prepare_dataset(avmnist, progress=False)
    assert avmnist.path is not None
    labels = np.load(avmnist.path / "test_labels.npy")
    np.save(avmnist.path / "test_labels.npy", np.roll(labels, 1))
    second = prepare_dataset(avmnist, progress=False)
    assert second.built and second.root != first.root
    reloaded = load_dataset(avmnist, progress=False)
    np.testing.assert_array_equal(reloaded.split("test").targets, np.roll(labels, 1))


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-manifest"])
def test_corrupt_cache_is_rebuilt(avmnist: DatasetConfig, damage: str) -> None:
    first = prepare_dataset(avmnist, progress=False)
    target = first.root / "train" / "audio.npy"
    if damage == "flip":
        with open(target, "r+b") as handle:
            handle.seek(-100, 2)
            byte = handle.read(1)
            handle.seek(-100, 2)
            handle.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "truncate":
        with open(target, "r+b") as handle:
            handle.truncate(target.stat().st_size - 4096)
    else:
        (first.root / MANIFEST).unlink()
    second = prepare_dataset(avmnist, progress=False)
    assert second.built and second.root == first.root
    if damage != "no-manifest":
        assert second.rebuilt_because and str(target) in second.rebuilt_because
    assert len(load_dataset(avmnist, progress=False).split("train")) == 110


def test_unknown_dataset_and_option(tmp_path: Path, avmnist: DatasetConfig) -> None:
    with pytest.raises(UserError, match="unknown dataset 'nope'"):
        load_dataset(DatasetConfig(name="nope", cache_dir=tmp_path), progress=False)
    with pytest.raises(UserError, match=r"option 'val_sise': unknown option \(allowed: val_size\)"):
        load_dataset(avmnist.model_copy(update={"options": {"val_sise": 3}}), progress=False)
    with pytest.raises(UserError, match="set dataset.path"):
        load_dataset(DatasetConfig(name="avmnist", cache_dir=tmp_path), progress=False)


def test_batches_cover_the_split_in_the_given_order(avmnist: DatasetConfig) -> None:
    from harmonic_nas.data import iterate_batches

    data = load_dataset(avmnist, progress=False).split("train")
    order = np.random.default_rng(0).permutation(len(data))
    seen = []
    for x, y in iterate_batches(data.inputs["audio"], data.targets, 32, torch.device("cpu"), order=order):
        assert x.shape[1:] == (1, 112, 112) and x.dtype == torch.float32 and len(x) == len(y) <= 32
        x += 1  # writable copies: the cache is untouched
        seen.append(y.numpy())
    # every batch holds the next slice of ``order`` (read sorted, so memory-mapped reads stay sequential)
    batches = [np.sort(order[i : i + 32]) for i in range(0, len(order), 32)]
    np.testing.assert_array_equal(np.concatenate(seen), np.asarray(data.targets)[np.concatenate(batches)])


def nan_in_val_image(arrays: dict) -> None:
    arrays["val"]["image"][3, 0, 0, 0] = np.nan


def inf_in_train_thumb(arrays: dict) -> None:
    arrays["train"]["thumb"][5:7, 0] = np.inf


def empty_test_split(arrays: dict) -> None:
    arrays["test"] = {key: value[:0] for key, value in arrays["test"].items()}


@pytest.mark.parametrize(("spoil", "expected"), [
    (nan_in_val_image, "1 NaN or infinite values in val 'image' (first in sample 3)"),
    (inf_in_train_thumb, "2 NaN or infinite values in train 'thumb' (first in sample 5)"),
    (empty_test_split, "the test split has no samples"),
])
def test_any_recipe_s_bad_arrays_are_refused_before_normalising(tmp_path: Path, spoil: object, expected: str) -> None:
    """Whatever a builder writes (builtin, adapter or plugin), a NaN would make the normalisation
    statistics, hence the whole cached modality, NaN: finalise refuses it before the manifest exists."""
    rng = np.random.default_rng(0)
    arrays = {split: {"image": rng.normal(size=(8, 1, 4, 4)).astype(np.float32),
                      "thumb": rng.normal(size=(8, 3)).astype(np.float32),
                      "targets": np.arange(8) % 2} for split in ("train", "val", "test")}
    spoil(arrays)  # type: ignore[operator]
    writer = CacheWriter(tmp_path)
    for split, parts in arrays.items():
        writer.put(split, "image", parts["image"])
        writer.put(split, "thumb", parts["thumb"])
        writer.put_targets(split, parts["targets"], "multiclass")
    info = DatasetInfo("mine", {"image": ModalitySpec("image", (1, 4, 4)), "thumb": ModalitySpec("vector", (3,))},
                       "multiclass", 2, ["a", "b"])
    with pytest.raises(UserError, match=re.escape(f"dataset 'mine': {expected}")):
        finalise(writer, info, {}, NullReporter())
    assert not (tmp_path / MANIFEST).exists()

