"""Frozen-backbone features, computed once per backbone and reused by every fusion epoch and candidate.

The fusion search never runs a backbone: each backbone is extracted, its BatchNorm recalibrated on a
fixed seeded train subset, and every tap of every requested split computed once in eval mode and stored
pooled (maps to (N, C_in, L), which is all the projection reads; vectors as (N, D), which the projection
repeats over L). A memory-bounded LRU cache keyed by (modality, arch hash, split) keeps them for the
candidates that share a backbone. Recomputing backbones per sample dominated the authors' run time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.backbones.common import fused_for_inference
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.fusion.projection import pool_to_sequence
from harmonic_nas.data.batches import iterate_batches
from harmonic_nas.space.values import BackboneArch
from harmonic_nas.supernet.subnets import calibration_inputs, prepare_subnet

MB = 1024 * 1024


@dataclass(frozen=True)
class FeatureSettings:
    """How features are computed: the same for every backbone so cached features stay comparable."""

    length: int
    calib_samples: int = 2000
    batch_size: int = 128
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    channels_last: bool = True

    @classmethod
    def from_config(cls, cfg: ExperimentConfig, device: torch.device | str = "cpu") -> FeatureSettings:
        """The settings of an experiment: the search's workers, ``fusion-search`` and export all prepare
        backbones with these, so an exported model is the network its fusion was trained on."""
        sn = cfg.supernet
        return cls(length=cfg.fusion.length, calib_samples=sn.bn_calib_samples, batch_size=sn.batch_size,
                   seed=cfg.runtime.seed, device=torch.device(device), channels_last=sn.channels_last)


def _pool(tap: Tensor, length: int) -> Tensor:
    return (pool_to_sequence(tap, length) if tap.dim() == 4 else tap).float().contiguous().cpu()


def prepared_backbone(
    supernet: Any, arch: BackboneArch, modality: str, dataset: MultimodalDataset, settings: FeatureSettings
) -> nn.Module:
    """The plain backbone ``arch`` with BatchNorm recalibrated on the fixed seeded train subset, in eval
    mode: the network whose taps the fusion is trained on (and so the one to export with it)."""
    calib = calibration_inputs(dataset.split("train").inputs[modality], settings.calib_samples, settings.seed)
    return prepare_subnet(
        supernet, arch, calib, batch_size=settings.batch_size, device=settings.device, channels_last=settings.channels_last
    )


@torch.no_grad()
def backbone_features(
    supernet: Any, arch: BackboneArch, modality: str, dataset: MultimodalDataset, splits: Sequence[str],
    settings: FeatureSettings,
) -> dict[str, list[Tensor]]:
    """Pooled taps of the prepared backbone ``arch`` for each split (eval mode; neither the backbone's
    head nor its classifier is run)."""
    model = prepared_backbone(supernet, arch, modality, dataset, settings)
    trunk = getattr(model, "trunk", None)
    if callable(trunk):  # only stem and stages, BatchNorm folded into the convs: same taps, less work
        taps_of = fused_for_inference(trunk())
    else:
        taps_of = lambda x: model(x).taps  # noqa: E731
    out = {}
    for split in splits:
        inputs = dataset.split(split).inputs[modality]  # type: ignore[arg-type]
        dummy = np.zeros(len(inputs), dtype=np.int64)
        chunks = [
            [_pool(tap, settings.length) for tap in taps_of(x)]
            for x, _ in iterate_batches(inputs, dummy, settings.batch_size, settings.device,
                                        channels_last=settings.channels_last)
        ]
        out[split] = [torch.cat(parts) for parts in zip(*chunks)]
    return out


class FeatureCache:
    """LRU cache of backbone features bounded by ``max_mb`` megabytes (an entry larger than the bound is
    still kept, alone, because the current candidate needs it).

    Keys are (modality, arch hash, split): one cache serves one set of supernets and one ``settings``.
    """

    def __init__(self, settings: FeatureSettings, max_mb: float = 2048.0) -> None:
        self.settings = settings
        self.max_bytes = int(max_mb * MB)
        self._entries: OrderedDict[tuple[str, str, str], list[Tensor]] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(
        self, modality: str, supernet: Any, arch: BackboneArch, dataset: MultimodalDataset, splits: Sequence[str]
    ) -> dict[str, list[Tensor]]:
        """Features of ``arch`` per split; the missing splits are computed together (one extraction)."""
        arch_hash = supernet.space.arch_hash(arch)
        keys = {split: (modality, arch_hash, split) for split in splits}
        missing = [split for split, key in keys.items() if key not in self._entries]
        self.hits += len(splits) - len(missing)
        self.misses += len(missing)
        found = {split: self._entries[key] for split, key in keys.items() if key in self._entries}
        for key in keys.values():
            if key in self._entries:
                self._entries.move_to_end(key)
        if missing:
            computed = backbone_features(supernet, arch, modality, dataset, missing, self.settings)
            for split, taps in computed.items():
                self._put(keys[split], taps)
            found.update(computed)
        return {split: found[split] for split in splits}

    def _put(self, key: tuple[str, str, str], taps: list[Tensor]) -> None:
        self._entries[key] = taps
        self.nbytes += sum(t.numel() * t.element_size() for t in taps)
        while self.nbytes > self.max_bytes and len(self._entries) > 1:
            _, old = self._entries.popitem(last=False)
            self.nbytes -= sum(t.numel() * t.element_size() for t in old)


@dataclass
class SplitFeatures:
    """One split of a candidate's cached features: a tensor per tap (all modalities) and the targets."""

    taps: list[Tensor]
    targets: Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def to(self, device: torch.device) -> SplitFeatures:
        return SplitFeatures([t.to(device) for t in self.taps], self.targets.to(device))

    def subset(self, indices: np.ndarray) -> SplitFeatures:
        """The samples at ``indices`` (a copy)."""
        index = torch.as_tensor(indices, dtype=torch.long, device=self.targets.device)
        return SplitFeatures([t.index_select(0, index) for t in self.taps], self.targets.index_select(0, index))

    def batches(self, batch_size: int, generator: torch.Generator | None = None) -> Iterator[tuple[list[Tensor], Tensor]]:
        """Mini-batches in a random order drawn from ``generator``, or in order when it is None."""
        n = len(self)
        order = torch.randperm(n, generator=generator, device="cpu") if generator is not None else None
        for start in range(0, n, batch_size):
            if order is None:
                yield [t[start : start + batch_size] for t in self.taps], self.targets[start : start + batch_size]
            else:
                idx = order[start : start + batch_size].to(self.targets.device)
                yield [t.index_select(0, idx) for t in self.taps], self.targets.index_select(0, idx)


