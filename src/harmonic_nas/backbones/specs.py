"""Backbone layers as LUT specs: what runs at inference of a subnet, what a whole space can run, and a
standalone module for each spec so the profiler times exactly what extraction builds.

Layers are built through the supernet's own ``to_static`` paths, so a profiled layer and the layer of
an extracted subnet cannot drift apart. Op names: ``conv_bn_act`` (stem, head), ``mbconv``,
``pool_linear`` (global pool + classifier), ``maxout``, ``linear`` (maxout classifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harmonic_nas.backbones.common import make_divisible
from harmonic_nas.backbones.maxout import ElasticMaxout, ElasticMaxoutBlock
from harmonic_nas.backbones.mbv3 import ElasticMBConv, ElasticMBV3, _conv_bn_act
from harmonic_nas.config.schema import MaxoutSpace, MBV3Space
from harmonic_nas.errors import UserError
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.maxout import MaxoutArchSpace
from harmonic_nas.space.mbv3 import MBV3ArchSpace

SpaceOrSupernet = MBV3Space | MaxoutSpace | ElasticMBV3 | ElasticMaxout
BACKBONE_OPS = ("conv_bn_act", "mbconv", "pool_linear", "maxout", "linear")


@dataclass(frozen=True)
class _Slot:
    """Geometry of one MBConv block slot; independent of the arch (odd kernels, 'same' padding)."""

    stage: int
    index: int
    input_shape: tuple[int, int, int]
    out: int
    stride: int
    se: bool
    act: str


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1


def _mbv3_geometry(cfg: MBV3Space, input_shape: tuple[int, ...]) -> tuple[LayerSpec, list[_Slot], LayerSpec, int]:
    """(stem spec, every block slot, head spec, head width) for one input shape."""
    channels, height, width = input_shape
    stem_width = make_divisible(cfg.stem_width * cfg.width_mult)
    head_width = make_divisible(cfg.head_width * cfg.width_mult)
    stem = LayerSpec("conv_bn_act", (channels, height, width), out=stem_width, kernel=3,
                     stride=cfg.stem_stride, act="hswish")
    height, width = _out_size(height, cfg.stem_stride), _out_size(width, cfg.stem_stride)
    slots, cin = [], stem_width
    for s, stage in enumerate(cfg.stages):
        cout = make_divisible(stage.width * cfg.width_mult)
        for i in range(max(cfg.depths)):
            stride = stage.stride if i == 0 else 1
            slots.append(_Slot(s, i, (cin, height, width), cout, stride, stage.se, stage.act))
            height, width, cin = _out_size(height, stride), _out_size(width, stride), cout
    head = LayerSpec("conv_bn_act", (cin, height, width), out=head_width, kernel=1, stride=1, act="hswish")
    return stem, slots, head, head_width


def _mbconv(slot: _Slot, kernel: int, mid: int) -> LayerSpec:
    return LayerSpec("mbconv", slot.input_shape, out=slot.out, mid=mid, kernel=kernel, stride=slot.stride,
                     se=slot.se, act=slot.act)


def _pool_linear(head: LayerSpec, num_classes: int | None) -> LayerSpec:
    """Global pool + classifier on the head conv's output (same size: the head is a 1x1, stride 1 conv)."""
    return LayerSpec("pool_linear", (_field(head, "out"), *head.input_shape[1:]), out=num_classes)


def _mid(cin: int, expand: float) -> int:
    """Middle width of an MBConv, the same rule as ElasticMBConv.mid_channels."""
    return make_divisible(round(cin * expand))


def _unpack(model: SpaceOrSupernet, num_classes: int | None, include_head: bool) -> tuple[Any, int | None]:
    if isinstance(model, (ElasticMBV3, ElasticMaxout)):
        return model.space.cfg, model.num_classes
    if isinstance(model, (MBV3Space, MaxoutSpace)):
        if include_head and num_classes is None:
            raise UserError("layer specs with the classifier need num_classes when given a search space config")
        return model, num_classes
    raise TypeError(f"expected an MBV3Space, MaxoutSpace or their supernet, found {type(model).__name__}")


