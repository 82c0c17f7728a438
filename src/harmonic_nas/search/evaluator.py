"""What a worker does: score one backbone (stage 1) or one multimodal candidate (stage 2).

A worker builds one :class:`Evaluator` from an :class:`EvaluatorSpec` (config, trained supernets, LUT)
shipped to it once, then keeps the dataset, the BN-calibration subsets and the backbone-feature cache for
every task it runs. Results are plain data (JSON-able dicts, plus the derived fusion weights) so the
process that owns the run store writes them: workers may be on other machines.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.data import MultimodalDataset, SplitData
from harmonic_nas.data.val_parts import val_parts
from harmonic_nas.fusion.discrete import build_fusion, fusion_payload
from harmonic_nas.fusion.scoring import evaluate
from harmonic_nas.fusion.features import FeatureCache, FeatureSettings, candidate_features
from harmonic_nas.fusion.finetune import train_from_scratch
from harmonic_nas.fusion.stage2 import stage2
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.metrics import metric_name
from harmonic_nas.runtime import configure_threads, resolve_device
from harmonic_nas.space.candidate import Candidate
from harmonic_nas.space.genotype import Genotype
from harmonic_nas.space.values import BackboneArch
from harmonic_nas.supernet.subnets import calibration_inputs, evaluate_subnet

TaskKind = Literal["backbone", "candidate"]


@dataclass(frozen=True)
class EvalTask:
    """One evaluation. ``arch`` is a backbone arch (kind "backbone", with ``modality``) or a candidate.

    ``genotype``: a fixed fusion to train instead of searching one (FB+FF's dense hypernet); ``hardware``:
    whether the fusion search's loss has its latency and energy terms.
    """

    key: str
    kind: TaskKind
    arch: Candidate | BackboneArch
    modality: str | None = None
    genotype: Genotype | None = None
    hardware: bool = True


@dataclass
class EvalResult:
    """The stored record (``record``: JSON-able, has val_metric, latency_ms, energy_mj, seconds) and, for a
    candidate, its derived fusion network as :func:`fusion_payload` (written next to the store by the caller)."""

    task: EvalTask
    record: dict[str, Any]
    fusion_state: dict[str, Any] | None = None
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


@dataclass
class EvaluatorSpec:
    """Everything a worker needs, shipped once per worker (pickled): the config, the trained supernets,
    the LUT, and where and how to compute. ``dataset``: an in-memory dataset to use instead of the
    config's (notebooks, tests); by default each worker opens the config's prepared dataset itself."""

    config: dict[str, Any]
    supernets: dict[str, nn.Module]
    lut: LookupTable
    device: str = "cpu"
    threads: int = 1
    dataset: MultimodalDataset | None = None


class Evaluator:
    """Scores tasks with everything loaded once (see the module docstring)."""

    def __init__(self, spec: EvaluatorSpec) -> None:
        from harmonic_nas.data.registry import load_dataset

        configure_threads(spec.threads)
        self.cfg = ExperimentConfig.model_validate(spec.config)
        self.device = resolve_device(spec.device)
        self.supernets = {m: net.to(self.device).eval() for m, net in spec.supernets.items()}
        self.lut = spec.lut
        self.dataset = spec.dataset or load_dataset(self.cfg.dataset, seed=self.cfg.runtime.seed, progress=False)
        shapes = {m: tuple(s.shape) for m, s in self.dataset.modalities.items()}
        self.costs = CostModel(self.lut, self.cfg, shapes, self.dataset.num_classes)
        sn = self.cfg.supernet
        self.settings = FeatureSettings.from_config(self.cfg, self.device)
        self.cache = FeatureCache(self.settings, self.cfg.runtime.feature_cache_mb)
        train = self.dataset.split("train")
        val = self.dataset.split("val")
        self.val_parts = val_parts(len(val), self.cfg.search.val_score_fraction, self.cfg.runtime.seed)
        self.val_score = val.subset(self.val_parts.score)  # the only val samples a reported metric reads
        self.calib = {
            m: calibration_inputs(train.inputs[m], sn.bn_calib_samples, self.cfg.runtime.seed)
            for m in self.cfg.modalities
        }

    def __call__(self, task: EvalTask) -> EvalResult:
        started = time.perf_counter()
        result = self.backbone(task) if task.kind == "backbone" else self.candidate(task)
        result.record["seconds"] = time.perf_counter() - started
        return result

    def backbone(self, task: EvalTask) -> EvalResult:
        """Stage 1: BN-recalibrated metric of the subnet on the val score part (as every candidate's), LUT
        cost of it as a standalone classifier."""
        assert task.modality is not None
        metric = self.subnet_metric(task.modality, task.arch, self.val_score)
        cost = self.costs.backbone(task.modality, task.arch)
        return EvalResult(task, {"metric": metric_name(self.dataset.task), "val_metric": metric,
                                 "latency_ms": cost.latency_ms, "energy_mj": cost.energy_mj})

    def subnet_metric(self, modality: str, arch: BackboneArch, data: SplitData) -> float:
        """Metric of a backbone subnet as a classifier on ``data``, BatchNorm recalibrated on train."""
        sn = self.cfg.supernet
        return evaluate_subnet(
            self.supernets[modality], arch, modality, self.calib[modality], data,
            self.dataset.task, batch_size=sn.batch_size, device=self.device, channels_last=sn.channels_last,
        )

    def candidate(self, task: EvalTask) -> EvalResult:
        """Stage 2 (search, derive, fine-tune; or train the fixed ``genotype``), costed as a whole network."""
        fusion_cfg = self.cfg.fusion
        if not task.hardware:
            fusion_cfg = fusion_cfg.model_copy(
                update={"exponents": fusion_cfg.exponents.model_copy(update={"latency": 0.0, "energy": 0.0})})
        assert isinstance(task.arch, Candidate)
        if task.genotype is None:
            outcome = stage2(task.arch, self.supernets, self.dataset, self.lut, fusion_cfg, cache=self.cache,
                             seed=self.cfg.runtime.seed, score_fraction=self.cfg.search.val_score_fraction,
                             device=self.device)
            record, net = outcome.result, outcome.fusion
        else:
            record, net = self._fixed_fusion(task.arch, task.genotype)
        cost = self.costs.cost(task.arch, net.genotype)
        record.update(latency_ms=cost.latency_ms, energy_mj=cost.energy_mj)
        return EvalResult(task, record, fusion_payload(net))

    def _fixed_fusion(self, candidate: Candidate, genotype: Genotype) -> tuple[dict[str, Any], nn.Module]:
        """Train a given fusion from scratch for the search + fine-tune epochs of stage 2 (no search), its
        epoch chosen on the val select part, scored on the score part."""
        cfg = self.cfg.fusion
        features = candidate_features(self.cache, candidate.backbones, self.supernets, self.dataset)
        train, val = (features.splits[s].to(self.device) for s in ("train", "val"))
        select, scored = val.subset(self.val_parts.select), val.subset(self.val_parts.score)
        net, tuned = train_from_scratch(
            lambda: build_fusion(genotype, features.channels, cfg.channels, cfg.length, self.dataset.num_classes,
                                 cfg.dropout).to(self.device),
            train, select, cfg, self.dataset.task, self.cfg.runtime.seed, cfg.epochs + cfg.finetune_epochs)
        record = {"candidate": candidate.to_json(), "genotype": net.genotype.to_json(), "metric": metric_name(self.dataset.task),
                  "val_metric": evaluate(net, scored, cfg.batch_size, self.dataset.task),
                  "select_metric": tuned.select_metric, "best_epoch": tuned.best_epoch,
                  "finetune_history": tuned.history}
        return record, net


# One evaluator per worker process, built by the executor's initializer (local pool) or plugin (Dask).
_worker_evaluator: Evaluator | None = None
_worker_error: str | None = None


class WorkerSetupError(RuntimeError):
    """The worker could not build its evaluator (raised with each task, so the cause is not lost)."""


def init_worker(spec: EvaluatorSpec) -> None:
    """Build this process's evaluator; a failure is kept and reported by every task instead of killing
    the worker (a pool would only see a dead process and retry in vain)."""
    global _worker_evaluator, _worker_error
    try:
        _worker_evaluator = Evaluator(spec)
    except Exception as exc:  # reported with the next task
        _worker_error = f"{type(exc).__name__}: {exc}"


def run_in_worker(task: EvalTask) -> EvalResult:
    if _worker_evaluator is None:
        raise WorkerSetupError(f"worker setup failed: {_worker_error or 'init_worker(spec) was not called'}")
    return _worker_evaluator(task)
