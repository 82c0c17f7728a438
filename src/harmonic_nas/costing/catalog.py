"""Which layers a search space can run and which ones one candidate runs: the two lists the profiler and
the cost model work from, built from the backbone and fusion spec functions so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from harmonic_nas.backbones import specs as backbone_specs
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.errors import UserError
from harmonic_nas.fusion import specs as fusion_specs
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.fusion import output_cells
from harmonic_nas.space.genotype import Genotype
from harmonic_nas.space.values import BackboneArch

Shapes = Mapping[str, tuple[int, ...]]


def _shape(input_shapes: Shapes, modality: str) -> tuple[int, ...]:
    if modality not in input_shapes:
        raise UserError(f"no input shape for modality {modality!r} (have {', '.join(input_shapes) or 'none'})")
    return tuple(input_shapes[modality])


def search_space_specs(cfg: ExperimentConfig, input_shapes: Shapes, num_classes: int) -> list[LayerSpec]:
    """Every distinct layer any candidate of ``cfg`` can run: each modality's backbone space (with its
    head, for unimodal costing), the projection of every possible tap, every fusion operator at (C, L),
    the cell norm, and the output norm and classifier of every possible number of output cells."""
    specs: list[LayerSpec] = []
    taps: list[tuple[int, ...]] = []
    for modality, space_cfg in cfg.modalities.items():
        shape = _shape(input_shapes, modality)
        specs += backbone_specs.space_layer_specs(space_cfg, shape, num_classes, include_head=True)
        taps += backbone_specs.space_tap_shapes(space_cfg, shape)
    channels, length = cfg.fusion.channels, cfg.fusion.length
    specs += [fusion_specs.projection_spec(tap, channels, length) for tap in taps]
    specs += [fusion_specs.op_spec(op, channels, length) for op in cfg.fusion.operators]
    specs.append(fusion_specs.cell_norm_spec(channels, length))
    for k in sorted({len(output_cells(c)) for c in cfg.fusion.cells}):
        specs += [
            fusion_specs.out_norm_spec(k, channels, length),
            fusion_specs.classifier_spec(k, channels, length, num_classes),
        ]
    return list(dict.fromkeys(specs))


def candidate_specs(
    cfg: ExperimentConfig,
    archs: Mapping[str, BackboneArch],
    genotype: Genotype | None,
    input_shapes: Shapes,
    num_classes: int,
) -> list[LayerSpec]:
    """Every layer a candidate with backbones ``archs`` runs at inference, once per occurrence (repeats are
    real cost).

    With a fusion ``genotype``: what ``MultimodalNet`` runs, the backbones whose taps a live cell reads up
    to the last such tap (no head: ONNX Runtime executes only what feeds the outputs, and in torch eager
    MultimodalNet keeps only each backbone's trunk up to that tap), then the fusion network. Without one:
    every backbone as a standalone classifier (unimodal costing).
    """
    if genotype is None:
        return [
            spec
            for modality, arch in archs.items()
            for spec in backbone_specs.layer_specs(
                cfg.modalities[modality], arch, _shape(input_shapes, modality), True, num_classes
            )
        ]
    last_tap = genotype.last_taps
    specs: list[LayerSpec] = []
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for modality in genotype.tap_modalities:
        if modality not in cfg.modalities or modality not in archs:
            raise UserError(f"fusion genotype reads modality {modality!r}, which the candidate does not have")
        space_cfg, shape = cfg.modalities[modality], _shape(input_shapes, modality)
        shapes[modality] = backbone_specs.tap_shapes(space_cfg, archs[modality], shape)
        if modality in last_tap:
            specs += backbone_specs.layer_specs(
                space_cfg, archs[modality], shape, False, num_classes, last_tap[modality]
            )
    fusion = cfg.fusion
    return specs + fusion_specs.fusion_layer_specs(genotype, shapes, fusion.channels, fusion.length, num_classes)


def build_layer(spec: LayerSpec) -> tuple[nn.Module, tuple[Tensor, ...]]:
    """The module (eval mode) and batch-1 example inputs of any backbone or fusion spec."""
    if spec.op.startswith(fusion_specs.PREFIX):
        return fusion_specs.build_layer(spec)
    return backbone_specs.build_layer(spec)
