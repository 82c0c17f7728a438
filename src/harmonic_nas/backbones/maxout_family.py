"""The maxout family: elastic Maxout networks for vectors (text embeddings), its layers as LUT specs and a
module per spec. Op names: ``maxout`` (a block), ``linear`` (the classifier)."""

from __future__ import annotations

from torch import nn

from harmonic_nas.backbones.family import BackboneFamily, register_backbone, spec_field
from harmonic_nas.backbones.maxout import ElasticMaxout, ElasticMaxoutBlock
from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.maxout import MaxoutArch


def _block(inputs: int, hidden: int, factor: int) -> LayerSpec:
    return LayerSpec("maxout", (inputs,), out=hidden, extra=(("factor", factor),))


@register_backbone("maxout")
class MaxoutFamily(BackboneFamily):
    description = "elastic Maxout network (hidden units, blocks, pieces per unit) for vectors"
    config = MaxoutSpace
    supernet = ElasticMaxout
    input_rank = 1
    inputs = "vectors"
    input_layout = "(D,)"
    ops = ("maxout", "linear")

    def layer_specs(self, space_cfg: MaxoutSpace, arch: MaxoutArch, input_shape: tuple[int, ...], include_head: bool,
                    num_classes: int | None, last_tap: int | None) -> list[LayerSpec]:
        hidden, factor = arch.hidden, arch.factor
        blocks = [_block(input_shape[0] if i == 0 else hidden, hidden, factor) for i in range(arch.blocks)]
        specs = blocks[: None if last_tap is None else last_tap + 1]
        return specs + ([LayerSpec("linear", (hidden,), out=num_classes)] if include_head else [])

    def space_layer_specs(self, space_cfg: MaxoutSpace, input_shape: tuple[int, ...], num_classes: int | None,
                          include_head: bool) -> list[LayerSpec]:
        specs: list[LayerSpec] = []
        for hidden in space_cfg.hidden:
            for factor in space_cfg.factors:
                inputs = [input_shape[0]] + ([hidden] if max(space_cfg.blocks) > 1 else [])
                specs += [_block(d, hidden, factor) for d in inputs]
            if include_head:
                specs.append(LayerSpec("linear", (hidden,), out=num_classes))
        return list(dict.fromkeys(specs))

    def tap_shapes(self, space_cfg: MaxoutSpace, arch: MaxoutArch, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [(arch.hidden,)] * arch.blocks

    def space_tap_shapes(self, space_cfg: MaxoutSpace, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [(hidden,) for hidden in sorted(space_cfg.hidden)]

    def build_layer(self, spec: LayerSpec) -> nn.Module:
        cin = spec.input_shape[0]
        if spec.op == "maxout":
            hidden, factor = spec_field(spec, "out"), spec_field(spec, "factor")
            return ElasticMaxoutBlock(cin, hidden, factor, 0.0).to_static(hidden, factor, cin)
        return nn.Linear(cin, spec_field(spec, "out"))
