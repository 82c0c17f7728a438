"""The standalone network of one stored Pareto model: its extracted backbones, BatchNorm recalibrated
exactly as when the fusion's features were computed (``fusion.features.prepared_backbone`` with the
evaluator's ``FeatureSettings``), and the stored derived fusion network, in a ``MultimodalNet``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.data import MultimodalDataset, SplitData
from harmonic_nas.data.val_parts import val_parts
from harmonic_nas.errors import UserError
from harmonic_nas.export.latency import Reference
from harmonic_nas.fusion.discrete import FusionNet, MultimodalNet, load_fusion
from harmonic_nas.fusion.features import FeatureSettings, prepared_backbone
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.layout import StoreLayout
from harmonic_nas.search.store import Evaluation, RunStore


@dataclass
class RunContext:
    """What exporting models of one run needs, loaded once: its config (``run_dir`` pointing at where the
    run is now, so a copied or moved run works), front, dataset, supernets and LUT (None if absent)."""

    store_dir: Path
    cfg: ExperimentConfig
    front: list[Evaluation]
    dataset: MultimodalDataset
    supernets: dict[str, nn.Module]
    lut: LookupTable | None
    settings: FeatureSettings
    evaluations: dict[str, Evaluation] = field(default_factory=dict)

    @classmethod
    def open(cls, run_dir: Path, dataset: MultimodalDataset | None = None, device: str = "cpu",
             overrides: Sequence[str] = ()) -> RunContext:
        """Open the run in ``run_dir`` (one-line UserError if it is not a finished search run); ``overrides``
        (``--set``) may change keys of its config that keep its results, e.g. dataset.cache_dir."""
        from harmonic_nas.data.registry import load_dataset
        from harmonic_nas.search.runner import load_run_supernets, run_config

        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise UserError(f"{run_dir}: run directory not found")
        cfg = run_config(run_dir, overrides)
        with RunStore.open(run_dir) as store:
            front = store.pareto_front()
        supernets = load_run_supernets(cfg)  # the files first: a missing one fails before the data is prepared
        lut = LookupTable.load(cfg.lut_path) if cfg.lut_path.is_file() else None
        dataset = dataset or load_dataset(cfg.dataset, seed=cfg.runtime.seed)
        return cls(run_dir, cfg, front, dataset, supernets, lut, FeatureSettings.from_config(cfg, device))

    @property
    def val_score(self) -> SplitData:
        """The val score part: the samples the search measured every stored val metric on."""
        val = self.dataset.split("val")
        return val.subset(val_parts(len(val), self.cfg.search.val_score_fraction, self.cfg.runtime.seed).score)

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {m: tuple(self.dataset.modalities[m].shape) for m in self.cfg.modalities}

    @cached_property
    def latency_reference(self) -> Reference | None:
        """The LUT calibration's reference network, timed beside every exported model (built once per run)."""
        return Reference.of(self.lut, self.cfg, self.input_shapes, self.dataset.num_classes)


@dataclass
class BuiltModel:
    """One Pareto model as a network (eval mode) plus what rebuilds it without the run."""

    evaluation: Evaluation
    net: MultimodalNet
    recipe: dict[str, Any]

    @property
    def modalities(self) -> list[str]:
        """Input order of ``net``: the genotype's modality order."""
        return list(self.net.modalities)


def build_model(ctx: RunContext, evaluation: Evaluation) -> BuiltModel:
    """The MultimodalNet of ``evaluation``: prepared backbones + its stored derived fusion network."""
    if evaluation.genotype is None or evaluation.kind != "candidate":
        raise UserError(f"model {evaluation.key}: not a multimodal candidate (no fusion genotype)")
    fusion = load_fusion(StoreLayout(ctx.store_dir).fusion(evaluation.key))
    candidate = evaluation.candidate
    backbones = {
        m: prepared_backbone(ctx.supernets[m], candidate.backbones[m], m, ctx.dataset, ctx.settings)
        for m in fusion.genotype.tap_modalities
    }
    # Contiguous weights, as the LUT's layers were timed and as load_model rebuilds them (the features were
    # computed channels-last when configured so: same numbers up to float rounding).
    net = MultimodalNet(backbones, fusion.to(ctx.settings.device)).to(memory_format=torch.contiguous_format).eval()
    return BuiltModel(evaluation, net, recipe(ctx, evaluation, fusion, net))


def recipe(ctx: RunContext, evaluation: Evaluation, fusion: FusionNet, net: MultimodalNet) -> dict[str, Any]:
    """Everything ``formats.load_model`` needs to rebuild ``net``'s modules (the weights come separately)."""
    shapes = ctx.input_shapes
    return {
        "key": evaluation.key,
        "candidate": evaluation.candidate.to_json(),
        "genotype": fusion.genotype.to_json(),
        "modalities": list(net.modalities),
        "input_shapes": {m: list(shapes[m]) for m in net.modalities},
        "num_classes": ctx.dataset.num_classes,
        "task": ctx.dataset.task,
        "class_names": list(getattr(ctx.dataset, "class_names", []) or []),
        "spaces": {m: ctx.cfg.modalities[m].model_dump(mode="json") for m in net.modalities},
        "fusion": dict(fusion.settings),
    }


class BatchModel(nn.Module):
    """A built model called with a batch dict ``{modality: tensor or array}``, the form a notebook holds
    (``SplitData.inputs``); the wrapped ``net`` keeps positional inputs because exported graphs need them.
    Modalities the model does not read are ignored. ``evaluation`` is the stored search result it is."""

    def __init__(self, built: BuiltModel) -> None:
        super().__init__()
        self.net = built.net
        self.evaluation = built.evaluation
        self.modalities = built.modalities
        self.eval()  # as the built net: inference

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        missing = [m for m in self.modalities if m not in batch]
        if missing:
            raise UserError(f"model {self.evaluation.key[:10]}: the batch has no {missing[0]!r} input "
                            f"(it reads {', '.join(self.modalities)}; the batch has {', '.join(batch) or 'nothing'})")
        return self.net(*(torch.as_tensor(batch[m]) for m in self.modalities))