def _check_shape(cfg: MBV3Space | MaxoutSpace, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(int(v) for v in input_shape)
    if cfg.type == "mbv3" and len(shape) != 3:
        raise UserError(f"an mbv3 backbone takes inputs shaped (C, H, W), found {shape}")
    if cfg.type == "maxout" and len(shape) != 1:
        raise UserError(f"a maxout backbone takes vectors shaped (D,), found {shape}")
    return shape


def layer_specs(
    supernet_or_space_cfg: SpaceOrSupernet,
    arch: dict[str, Any],
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
    cfg, classes = _unpack(supernet_or_space_cfg, num_classes, include_head)
    shape = _check_shape(cfg, input_shape)
    if include_head and last_tap is not None:
        raise ValueError("last_tap stops before the head: pass include_head=False with it")
    stop = last_tap + 1 if last_tap is not None else None
    if cfg.type == "maxout":
        arch = MaxoutArchSpace(cfg).validate(arch)
        hidden, factor = arch["hidden"], arch["factor"]
        specs = [
            LayerSpec("maxout", (shape[0] if i == 0 else hidden,), out=hidden, extra=(("factor", factor),))
            for i in range(arch["blocks"])
        ][:stop]
        return specs + ([LayerSpec("linear", (hidden,), out=classes)] if include_head else [])
    space = MBV3ArchSpace(cfg)
    arch = space.validate(arch)
    stem, slots, head, _ = _mbv3_geometry(cfg, shape)
    specs = [stem]
    for slot in slots[: None if stop is None else stop * space.max_depth]:
        if slot.index < arch["d"][slot.stage]:
            j = space.slot(slot.stage, slot.index)
            specs.append(_mbconv(slot, arch["ks"][j], _mid(slot.input_shape[0], arch["e"][j])))
    if include_head:
        specs += [head, _pool_linear(head, classes)]
    return specs


def space_layer_specs(
    space_cfg: MBV3Space | MaxoutSpace, input_shape: tuple[int, ...], num_classes: int, include_head: bool = True
) -> list[LayerSpec]:
    """Every distinct layer any arch of ``space_cfg`` can run (deduplicated, first-seen order)."""
    shape = _check_shape(space_cfg, input_shape)
    specs: list[LayerSpec] = []
    if space_cfg.type == "maxout":
        for hidden in space_cfg.hidden:
            for factor in space_cfg.factors:
                inputs = [shape[0]] + ([hidden] if max(space_cfg.blocks) > 1 else [])
                specs += [LayerSpec("maxout", (d,), out=hidden, extra=(("factor", factor),)) for d in inputs]
            if include_head:
                specs.append(LayerSpec("linear", (hidden,), out=num_classes))
        return list(dict.fromkeys(specs))
    stem, slots, head, _ = _mbv3_geometry(space_cfg, shape)
    specs.append(stem)
    for slot in slots:
        for expand in space_cfg.expands:
            specs += [_mbconv(slot, k, _mid(slot.input_shape[0], expand)) for k in space_cfg.kernels]
    if include_head:
        specs += [head, _pool_linear(head, num_classes)]
    return list(dict.fromkeys(specs))


def tap_shapes(
    supernet_or_space_cfg: SpaceOrSupernet, arch: dict[str, Any], input_shape: tuple[int, ...]
) -> list[tuple[int, ...]]:
    """Per-sample shape of every tap of ``arch`` in stage order: what the fusion projections receive."""
    cfg, _ = _unpack(supernet_or_space_cfg, None, include_head=False)
    shape = _check_shape(cfg, input_shape)
    if cfg.type == "maxout":
        arch = MaxoutArchSpace(cfg).validate(arch)
        return [(arch["hidden"],)] * arch["blocks"]
    MBV3ArchSpace(cfg).validate(arch)
    return _mbv3_tap_shapes(cfg, shape)


def space_tap_shapes(space_cfg: MBV3Space | MaxoutSpace, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every distinct tap shape any arch of ``space_cfg`` can produce (for profiling the projections)."""
    shape = _check_shape(space_cfg, input_shape)
    if space_cfg.type == "maxout":
        return [(hidden,) for hidden in sorted(space_cfg.hidden)]
    return list(dict.fromkeys(_mbv3_tap_shapes(space_cfg, shape)))


def _mbv3_tap_shapes(cfg: MBV3Space, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Output shape of each stage's last slot: independent of the arch (depth never changes the size)."""
    _, slots, _, _ = _mbv3_geometry(cfg, input_shape)
    last = {slot.stage: slot for slot in slots}
    return [
        (s.out, _out_size(s.input_shape[1], s.stride), _out_size(s.input_shape[2], s.stride))
        for s in (last[i] for i in range(len(cfg.stages)))
    ]


class PoolLinear(nn.Module):
    """Global average pool -> classifier: the tail of StaticMBV3.forward (dropout is identity in eval)."""

    def __init__(self, classifier: nn.Linear) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _field(spec: LayerSpec, name: str) -> Any:
    value = getattr(spec, name, None) if name in LayerSpec.__dataclass_fields__ else dict(spec.extra).get(name)
    if value is None:
        raise ValueError(f"layer spec {spec.op!r} needs {name}, found none in {spec}")
    return value


def build_layer(spec: LayerSpec) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A randomly initialised module computing ``spec`` (eval mode) and a batch-1 example input."""
    cin = spec.input_shape[0]
    example = (torch.randn(1, *spec.input_shape),)
    module: nn.Module
    if spec.op == "conv_bn_act":
        out, kernel, stride, act = (_field(spec, name) for name in ("out", "kernel", "stride", "act"))
        module = _conv_bn_act(cin, out, kernel, stride, act)
    elif spec.op == "mbconv":
        expand = _field(spec, "mid") / cin  # mid is a multiple of 8, so mid_channels(expand) gives it back
        kernel = _field(spec, "kernel")
        block = ElasticMBConv(cin, _field(spec, "out"), _field(spec, "stride"), [kernel], [expand],
                              _field(spec, "se"), _field(spec, "act"))
        module = block.to_static(kernel, expand)
    elif spec.op == "pool_linear":
        module = PoolLinear(nn.Linear(cin, _field(spec, "out")))
    elif spec.op == "maxout":
        hidden, factor = _field(spec, "out"), _field(spec, "factor")
        module = ElasticMaxoutBlock(cin, hidden, factor, 0.0).to_static(hidden, factor, cin)
    elif spec.op == "linear":
        module = nn.Linear(cin, _field(spec, "out"))
    else:
        raise ValueError(f"not a backbone layer spec: {spec.op!r} (known: {', '.join(BACKBONE_OPS)})")
    return module.eval(), example
