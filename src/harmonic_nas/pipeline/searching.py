"""The two-tier search (or one of its baselines) of a config, and the config of a stored run to resume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.console import console
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.layout import RunLayout
from harmonic_nas.pipeline.common import Log, check_modalities, writing
from harmonic_nas.pipeline.live_report import LiveReport
from harmonic_nas.search.engine import EvaluationHook, GenerationHook, ProgressHook
from harmonic_nas.search.store import Evaluation
from harmonic_nas.search.variants import FULL_METHOD, Variant


@dataclass
class SearchResult:
    """Where the store is, its final front (test metrics measured), the best backbone of each modality (the
    unimodal baseline a fused model must beat) and how far the front's best fused model is above it."""

    store: Path
    front: list[Evaluation]
    best_backbones: list[Evaluation]
    fusion_gain: str | None
    report: Path | None = None  # the run's report page written at the end (None: no full-method store, or failed)


def search(
    cfg: ExperimentConfig,
    *,
    variant: str = FULL_METHOD.name,
    executor: str = "local", scheduler: str | None = None,
    workers: int | None = None, threads: int = 1, device: str | None = None,
    force: bool = False,
    dataset: MultimodalDataset | None = None,
    on_progress: ProgressHook | None = None, on_generation: GenerationHook | None = None,
    on_evaluation: EvaluationHook | None = None,
    source: str = "the config",
    log: Log = console.log,
) -> SearchResult:
    """Run ``variant`` of the two-tier search into its store (RUN_DIR/run.sqlite for the full method,
    RUN_DIR/baselines/<variant>/ for a baseline), or continue the stored one of the same config; ``force``
    starts over. Needs the trained supernets and the LUT of the config.

    ``executor``: local (``workers`` processes, default runtime.workers; one runs inline), inline, or dask
    (``scheduler`` address); each worker uses ``threads`` threads on ``device`` (default runtime.device).
    ``on_progress(stage, done, total)`` follows every evaluation (and the final front's "test metrics"),
    ``on_generation(g, summary)`` every generation, ``on_evaluation(evaluation)`` every multimodal candidate
    stored (a ``store.Evaluation``). The run's report page (RUN_DIR/report/index.html) is refreshed after
    every generation and written whole at the end (pipeline/live_report.py: cheap, and never fatal to the
    search).
    """
    from harmonic_nas.report.format import fusion_gain
    from harmonic_nas.search.runner import SearchRun, best_backbones, check_same_settings, make_executor, run_search
    from harmonic_nas.search.store import RunStore

    chosen = Variant.named(variant)
    check_modalities(cfg, dataset, source)
    files = chosen.store(cfg.layout)
    with writing(files.folder):
        if not force and files.store.exists():  # refuse a mismatched resume before any slow set-up
            with RunStore.open(files.folder) as store:
                check_same_settings(store, cfg)
        run = SearchRun.load(cfg, device or cfg.runtime.device, threads, dataset)
        pool = make_executor(executor, run.spec, cfg.runtime.workers if workers is None else workers, scheduler)
        log(f"search {chosen.name} of {cfg.name}: store {files.store}, executor {pool.name}")
        page = LiveReport(cfg.run_dir, log)

        def after_generation(g: int, summary: dict[str, Any]) -> None:
            if on_generation is not None:
                on_generation(g, summary)
            page.refresh(g)

        try:
            store, front = run_search(run, chosen, pool, resume=not force, force=force, on_progress=on_progress,
                                      on_generation=after_generation, on_evaluation=on_evaluation)
        except BaseException:  # Ctrl-C or an error: stop the workers now, not after their evaluations
            pool.abort()
            raise
        pool.close()
        with store:
            best = best_backbones(store)
        return SearchResult(files.store, front, best, fusion_gain(front, best), page.finish())


def stored_config(run_dir: Path, *, variant: str = FULL_METHOD.name, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The config a search in ``run_dir`` was made with, to continue it: ``overrides`` (key.path=value) may
    change keys that do not change results (runtime.*); the run directory is where the run is now (it may
    have been copied or moved), not where it was made."""
    from harmonic_nas.config.io import validate_config
    from harmonic_nas.search.runner import stored_raw_config

    raw, where = stored_raw_config(Variant.named(variant).store(RunLayout(run_dir)).folder, overrides)
    return validate_config(raw, where)
