"""Layer specs of a derived fusion network (what the LUT must hold to cost it) and a builder that turns
any of these specs back into a module with example inputs (what the profiler times).

Every name starts with ``fusion_`` so fusion layers never share a LUT key with backbone layers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from harmonic_nas.fusion.blocks import CellOutput, OutputNorm
from harmonic_nas.fusion.operators import OPERATORS, build_operator
from harmonic_nas.fusion.projection import InputProjection
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.genotype import Genotype

PREFIX = "fusion_"
PROJECTION, CELL_NORM, OUT_NORM, CLASSIFIER = "fusion_proj", "fusion_cell_norm", "fusion_out_norm", "fusion_classifier"


def op_spec(name: str, channels: int, length: int) -> LayerSpec:
    """One fusion operator fusing two (C, L) inputs."""
    return LayerSpec(PREFIX + name, (channels, length))


def projection_spec(tap_shape: Sequence[int], channels: int, length: int) -> LayerSpec:
    """Pooling + projection of one raw tap: (C_in, H, W) map or (C_in,) vector -> (C, L)."""
    return LayerSpec(PROJECTION, tuple(tap_shape), out=channels, act="relu", extra=(("L", length),))


def cell_norm_spec(channels: int, length: int) -> LayerSpec:
    return LayerSpec(CELL_NORM, (channels, length), extra=(("inputs", 2),))


def out_norm_spec(num_inputs: int, channels: int, length: int) -> LayerSpec:
    return LayerSpec(OUT_NORM, (channels, length), act="relu", extra=(("inputs", num_inputs),))


def classifier_spec(num_inputs: int, channels: int, length: int, num_classes: int) -> LayerSpec:
    return LayerSpec(CLASSIFIER, (num_inputs * channels * length,), out=num_classes)


def fusion_layer_specs(
    genotype: Genotype,
    tap_shapes: Mapping[str, Sequence[Sequence[int]]],
    channels: int,
    length: int,
    num_classes: int,
) -> list[LayerSpec]:
    """Every layer the derived network runs at inference, once per occurrence (repeats are real cost).

    ``tap_shapes``: per modality, the per-sample shape of each of its taps in stage order, e.g.
    ``{"image": [(24, 14, 14), (40, 7, 7)], "text": [(128,), (128,)]}``. Dead cells and nodes are left
    out because the discrete network never builds them.
    """
    if genotype.dense is not None:
        return dense_layer_specs(genotype, tap_shapes, channels, length, num_classes)
    live = genotype.live
    specs = [projection_spec(tap_shapes[genotype.taps[t][0]][genotype.taps[t][1]], channels, length) for t in live.taps]
    for p in live.cells:
        nodes = genotype.cells[p].nodes
        specs += [op_spec(nodes[d].op, channels, length) for d in live.nodes[p]]
        specs.append(cell_norm_spec(channels, length))
    k = len(genotype.outputs)
    specs += [out_norm_spec(k, channels, length), classifier_spec(k, channels, length, num_classes)]
    return specs


def dense_layer_specs(
    genotype: Genotype,
    tap_shapes: Mapping[str, Sequence[Sequence[int]]],
    channels: int,
    length: int,
    num_classes: int,
) -> list[LayerSpec]:
    """Every layer FB+FF's dense fusion runs: each tap's projection, every operator at every node, each
    cell's norm, the output norm and the classifier (the weighted mixing of inputs and operators is not
    in the LUT, so the cost is a lower bound)."""
    dense = genotype.dense
    assert dense is not None
    specs = [projection_spec(tap_shapes[m][s], channels, length) for m, s in genotype.taps]
    for _ in range(dense.cells):
        specs += [op_spec(op, channels, length) for _ in range(dense.nodes) for op in dense.operators]
        specs.append(cell_norm_spec(channels, length))
    k = len(genotype.outputs)
    return specs + [out_norm_spec(k, channels, length), classifier_spec(k, channels, length, num_classes)]


def build_layer(spec: LayerSpec, batch_size: int = 1) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """The module of one fusion spec in eval mode and random example inputs of the spec's batch size.

    ``module(*inputs)`` runs the layer exactly as the derived network does; a spec this module did not
    produce is a ValueError naming it.
    """
    extra = dict(spec.extra)
    shape = spec.input_shape

    def randn(*dims: int) -> Tensor:
        return torch.randn(batch_size, *dims)

    module: nn.Module
    if spec.op == PROJECTION and spec.out is not None and "L" in extra:
        module = InputProjection(shape[0], spec.out, int(extra["L"]), dropout=0.0)
        inputs: tuple[Tensor, ...] = (randn(*shape),)
    elif spec.op == CELL_NORM and len(shape) == 2:
        module, inputs = CellOutput(*shape), (randn(*shape), randn(*shape))
    elif spec.op == OUT_NORM and len(shape) == 2 and "inputs" in extra:
        k = int(extra["inputs"])
        module, inputs = OutputNorm(k, *shape), tuple(randn(*shape) for _ in range(k))
    elif spec.op == CLASSIFIER and len(shape) == 1 and spec.out is not None:
        module, inputs = nn.Linear(shape[0], spec.out), (randn(*shape),)
    elif spec.op.startswith(PREFIX) and spec.op[len(PREFIX):] in OPERATORS and len(shape) == 2:
        module = build_operator(spec.op[len(PREFIX):], shape[0], shape[1], dropout=0.0)
        inputs = (randn(*shape), randn(*shape))
    else:
        raise ValueError(f"not a fusion layer spec: {spec}")
    return module.eval(), inputs
