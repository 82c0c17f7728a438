"""The maxout family: elastic Maxout networks for vectors (text embeddings), its layers as LUT specs and a
module per spec. Op names: ``maxout`` (a block), ``linear`` (the classifier)."""

from __future__ import annotations

from torch import nn

from harmonic_nas.backbones.family import BackboneFamily, register_backbone, spec_field
from harmonic_nas.backbones.maxout import ElasticMaxout, ElasticMaxoutBlock
from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.maxout import MaxoutArch, block_width


def _block(inputs: int, units: int, pieces: int) -> LayerSpec:
    return LayerSpec("maxout", (inputs,), out=units, extra=(("pieces", pieces),))


@register_backbone("maxout")
class MaxoutFamily(BackboneFamily):
    description = "elastic Maxout network (units, blocks, pieces per unit, width multiplier) for vectors"
    config = MaxoutSpace
    supernet = ElasticMaxout
    input_rank = 1
    inputs = "vectors"
    input_layout = "(D,)"
    ops = ("maxout", "linear")

    def layer_specs(self, space_cfg: MaxoutSpace, arch: MaxoutArch, input_shape: tuple[int, ...], include_head: bool,
                    num_classes: int | None, last_tap: int | None) -> list[LayerSpec]:
        widths = arch.widths()
        inputs = [input_shape[0], *widths[:-1]]
        blocks = [_block(d, units, arch.pieces) for d, units in zip(inputs, widths)]
        specs = blocks[: None if last_tap is None else last_tap + 1]
        return specs + ([LayerSpec("linear", (widths[-1],), out=num_classes)] if include_head else [])

    def space_layer_specs(self, space_cfg: MaxoutSpace, input_shape: tuple[int, ...], num_classes: int | None,
                          include_head: bool) -> list[LayerSpec]:
        specs: list[LayerSpec] = []
        for h in sorted(space_cfg.hidden):
            for m in sorted(space_cfg.width_multipliers):
                widths = [block_width(h, m, i) for i in range(max(space_cfg.blocks))]
                inputs = [input_shape[0], *widths[:-1]]
                for pieces in sorted(space_cfg.pieces):
                    specs += [_block(d, units, pieces) for d, units in zip(inputs, widths)]
                if include_head:
                    specs += [LayerSpec("linear", (widths[n - 1],), out=num_classes) for n in sorted(space_cfg.blocks)]
        return list(dict.fromkeys(specs))

    def tap_shapes(self, space_cfg: MaxoutSpace, arch: MaxoutArch, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [(units,) for units in arch.widths()]

    def space_tap_shapes(self, space_cfg: MaxoutSpace, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        widths = {block_width(h, m, i) for h in space_cfg.hidden for m in space_cfg.width_multipliers
                  for i in range(max(space_cfg.blocks))}
        return [(units,) for units in sorted(widths)]

    def build_layer(self, spec: LayerSpec) -> nn.Module:
        cin = spec.input_shape[0]
        if spec.op == "maxout":
            units, pieces = spec_field(spec, "out"), spec_field(spec, "pieces")
            return ElasticMaxoutBlock(cin, units, pieces, 0.0).to_static(units, pieces, cin)
        return nn.Linear(cin, spec_field(spec, "out"))
