"""Elastic backbone supernets (weight sharing over a search space) and extraction of plain subnets, one
registered family per kind of input (``family.register_backbone``; mbv3 and maxout are built in)."""

from __future__ import annotations

from torch import nn

from harmonic_nas.backbones import maxout_family, mbv3_family  # noqa: F401  (the builtin families register)
from harmonic_nas.backbones.common import BackboneOutput, BackboneTrunk, make_divisible
from harmonic_nas.backbones.family import FAMILIES, BackboneFamily, family_of, register_backbone
from harmonic_nas.backbones.maxout import ElasticMaxout, StaticMaxout
from harmonic_nas.backbones.mbv3 import ElasticMBV3
from harmonic_nas.backbones.mbv3_static import StaticMBV3
from harmonic_nas.config.schema import BackboneSpace


def build_supernet(space_cfg: BackboneSpace, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The supernet of ``space_cfg`` for one sample shape: (C, H, W) for mbv3, (D,) for maxout."""
    return family_of(space_cfg).build_supernet(space_cfg, tuple(input_shape), num_classes)


__all__ = [
    "FAMILIES",
    "BackboneFamily",
    "BackboneOutput",
    "BackboneTrunk",
    "ElasticMaxout",
    "ElasticMBV3",
    "StaticMaxout",
    "StaticMBV3",
    "build_supernet",
    "family_of",
    "make_divisible",
    "register_backbone",
]
