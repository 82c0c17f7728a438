"""Backbone-feature cache: computed once, hits, eviction by size, identical features after eviction,
and the cached features are the pooled taps of the prepared (BN-recalibrated) backbone."""

from __future__ import annotations

import random
from typing import Any

import torch
from helpers import image_supernet, thumb_supernet

from harmonic_nas.space import MaxoutArch
from harmonic_nas.fusion.features import (
    FeatureCache,
    FeatureSettings,
    SplitFeatures,
    candidate_features,
    prepared_backbone,
)
from harmonic_nas.fusion.projection import pool_to_sequence

SETTINGS = FeatureSettings(length=4, calib_samples=128, batch_size=128, seed=0, channels_last=False)


def nbytes(taps: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in taps)


def test_features_are_computed_once_and_hit_afterwards(mnist_pair: Any) -> None:
    supernet = image_supernet()
    arch = supernet.space.min()
    cache = FeatureCache(SETTINGS, max_mb=64)
    first = cache.get("image", supernet, arch, mnist_pair, ["train", "val"])
    assert (cache.hits, cache.misses, len(cache)) == (0, 2, 2)
    second = cache.get("image", supernet, arch, mnist_pair, ["val", "train"])
    assert (cache.hits, cache.misses) == (2, 2)
    assert all(a is b for a, b in zip(first["train"], second["train"]))  # the same tensors, not recomputed
    # An arch building the same network (inactive genes differ) is the same entry.
    same = arch.model_copy(update={"ks": (arch.ks[0],) * len(arch.ks[:-1]) + (5,)})
    assert supernet.space.arch_hash(same) == supernet.space.arch_hash(arch)
    cache.get("image", supernet, same, mnist_pair, ["val"])
    assert cache.misses == 2
    n_train, n_val = len(mnist_pair.split("train")), len(mnist_pair.split("val"))
    assert [t.shape for t in first["val"]] == [(n_val, 8, 4), (n_val, 16, 4)]  # pooled (N, C_in, L)
    assert first["train"][0].shape[0] == n_train and first["train"][0].dtype == torch.float32
    assert cache.nbytes == nbytes(first["train"]) + nbytes(first["val"])


def test_eviction_by_size_keeps_the_recent_entries_and_recomputes_identically(mnist_pair: Any) -> None:
    supernet = image_supernet()
    small, large = supernet.space.min(), supernet.space.max()
    val_bytes = nbytes(FeatureCache(SETTINGS).get("image", supernet, small, mnist_pair, ["val"])["val"])
    cache = FeatureCache(SETTINGS, max_mb=1.5 * val_bytes / 2**20)  # room for one val entry only
    before = cache.get("image", supernet, small, mnist_pair, ["val"])["val"]
    cache.get("image", supernet, large, mnist_pair, ["val"])
    assert len(cache) == 1 and ("image", supernet.space.arch_hash(small), "val") not in cache
    assert cache.nbytes <= cache.max_bytes
    again = cache.get("image", supernet, small, mnist_pair, ["val"])["val"]
    assert cache.misses == 3
    assert all(torch.equal(a, b) for a, b in zip(before, again))


def test_cached_features_are_the_pooled_taps_of_the_recalibrated_backbone(mnist_pair: Any) -> None:
    supernet = image_supernet()
    arch = supernet.space.sample(random.Random(3))
    cached = FeatureCache(SETTINGS).get("image", supernet, arch, mnist_pair, ["val"])["val"]
    model = prepared_backbone(supernet, arch, "image", mnist_pair, SETTINGS)
    x = torch.from_numpy(mnist_pair.split("val").inputs["image"][:50])
    with torch.no_grad():
        taps = model(x).taps
    for tap, stored in zip(taps, cached):
        assert torch.allclose(pool_to_sequence(tap, 4), stored[:50], atol=1e-5)


def test_candidate_features_concatenate_taps_in_modality_then_stage_order(mnist_pair: Any) -> None:
    supernets = {"image": image_supernet(), "thumb": thumb_supernet()}
    backbones = {"image": supernets["image"].space.min(), "thumb": MaxoutArch(hidden=16, blocks=2, pieces=2, width_mult=1.0)}
    features = candidate_features(FeatureCache(SETTINGS), backbones, supernets, mnist_pair)
    assert features.taps == [("image", 0), ("image", 1), ("thumb", 0), ("thumb", 1)]
    assert features.channels == [8, 16, 16, 16]
    val = features.splits["val"]
    assert val.taps[2].shape == (len(val), 16)  # vectors stay (N, D)
    assert val.targets.dtype == torch.int64 and set(features.splits) == {"train", "val"}


def test_batches_visit_every_sample_once() -> None:
    split = SplitFeatures([torch.arange(10.0)[:, None]], torch.arange(10))
    seen = torch.cat([y for _, y in split.batches(4, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    for taps, y in split.batches(3, torch.Generator().manual_seed(1)):
        assert torch.equal(taps[0][:, 0].long(), y)
    assert [len(y) for _, y in split.batches(4)] == [4, 4, 2]
