"""The tools for one model: the fusion search of one candidate on its frozen backbones (stage 2 alone), and
the retraining of a found model's fusion from its architecture file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.console import console
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.export.reproduce import ArchFile
from harmonic_nas.pipeline.common import Log, check_modalities, load_data, writing
from harmonic_nas.space import Candidate

EpochHook = Callable[[dict[str, Any]], None]


@dataclass
class FusionSearchResult:
    """The stage-2 result (JSON-able: genotype, val metric, LUT cost, timings), the derived network, and
    the files written: the result JSON, the weights (.pt) and the diagram (.dot, .svg/.png with Graphviz)."""

    result: dict[str, Any]
    fusion: nn.Module
    path: Path
    weights: Path
    diagrams: list[Path]


@dataclass
class ReproduceResult:
    """The retrained fusion network, its record (JSON-able metrics) and the files written (JSON, weights)."""

    net: nn.Module
    record: dict[str, Any]
    path: Path
    weights: Path


def read_candidate(path: Path, cfg: ExperimentConfig) -> Candidate:
    """The candidate in the JSON file ``path`` ({"backbones": {modality: arch}, "macro": {"cells", "nodes"}}),
    checked against the config's space; every problem is one UserError line naming the file."""
    from harmonic_nas.jsonfile import read_json
    from harmonic_nas.space import CandidateSpace

    raw = read_json(path, "arch file")
    try:
        return CandidateSpace.from_config(cfg).parse(raw)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None


def fusion_search(
    cfg: ExperimentConfig,
    candidate: Candidate,
    *,
    out: Path | None = None,
    device: str | None = None, cache_mb: float | None = None,
    dataset: MultimodalDataset | None = None,
    on_epoch: Callable[[str, int, dict[str, Any]], None] | None = None,
    source: str = "the config",
    log: Log = console.log,
) -> FusionSearchResult:
    """Search the fusion of ``candidate`` on its frozen backbones (the run's trained supernets), derive and
    fine-tune it against the run's LUT; writes the result to ``out`` (default
    RUN_DIR/fusion-search/<candidate id>.json) with the weights and a diagram beside it.
    ``on_epoch(phase, epochs, record)`` follows every search and fine-tune epoch."""
    from harmonic_nas.fusion.diagram import write_diagram
    from harmonic_nas.fusion.discrete import save_fusion
    from harmonic_nas.fusion.features import FeatureCache, FeatureSettings
    from harmonic_nas.fusion.stage2 import stage2
    from harmonic_nas.jsonfile import write_json
    from harmonic_nas.runtime import configure_threads, resolve_device
    from harmonic_nas.search.runner import load_run_lut, load_run_supernets

    check_modalities(cfg, dataset, source)
    with writing(cfg.run_dir if out is None else None, existing=True):
        configure_threads(cfg.runtime.threads)
        torch_device = resolve_device(device or cfg.runtime.device)
        supernets = load_run_supernets(cfg, torch_device, source)
        lut = load_run_lut(cfg)  # the hardware loss must cost the device the config targets
        dataset = load_data(cfg, dataset)
        cache = FeatureCache(FeatureSettings.from_config(cfg, torch_device), cache_mb or cfg.runtime.feature_cache_mb)
        log("computing backbone features (once per backbone)")
        outcome = stage2(candidate, supernets, dataset, lut, cfg.fusion, cache=cache, seed=cfg.runtime.seed,
                         score_fraction=cfg.search.val_score_fraction, device=torch_device, on_epoch=on_epoch)
        result = outcome.result
        path = out or cfg.layout.fusion_search_result(result["candidate_id"])
        write_json(path, result)
        save_fusion(outcome.fusion, path.with_suffix(".pt"))
        drawn = write_diagram(outcome.fusion.genotype, path.with_suffix(".dot"),
                              title=f"candidate {result['candidate_id']}")
        return FusionSearchResult(result, outcome.fusion, path, path.with_suffix(".pt"), drawn)


def reproduce(
    cfg: ExperimentConfig,
    arch: ArchFile,
    *,
    epochs: int | None = None,
    out: Path | None = None,
    device: str | None = None,
    dataset: MultimodalDataset | None = None,
    on_start: Callable[[int], object] | None = None, on_epoch: EpochHook | None = None,
    log: Log = console.log,
) -> ReproduceResult:
    """Retrain the fusion of ``arch`` (``export.reproduce.read_arch``) from scratch on its backbones from the
    config's trained supernets for ``epochs`` (default fusion.epochs + fusion.finetune_epochs), keep the
    best epoch on the val select part, and score the val score part (as the search did) and test; writes
    the record to ``out`` (default RUN_DIR/reproduce/<candidate id>.json), the weights beside it.
    ``on_start(epochs)`` is called once the inputs are checked, ``on_epoch(record)`` after every epoch."""
    from harmonic_nas.export.reproduce import prepare
    from harmonic_nas.fusion.discrete import save_fusion
    from harmonic_nas.jsonfile import write_json
    from harmonic_nas.runtime import configure_threads

    with writing(cfg.run_dir if out is None else None, existing=True):
        configure_threads(cfg.runtime.threads)
        job = prepare(cfg, arch, epochs, dataset=dataset, device=device or cfg.runtime.device)
        log(f"retraining the fusion of {arch.path} for {job.epochs} epochs (features first)")
        if on_start is not None:
            on_start(job.epochs)
        reproduction = job.run(on_epoch)
        record = reproduction.record
        path = out or cfg.layout.reproduction(record["candidate_id"])
        write_json(path, record)
        save_fusion(reproduction.net, path.with_suffix(".pt"))
        log(f"wrote {path} and {path.with_suffix('.pt')}")
        return ReproduceResult(reproduction.net, record, path, path.with_suffix(".pt"))
