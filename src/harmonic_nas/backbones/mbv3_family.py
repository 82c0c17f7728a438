"""The mbv3 family: elastic MobileNetV3 for 2-D inputs, its layers as LUT specs and a module per spec.

Layers are built through the supernet's own ``to_static`` paths, so a profiled layer and the layer of
an extracted subnet cannot drift apart. Op names: ``conv_bn_act`` (stem, head), ``mbconv``,
``pool_linear`` (global pool + classifier).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch
import torch.nn.functional as F
from torch import nn

from harmonic_nas.backbones.common import make_divisible
from harmonic_nas.backbones.family import BackboneFamily, register_backbone, spec_field
from harmonic_nas.backbones.mbv3 import ElasticMBConv, ElasticMBV3, _conv_bn_act
from harmonic_nas.config.schema import MBV3Space
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.mbv3 import MBV3Arch


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


def _geometry(cfg: MBV3Space, input_shape: tuple[int, ...]) -> tuple[LayerSpec, list[_Slot], LayerSpec]:
    """(stem spec, every block slot, head spec) for one input shape."""
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
    return stem, slots, head


def _mbconv(slot: _Slot, kernel: int, mid: int) -> LayerSpec:
    return LayerSpec("mbconv", slot.input_shape, out=slot.out, mid=mid, kernel=kernel, stride=slot.stride,
                     se=slot.se, act=slot.act)


def _pool_linear(head: LayerSpec, num_classes: int | None) -> LayerSpec:
    """Global pool + classifier on the head conv's output (same size: the head is a 1x1, stride 1 conv)."""
    return LayerSpec("pool_linear", (spec_field(head, "out"), *head.input_shape[1:]), out=num_classes)


def _mid(cin: int, expand: float) -> int:
    """Middle width of an MBConv, the same rule as ElasticMBConv.mid_channels."""
    return make_divisible(round(cin * expand))


def _tap_shapes(cfg: MBV3Space, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Output shape of each stage's last slot: independent of the arch (depth never changes the size)."""
    _, slots, _ = _geometry(cfg, input_shape)
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


@register_backbone("mbv3")
class MBV3Family(BackboneFamily):
    description = "elastic MobileNetV3 (kernel, expand ratio, depth per stage) for images and spectrograms"
    config = MBV3Space
    supernet = ElasticMBV3
    input_rank = 3
    inputs = "2-D inputs"
    input_layout = "(C, H, W)"
    ops = ("conv_bn_act", "mbconv", "pool_linear")

    def layer_specs(self, space_cfg: MBV3Space, arch: MBV3Arch, input_shape: tuple[int, ...], include_head: bool,
                    num_classes: int | None, last_tap: int | None) -> list[LayerSpec]:
        max_depth = max(space_cfg.depths)
        stem, slots, head = _geometry(space_cfg, input_shape)
        stop = None if last_tap is None else (last_tap + 1) * max_depth
        specs = [stem]
        for slot in slots[:stop]:
            if slot.index < arch.d[slot.stage]:
                j = slot.stage * max_depth + slot.index
                specs.append(_mbconv(slot, arch.ks[j], _mid(slot.input_shape[0], arch.e[j])))
        if include_head:
            specs += [head, _pool_linear(head, num_classes)]
        return specs

    def space_layer_specs(self, space_cfg: MBV3Space, input_shape: tuple[int, ...], num_classes: int | None,
                          include_head: bool) -> list[LayerSpec]:
        stem, slots, head = _geometry(space_cfg, input_shape)
        specs = [stem]
        for slot in slots:
            for expand in space_cfg.expands:
                specs += [_mbconv(slot, k, _mid(slot.input_shape[0], expand)) for k in space_cfg.kernels]
        if include_head:
            specs += [head, _pool_linear(head, num_classes)]
        return list(dict.fromkeys(specs))

    def tap_shapes(self, space_cfg: MBV3Space, arch: MBV3Arch, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return _tap_shapes(space_cfg, input_shape)

    def space_tap_shapes(self, space_cfg: MBV3Space, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return list(dict.fromkeys(_tap_shapes(space_cfg, input_shape)))

    def build_layer(self, spec: LayerSpec) -> nn.Module:
        cin = spec.input_shape[0]
        if spec.op == "conv_bn_act":
            out, kernel, stride, act = (spec_field(spec, name) for name in ("out", "kernel", "stride", "act"))
            return _conv_bn_act(cin, out, kernel, stride, act)
        if spec.op == "mbconv":
            expand = spec_field(spec, "mid") / cin  # mid is a multiple of 8, so mid_channels(expand) gives it back
            kernel = spec_field(spec, "kernel")
            block = ElasticMBConv(cin, spec_field(spec, "out"), spec_field(spec, "stride"), [kernel], [expand],
                                  spec_field(spec, "se"), spec_field(spec, "act"))
            return block.to_static(kernel, expand)
        return PoolLinear(nn.Linear(cin, spec_field(spec, "out")))
