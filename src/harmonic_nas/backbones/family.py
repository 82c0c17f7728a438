"""Backbone families (mbv3 for 2-D inputs, maxout for vectors) and the registry that makes them pluggable.

A family brings everything the tool needs of one kind of elastic backbone: its config model (one member
of ``config.schema.BackboneSpace``), its architecture encoding (a torch-free ``space`` class registered
under the same name), its supernet, the layer specs of a subnet and of the whole space (what the LUT
holds and the cost model sums), its tap shapes, and a module for each of its layer specs (what the
profiler times). A new family (a 1-D conv net for time series, a small transformer for text) is a config
model, an arch space and one subclass of :class:`BackboneFamily`; nothing else branches on the kind.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import torch
from pydantic import BaseModel
from torch import nn

from harmonic_nas.errors import UserError
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space import arch_space_class
from harmonic_nas.space.base import ArchSpace
from harmonic_nas.space.values import BackboneArch


class BackboneFamily(abc.ABC):
    """One family of elastic backbones (see the module docstring); registered with :func:`register_backbone`."""

    name: ClassVar[str] = ""
    description: ClassVar[str]  # one line, e.g. for `config check`
    config: ClassVar[type[BaseModel]]  # the family's member of config.schema.BackboneSpace
    supernet: ClassVar[type[nn.Module]]  # built as supernet(space_cfg, input_shape[0], num_classes)
    input_rank: ClassVar[int]  # dimensions of one sample
    inputs: ClassVar[str]  # what it reads, e.g. "2-D inputs", for error messages
    input_layout: ClassVar[str]  # the sample shape, e.g. "(C, H, W)"
    ops: ClassVar[tuple[str, ...]]  # the LUT op names of its layers (no other family uses them)
    arch_space: ClassVar[type[ArchSpace]]  # set by register_backbone: the space class of the same name

    def check_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``input_shape`` as positive ints of this family's rank, or one UserError line."""
        shape = tuple(input_shape)
        if any(not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1 for n in shape):
            raise UserError(f"input shape must be positive integers, found {shape}")
        shape = tuple(int(n) for n in shape)
        if len(shape) != self.input_rank:
            others = [f for f in FAMILIES.values() if f.input_rank == len(shape)]
            hint = f"; use type {others[0].name} for {others[0].inputs}" if others else ""
            raise UserError(f"the {self.name} backbone takes {self.inputs} shaped {self.input_layout}, found input "
                            f"shape {shape}{hint}")
        return shape

    def build_supernet(self, space_cfg: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
        """The supernet of ``space_cfg`` for one sample shape."""
        if num_classes < 1:
            raise UserError(f"num_classes must be at least 1, found {num_classes}")
        shape = self.check_shape(input_shape)
        return self.supernet(space_cfg, shape[0], num_classes)

    @abc.abstractmethod
    def layer_specs(self, space_cfg: Any, arch: BackboneArch, input_shape: tuple[int, ...], include_head: bool,
                    num_classes: int | None, last_tap: int | None) -> list[LayerSpec]:
        """Every layer subnet ``arch`` runs, in execution order, up to ``last_tap`` (see backbones.specs)."""

    @abc.abstractmethod
    def space_layer_specs(self, space_cfg: Any, input_shape: tuple[int, ...], num_classes: int | None,
                          include_head: bool) -> list[LayerSpec]:
        """Every distinct layer any arch of the space can run."""

    @abc.abstractmethod
    def tap_shapes(self, space_cfg: Any, arch: BackboneArch, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Per-sample shape of every tap of ``arch``, in order."""

    @abc.abstractmethod
    def space_tap_shapes(self, space_cfg: Any, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Every distinct tap shape any arch of the space can produce."""

    @abc.abstractmethod
    def build_layer(self, spec: LayerSpec) -> nn.Module:
        """A randomly initialised module (eval mode) computing ``spec``, one of this family's ``ops``."""


def spec_field(spec: LayerSpec, name: str) -> Any:
    """A typed field or an ``extra`` entry of ``spec``; a ValueError naming it if the spec lacks it."""
    value = getattr(spec, name, None) if name in LayerSpec.__dataclass_fields__ else dict(spec.extra).get(name)
    if value is None:
        raise ValueError(f"layer spec {spec.op!r} needs {name}, found none in {spec}")
    return value


def example_input(spec: LayerSpec) -> tuple[torch.Tensor, ...]:
    """A batch-1 random input of ``spec``'s input shape."""
    return (torch.randn(1, *spec.input_shape),)


_REGISTRY: dict[str, BackboneFamily] = {}
FAMILIES: Mapping[str, BackboneFamily] = MappingProxyType(_REGISTRY)
"""Registered families by name, in registration order (read-only: add with ``register_backbone``)."""

FamilyT = TypeVar("FamilyT", bound=type[BackboneFamily])


def register_backbone(name: str) -> Callable[[FamilyT], FamilyT]:
    """Class decorator registering a :class:`BackboneFamily` subclass under ``name``, the ``type`` of its
    config model and the name of its arch space (``space.register_arch_space``)."""

    def decorate(cls: FamilyT) -> FamilyT:
        if name in _REGISTRY:
            raise UserError(f"backbone family '{name}' is already registered by {type(_REGISTRY[name]).__qualname__}")
        cls.name = name
        cls.arch_space = arch_space_class(name)
        taken = {op for family in _REGISTRY.values() for op in family.ops} & set(cls.ops)
        if taken:
            raise UserError(f"backbone family '{name}': layer op {sorted(taken)[0]!r} belongs to another family")
        _REGISTRY[name] = cls()
        return cls

    return decorate


def family_of(space_cfg_or_name: Any) -> BackboneFamily:
    """The family of a space config (by its ``type``) or of a family name; one UserError line if unknown."""
    name = space_cfg_or_name if isinstance(space_cfg_or_name, str) else getattr(space_cfg_or_name, "type", None)
    if name not in _REGISTRY:
        raise UserError(f"unknown backbone space type {name!r}: expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]
