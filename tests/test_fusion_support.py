"""Shared fixtures of the fusion tests (LUTs with fusion entries, small supernets, synthetic features),
and the checks of those fixtures themselves."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config.schema import FusionConfig, MaxoutSpace, MBV3Space, MBV3Stage
from harmonic_nas.fusion.features import SplitFeatures
from harmonic_nas.fusion.specs import op_spec
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader
from harmonic_nas.hardware.specs import LayerSpec

OPS = ["sum", "attention", "linear_glu", "concat_fc", "squeeze_excitation", "concat_mish"]
# Very different costs, cheapest first: what the hardware loss must steer towards.
COSTS = {"sum": 0.01, "squeeze_excitation": 0.05, "concat_fc": 0.4, "concat_mish": 0.5, "linear_glu": 0.9, "attention": 2.0}


def make_lut(channels: int, length: int, costs: Mapping[str, float] = COSTS, specs: list[LayerSpec] = ()) -> LookupTable:
    """A LUT with one entry per fusion operator at (C, L) (energy = 2 x latency) plus ``specs`` at 0.1 ms."""
    header = LutHeader.for_this_host(device="testcpu", runtime="torch", method="fixture", batch_size=1, threads=1,
                                     energy_source="estimated:fixture")
    table = LookupTable(header)
    for name, ms in costs.items():
        table.add(op_spec(name, channels, length), LutEntry(latency_ms=ms, latency_std_ms=0.0, energy_mj=2 * ms, repeats=1))
    for spec in specs:
        table.add(spec, LutEntry(latency_ms=0.1, latency_std_ms=0.0, energy_mj=0.2, repeats=1))
    return table


def small_fusion(**changes: object) -> FusionConfig:
    values: dict[str, object] = dict(channels=8, length=4, epochs=2, finetune_epochs=2, batch_size=64, lr=3e-3,
                                     min_lr=1e-4, arch_lr=3e-3, dropout=0.1, cells=[1, 2], nodes=[1, 2])
    values.update(changes)
    return FusionConfig(**values)  # type: ignore[arg-type]


IMAGE_SPACE = MBV3Space(stem_width=8, stages=[MBV3Stage(width=8), MBV3Stage(width=16, se=True)], depths=[1, 2],
                        expands=[3, 4], kernels=[3, 5], head_width=32)
THUMB_SPACE = MaxoutSpace(hidden=[16, 32], blocks=[1, 2], factors=[2])


def image_supernet(seed: int = 0) -> torch.nn.Module:
    """An untrained (random) supernet for the conftest's 1x28x28 image modality: features are features."""
    torch.manual_seed(seed)
    return build_supernet(IMAGE_SPACE, (1, 28, 28), 10).eval()


def thumb_supernet(seed: int = 0) -> torch.nn.Module:
    """An untrained supernet for the conftest's 49-d thumbnail modality."""
    torch.manual_seed(seed)
    return build_supernet(THUMB_SPACE, (49,), 10).eval()


def synthetic_split(n: int, seed: int) -> SplitFeatures:
    """Three pooled taps (two maps, one vector); the class (of 3) is readable from taps 0 and 2 together."""
    g = torch.Generator().manual_seed(seed)
    taps = [torch.randn(n, 6, 4, generator=g), torch.randn(n, 5, 4, generator=g), torch.randn(n, 7, generator=g)]
    score = taps[0][:, 0].mean(1) + taps[2][:, 0]
    targets = (score > 0.5).long() + (score > -0.5).long()
    return SplitFeatures(taps, targets)


def dot_product_split(n: int, seed: int, channels: int = 4) -> SplitFeatures:
    """Two modalities' taps (B, channels, 4); the class is the sign of their dot product, an interaction
    the cheap operators (sum, squeeze-excitation) cannot express and the dearer concat/GLU ones can."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, channels, 4, generator=g), torch.randn(n, channels, 4, generator=g)
    return SplitFeatures([a, b], ((a * b).sum(1).mean(1) > 0).long())


def test_lut_fixture_has_every_operator_at_its_shape() -> None:
    lut = make_lut(8, 4)
    for name in OPS:
        assert lut.lookup(op_spec(name, 8, 4)).latency_ms == COSTS[name]
    assert lut.latency_range([op_spec(n, 8, 4) for n in OPS]) == (0.01, 2.0)


def test_synthetic_split_is_balanced_enough() -> None:
    counts = torch.bincount(synthetic_split(600, 0).targets, minlength=3)
    assert counts.min() > 100
