"""Elastic backbone supernets (weight sharing over a search space) and extraction of plain subnets."""

from __future__ import annotations

from harmonic_nas.backbones.common import BackboneOutput, BackboneTrunk, make_divisible
from harmonic_nas.backbones.maxout import ElasticMaxout, StaticMaxout
from harmonic_nas.backbones.mbv3 import ElasticMBV3
from harmonic_nas.backbones.mbv3_static import StaticMBV3
from harmonic_nas.config.schema import MaxoutSpace, MBV3Space
from harmonic_nas.errors import UserError


def build_supernet(
    space_cfg: MBV3Space | MaxoutSpace, input_shape: tuple[int, ...], num_classes: int
) -> ElasticMBV3 | ElasticMaxout:
    """The supernet of ``space_cfg`` for one sample shape: (C, H, W) for mbv3, (D,) for maxout."""
    shape = tuple(input_shape)
    kind = getattr(space_cfg, "type", None)
    if num_classes < 1:
        raise UserError(f"num_classes must be at least 1, found {num_classes}")
    if any(not isinstance(n, int) or n < 1 for n in shape):
        raise UserError(f"input shape must be positive integers, found {shape}")
    if kind == "mbv3":
        if len(shape) != 3:
            raise UserError(
                f"an mbv3 backbone takes 2-D inputs shaped (C, H, W), found input shape {shape}; "
                "use a maxout space for vectors"
            )
        return ElasticMBV3(space_cfg, shape[0], num_classes)  # type: ignore[arg-type]
    if kind == "maxout":
        if len(shape) != 1:
            raise UserError(
                f"a maxout backbone takes vectors shaped (D,), found input shape {shape}; "
                "use an mbv3 space for 2-D inputs"
            )
        return ElasticMaxout(space_cfg, shape[0], num_classes)  # type: ignore[arg-type]
    raise UserError(f"unknown backbone space type {kind!r}: expected one of ['maxout', 'mbv3']")


__all__ = [
    "BackboneOutput",
    "BackboneTrunk",
    "ElasticMaxout",
    "ElasticMBV3",
    "StaticMaxout",
    "StaticMBV3",
    "build_supernet",
    "make_divisible",
]
