"""Retraining a found model from its architecture: the backbones extracted from the config's trained
supernets (BatchNorm recalibrated), the FusionNet of the genotype trained from scratch on their cached
features, its epoch selected on the val select part, then scored on the val score part (as the search
scored it) and on test (the authors' best_mm_model scripts, generic)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.jsonfile import read_json
from harmonic_nas.layout import StoreLayout
from harmonic_nas.data.val_parts import val_parts
from harmonic_nas.fusion.discrete import build_fusion
from harmonic_nas.fusion.scoring import evaluate
from harmonic_nas.fusion.features import FeatureCache, FeatureSettings, candidate_features
from harmonic_nas.fusion.finetune import train_from_scratch
from harmonic_nas.metrics import metric_name
from harmonic_nas.space.candidate import Candidate, CandidateSpace
from harmonic_nas.space.genotype import Genotype


@dataclass(frozen=True)
class ArchFile:
    """A candidate and its fusion genotype read from an arch.json (or a plain {"candidate", "genotype"}),
    with the metrics the search reported for it when the file has them."""

    path: Path
    candidate: dict[str, Any]
    genotype: dict[str, Any]
    reference: dict[str, Any] = field(default_factory=dict)
    run: Path | None = None  # the search run (its store folder) the export named, if it did

    def find_run(self) -> Path:
        """The store folder of the run this model came from: the one the file names, else the run whose
        RUN_DIR/models/<id>/ holds the file (the export's default folder; found also after moving the run)."""
        named = [self.run] if self.run is not None else []
        for folder in [*named, self.path.resolve().parent.parent.parent]:
            if StoreLayout(folder).store.is_file():
                return folder
        where = f"names {str(self.run)!r}, " if self.run is not None else "names no run, "
        raise UserError(f"{self.path}: cannot find the search run of this model (the file {where}and is not in "
                        f"RUN_DIR/models/<id>/); pass --config C")


def read_arch(path: Path) -> ArchFile:
    """The file's candidate and genotype (not yet checked against a config), or one UserError line."""
    path = Path(path)
    data = read_json(path, "arch file")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object with candidate and genotype, found {type(data).__name__}")
    missing = [k for k in ("candidate", "genotype") if not isinstance(data.get(k), dict)]
    if missing:
        raise UserError(f"{path}: {missing[0]} is missing or not an object (expected the arch.json of "
                        f"harmonic-nas export, or {{\"candidate\": {{...}}, \"genotype\": {{...}}}})")
    metrics = data.get("metrics") if isinstance(data.get("metrics"), dict) else {}
    run = Path(data["run"]) if isinstance(data.get("run"), str) else None
    return ArchFile(path, data["candidate"], data["genotype"], dict(metrics), run)


def check_arch(arch: ArchFile, cfg: ExperimentConfig, supernets: Mapping[str, nn.Module],
               input_shapes: Mapping[str, tuple[int, ...]]) -> tuple[Candidate, Genotype]:
    """(candidate, genotype) parsed and checked against the config: the candidate is of its space, the
    genotype uses its operators, has the candidate's C x D cells and nodes, and lists exactly the taps of
    the candidate's backbones in modality then stage order."""
    from harmonic_nas.backbones.specs import tap_shapes

    where = str(arch.path)
    try:
        candidate = CandidateSpace.from_config(cfg).parse(arch.candidate)
        genotype = Genotype.parse(arch.genotype, cfg.fusion.operators)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    macro = candidate.macro
    cells, nodes = genotype.macro
    if (cells, nodes) != (macro.cells, macro.nodes):
        raise UserError(f"{where}: the genotype has {cells} cells x {nodes} nodes, the candidate's macro "
                        f"{macro.cells} x {macro.nodes}")
    order = genotype.tap_modalities
    unknown = [m for m in order if m not in candidate.backbones]
    if unknown:
        raise UserError(f"{where}: the genotype taps modality {unknown[0]!r}, which the candidate does not have")
    expected = [(m, s) for m in order
                for s in range(len(tap_shapes(supernets[m], candidate.backbones[m], tuple(input_shapes[m]))))]
    if list(genotype.taps) != expected:
        found = [list(tap) for tap in genotype.taps]
        raise UserError(f"{where}: the genotype's taps {found} are not the taps of the candidate's "
                        f"backbones {[list(tap) for tap in expected]}")
    return candidate, genotype


@dataclass
class Reproduction:
    """The retrained fusion network and its record (JSON-able)."""

    net: nn.Module
    record: dict[str, Any]


EpochHook = Callable[[dict[str, Any]], None]


@dataclass
class Job:
    """A checked reproduction, ready to train (everything loaded, nothing computed yet)."""

    cfg: ExperimentConfig
    arch: ArchFile
    epochs: int
    candidate: Candidate
    genotype: Genotype
    dataset: MultimodalDataset
    supernets: dict[str, nn.Module]
    device: torch.device
    started: float

    def run(self, on_epoch: EpochHook | None = None) -> Reproduction:
        """Features, training from scratch with the best epoch on the val select part kept, metrics on the
        val score part and test, LUT cost."""
        from harmonic_nas.costing.cost import CostModel
        from harmonic_nas.search.runner import load_run_lut

        cfg, fusion, dataset = self.cfg, self.cfg.fusion, self.dataset
        cache = FeatureCache(FeatureSettings.from_config(cfg, self.device))
        backbones = {m: self.candidate.backbones[m] for m in self.genotype.tap_modalities}
        features = candidate_features(cache, backbones, self.supernets, dataset, splits=("train", "val", "test"))
        train, val, test = (features.splits[s].to(self.device) for s in ("train", "val", "test"))
        parts = val_parts(len(val), cfg.search.val_score_fraction, cfg.runtime.seed)
        features_s = time.perf_counter() - self.started
        seed = cfg.runtime.seed
        net, tuned = train_from_scratch(
            lambda: build_fusion(self.genotype, features.channels, fusion.channels, fusion.length,
                                 dataset.num_classes, fusion.dropout).to(self.device),
            train, val.subset(parts.select), fusion, dataset.task, seed, self.epochs, on_epoch)
        val_metric = evaluate(net, val.subset(parts.score), fusion.batch_size, dataset.task)
        test_metric = evaluate(net, test, fusion.batch_size, dataset.task)
        shapes = {m: tuple(spec.shape) for m, spec in dataset.modalities.items()}
        cost: dict[str, float] | None = None
        try:
            c = CostModel(load_run_lut(cfg), cfg, shapes, dataset.num_classes).cost(self.candidate, self.genotype)
            cost = {"latency_ms": c.latency_ms, "energy_mj": c.energy_mj}
        except UserError:  # no LUT for this config (or one measured otherwise): the metrics stand alone
            pass
        record = {
            "arch_file": str(self.arch.path),
            "candidate": self.candidate.to_json(),
            "candidate_id": CandidateSpace.from_config(cfg).candidate_hash(self.candidate),
            "genotype": net.genotype.to_json(),
            "metric": metric_name(dataset.task),
            "val_metric": val_metric,
            "select_metric": tuned.select_metric,
            "test_metric": test_metric,
            "best_epoch": tuned.best_epoch,
            "epochs": self.epochs,
            "seed": seed,
            "searched": {k: self.arch.reference.get(k) for k in ("val", "test") if k in self.arch.reference},
            "lut": cost,
            "history": tuned.history,
            "timings": {"features_s": features_s, "total_s": time.perf_counter() - self.started},
        }
        for key in ("val_metric", "test_metric"):
            if not math.isfinite(record[key]):
                raise UserError(f"{self.arch.path}: the retrained model's {key} is not finite ({record[key]})")
        return Reproduction(net, record)


def prepare(
    cfg: ExperimentConfig,
    arch: ArchFile,
    epochs: int | None = None,
    *,
    dataset: MultimodalDataset | None = None,
    supernets: Mapping[str, nn.Module] | None = None,
    device: str = "cpu",
) -> Job:
    """Load what the reproduction needs and check the arch against the config (every problem is one
    UserError line, raised before any training)."""
    from harmonic_nas.data.registry import load_dataset
    from harmonic_nas.runtime import resolve_device
    from harmonic_nas.search.runner import load_run_supernets

    started = time.perf_counter()
    epochs = cfg.fusion.epochs + cfg.fusion.finetune_epochs if epochs is None else epochs
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, found {epochs}")
    torch_device = resolve_device(device)
    supernets = dict(supernets) if supernets is not None else load_run_supernets(cfg, torch_device)
    dataset = dataset or load_dataset(cfg.dataset, seed=cfg.runtime.seed)
    shapes = {m: tuple(spec.shape) for m, spec in dataset.modalities.items()}
    candidate, genotype = check_arch(arch, cfg, supernets, shapes)
    return Job(cfg, arch, epochs, candidate, genotype, dataset, supernets, torch_device, started)


def reproduce(
    cfg: ExperimentConfig,
    arch: ArchFile,
    epochs: int | None = None,
    *,
    dataset: MultimodalDataset | None = None,
    supernets: Mapping[str, nn.Module] | None = None,
    device: str = "cpu",
    on_epoch: EpochHook | None = None,
) -> Reproduction:
    """Train the arch's fusion from scratch for ``epochs`` (default fusion.epochs + fusion.finetune_epochs,
    the budget the search's fixed-fusion baseline gets), keep the best epoch on the val select part, score
    the val score part and test."""
    return prepare(cfg, arch, epochs, dataset=dataset, supernets=supernets, device=device).run(on_epoch)
