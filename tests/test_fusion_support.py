"""The fusion fixtures of tests/helpers.py: the fixture LUT and the synthetic features."""

from __future__ import annotations

import torch
from helpers import COSTS, OPS, make_lut, synthetic_split

from harmonic_nas.fusion.specs import op_spec


def test_lut_fixture_has_every_operator_at_its_shape() -> None:
    lut = make_lut(8, 4)
    for name in OPS:
        assert lut.lookup(op_spec(name, 8, 4)).latency_ms == COSTS[name]
    assert lut.latency_range([op_spec(n, 8, 4) for n in OPS]) == (0.01, 2.0)


def test_synthetic_split_is_balanced_enough() -> None:
    counts = torch.bincount(synthetic_split(600, 0).targets, minlength=3)
    assert counts.min() > 100
