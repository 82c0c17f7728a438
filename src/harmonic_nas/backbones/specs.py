"""Backbone layers as LUT specs, by space config or supernet: what runs at inference of a subnet, what a
whole space can run, the shapes of its taps, and a standalone module for each spec so the profiler times
exactly what extraction builds. Each family (backbones.family) computes its own; this module finds it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from harmonic_nas.backbones.family import FAMILIES, BackboneFamily, example_input, family_of
from harmonic_nas.errors import UserError
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space import make_space
from harmonic_nas.space.values import BackboneArch


def _unpack(model: Any, num_classes: int | None, include_head: bool) -> tuple[BackboneFamily, Any, int | None]:
    """(family, space config, classes) of a space config or of a supernet (which knows its classes)."""
    if isinstance(model, nn.Module):
        cfg = model.space.cfg
        return family_of(cfg), cfg, model.num_classes
    family = family_of(model)
    if include_head and num_classes is None:
        raise UserError("layer specs with the classifier need num_classes when given a search space config")
    return family, model, num_classes


def layer_specs(
    supernet_or_space_cfg: Any,
    arch: BackboneArch,
    input_shape: tuple[int, ...],
    include_head: bool = True,
    num_classes: int | None = None,
    last_tap: int | None = None,
) -> list[LayerSpec]:
    """Every layer subnet ``arch`` runs on one sample of ``input_shape``, in execution order.

    ``include_head=False`` stops at the last tap (what a multimodal network runs of a backbone), and
    ``last_tap`` at an earlier one (tap index: stage for mbv3, block for maxout), which is all a runtime
    that prunes unused outputs (ONNX Runtime) runs when the fusion reads no later tap. ``num_classes``
    is only needed for a space config with the head (a supernet knows it).
    """
    family, cfg, classes = _unpack(supernet_or_space_cfg, num_classes, include_head)
    if include_head and last_tap is not None:
        raise ValueError("last_tap stops before the head: pass include_head=False with it")
    return family.layer_specs(cfg, arch, family.check_shape(input_shape), include_head, classes, last_tap)


def space_layer_specs(
    space_cfg: Any, input_shape: tuple[int, ...], num_classes: int, include_head: bool = True
) -> list[LayerSpec]:
    """Every distinct layer any arch of ``space_cfg`` can run (deduplicated, first-seen order)."""
    family = family_of(space_cfg)
    return family.space_layer_specs(space_cfg, family.check_shape(input_shape), num_classes, include_head)


def tap_shapes(supernet_or_space_cfg: Any, arch: BackboneArch, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Per-sample shape of every tap of ``arch`` in stage order: what the fusion projections receive."""
    family, cfg, _ = _unpack(supernet_or_space_cfg, None, include_head=False)
    return family.tap_shapes(cfg, arch, family.check_shape(input_shape))


def max_tap_count(space_cfg: Any, input_shape: tuple[int, ...]) -> int:
    """Taps of the space's largest arch: every tap FB+FF's dense fusion reads."""
    return len(tap_shapes(space_cfg, make_space(space_cfg).max(), input_shape))


def space_tap_shapes(space_cfg: Any, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every distinct tap shape any arch of ``space_cfg`` can produce (for profiling the projections)."""
    family = family_of(space_cfg)
    return family.space_tap_shapes(space_cfg, family.check_shape(input_shape))


def build_layer(spec: LayerSpec) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A randomly initialised module computing ``spec`` (eval mode) and a batch-1 example input."""
    for family in FAMILIES.values():
        if spec.op in family.ops:
            return family.build_layer(spec).eval(), example_input(spec)
    known = ", ".join(op for family in FAMILIES.values() for op in family.ops)
    raise ValueError(f"not a backbone layer spec: {spec.op!r} (known: {known})")