@dataclass
class CandidateFeatures:
    """The cached features of one candidate's backbones, taps in modality then stage order."""

    taps: list[tuple[str, int]]
    channels: list[int]
    splits: dict[str, SplitFeatures]


def candidate_features(
    cache: FeatureCache,
    backbones: Mapping[str, BackboneArch],
    supernets: Mapping[str, Any],
    dataset: MultimodalDataset,
    splits: Sequence[str] = ("train", "val"),
) -> CandidateFeatures:
    """Features of every tap of every backbone of a candidate (modalities in ``backbones`` order)."""
    names: list[tuple[str, int]] = []
    per_split: dict[str, list[Tensor]] = {split: [] for split in splits}
    for modality, arch in backbones.items():
        features = cache.get(modality, supernets[modality], arch, dataset, splits)
        for split in splits:
            per_split[split].extend(features[split])
        names.extend((modality, s) for s in range(len(features[splits[0]])))
    channels = [t.shape[1] for t in per_split[splits[0]]]
    out = {}
    for split in splits:
        targets = np.asarray(dataset.split(split).targets)  # type: ignore[arg-type]
        target = torch.from_numpy(targets.astype(np.int64 if dataset.task == "multiclass" else np.float32))
        out[split] = SplitFeatures(per_split[split], target)
    return CandidateFeatures(names, channels, out)
