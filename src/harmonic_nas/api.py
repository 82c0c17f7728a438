"""The documented Python API (docs/api.md): run the whole job with callbacks, and open a run to read its
evaluations, front and generations, as objects or a DataFrame, and to load, export or report its models.

A thin face over ``harmonic_nas.pipeline`` (the steps) and the run store, for notebooks and scripts: what a
command shows as a table, a notebook gets as values. Torch is imported only by what needs it (``model``,
``export``, ``run``), so reading a run's results stays quick.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonic_nas.config.io import load_config
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.errors import UserError
from harmonic_nas.layout import RunLayout
from harmonic_nas.search.store import Evaluation, RunStore
from harmonic_nas.search.variants import FULL_METHOD, Variant

if TYPE_CHECKING:
    import pandas

    from harmonic_nas.data import MultimodalDataset
    from harmonic_nas.export import BatchModel, ExportResult, RunContext
    from harmonic_nas.pipeline.common import Log
    from harmonic_nas.pipeline.job import DoneHook, StepHook
    from harmonic_nas.search.engine import EvaluationHook, GenerationHook, ProgressHook


class Run:
    """One search of a run directory: the full method's (``variant`` sb-sf-hw) or a baseline's. Every
    method reads the store anew, so a run still searching shows its progress."""

    def __init__(self, run_dir: str | Path, variant: str = FULL_METHOD.name,
                 dataset: MultimodalDataset | None = None) -> None:
        self.path = Path(run_dir)
        chosen = Variant.named(variant)
        self.variant = chosen.name
        files = chosen.store(RunLayout(self.path))
        if not files.store.is_file():
            found = "no such directory" if not self.path.is_dir() else f"no search store {files.store}"
            raise UserError(f"{self.path}: not a harmonic-nas run of variant {self.variant} ({found}); "
                            f"make one with harmonic_nas.run(config, out) or harmonic-nas run --config C --out DIR")
        self.store_dir = files.folder
        self._given_dataset = dataset
        RunStore.open(self.store_dir).close()  # a damaged store or another format fails here, in one line

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, variant={self.variant!r})"

    @cached_property
    def config(self) -> ExperimentConfig:
        """The config the search was made with, its run directory where the run is now."""
        from harmonic_nas.pipeline import stored_config

        return stored_config(self.path, variant=self.variant)

    @cached_property
    def dataset(self) -> MultimodalDataset:
        """The run's data (the in-memory dataset given to ``open_run``, else the config's, prepared once)."""
        from harmonic_nas.pipeline.common import load_data

        return load_data(self.config, self._given_dataset, progress=False)

    # results ------------------------------------------------------------------------------------------
    def evaluations(self, kind: str | None = "candidate") -> list[Evaluation]:
        """Stored evaluations in the order they finished: multimodal candidates (``kind`` "candidate"), the
        stage-1 backbones ("backbone") or both (None)."""
        with RunStore.open(self.store_dir) as store:
            return store.evaluations(kind)

    def front(self) -> list[Evaluation]:
        """The Pareto front after the last finished generation, best val metric first."""
        with RunStore.open(self.store_dir) as store:
            return store.pareto_front()

    def generations(self) -> list[dict[str, Any]]:
        """Per started generation: its number, whether it finished, and once finished its summary
        (front_size, best_val_metric, hypervolume, stage2_evaluations, seconds, elites)."""
        with RunStore.open(self.store_dir) as store:
            rows = store.generations()
        return [{"generation": g["generation"], "finished": g["summary"] is not None, **(g["summary"] or {})}
                for g in rows]

    def to_dataframe(self, kind: str | None = "candidate") -> pandas.DataFrame:
        """``evaluations(kind)`` as a pandas DataFrame, one row each: id, kind, generation, the backbone of
        each modality (``<modality>_backbone``), cells, nodes, modalities read, val, test, the test metric with
        each modality's features shuffled (``test_<modality>_shuffled``, final front), latency_ms, energy_mj,
        seconds (evaluation time), on_front."""
        try:
            import pandas
        except ImportError:
            raise UserError("Run.to_dataframe needs pandas: pip install harmonic-nas[pandas]") from None
        on_front = {e.key for e in self.front()}
        modalities = list(self.config.modalities)
        return pandas.DataFrame([_row(e, modalities, e.key in on_front) for e in self.evaluations(kind)],
                                columns=["id", "kind", "generation", *(f"{m}_backbone" for m in modalities),
                                         "cells", "nodes", "modalities", "val", "test",
                                         *(f"test_{m}_shuffled" for m in modalities), "latency_ms", "energy_mj",
                                         "seconds", "on_front"])

    # models -------------------------------------------------------------------------------------------
    @cached_property
    def _context(self) -> RunContext:
        """Supernets, dataset and settings that build models, loaded once."""
        from harmonic_nas.export import RunContext

        return RunContext.open(self.store_dir, self.dataset)

    def model(self, which: str = "best-acc") -> BatchModel:
        """A Pareto model (``which``: its id or a unique id prefix, best-acc or fastest) as a torch module in
        eval mode, called with a batch dict ``{modality: tensor}``; its ``evaluation`` is the stored result."""
        from harmonic_nas.export import BatchModel, build_model, select_model

        chosen = select_model(self.front(), which, str(self.path))
        return BatchModel(build_model(self._context, chosen))

    def export(self, model: str = "best-acc", *, fmt: str = "onnx", out: str | Path | None = None,
               samples: int = 32, measure: bool = True) -> ExportResult:
        """``harmonic-nas export``: one Pareto model as files into ``out`` (default RUN_DIR/models/<id>),
        checked against PyTorch and timed (``pipeline.export_model``)."""
        from harmonic_nas.pipeline import export_model

        return export_model(self.store_dir, model=model, fmt=fmt, out=None if out is None else Path(out),
                            samples=samples, measure=measure, dataset=self.dataset)

    def report(self, out: str | Path | None = None) -> Path:
        """``harmonic-nas report``: writes the HTML report (default RUN_DIR/report) and returns its index.html."""
        from harmonic_nas.pipeline import report

        return report(self.path, out=None if out is None else Path(out))


def _row(e: Evaluation, modalities: Sequence[str], on_front: bool) -> dict[str, Any]:
    if e.kind == "candidate":
        backbones = {m: arch.short_text() for m, arch in e.candidate.backbones.items()}
        cells, nodes = e.candidate.macro.cells, e.candidate.macro.nodes
    else:
        backbones, cells, nodes = {e.modality: e.arch.short_text()}, None, None
    return {"id": e.key, "kind": e.kind, "generation": e.generation,
            **{f"{m}_backbone": backbones.get(m) for m in modalities}, "cells": cells, "nodes": nodes,
            "modalities": "+".join(e.modalities_used), "val": e.val_metric, "test": e.test_metric,
            **{f"test_{m}_shuffled": e.test_shuffled.get(m) for m in modalities},
            "latency_ms": e.latency_ms, "energy_mj": e.energy_mj, "seconds": e.seconds, "on_front": on_front}


def open_run(run_dir: str | Path, variant: str = FULL_METHOD.name, *,
             dataset: MultimodalDataset | None = None) -> Run:
    """The search ``variant`` of ``run_dir`` (a UserError if there is none). ``dataset``: an in-memory
    dataset the run was made with, instead of its config's."""
    return Run(run_dir, variant, dataset)


def run(
    config: str | Path | ExperimentConfig,
    out: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    on_generation: GenerationHook | None = None,
    on_evaluation: EvaluationHook | None = None,
    on_progress: ProgressHook | None = None,
    on_step: StepHook | None = None,
    on_done: DoneHook | None = None,
    executor: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    dataset: MultimodalDataset | None = None,
    log: Log | None = None,
) -> Run:
    """``harmonic-nas run``: the whole job of ``config`` (a YAML path, with ``overrides`` key.path=value,
    or an ExperimentConfig) into ``out`` (default: the config's run directory), each step skipped when its
    output is complete; returns the finished run. ``on_generation(g, summary)`` after each generation,
    ``on_evaluation(evaluation)`` after each multimodal candidate stored, ``on_progress(stage, done,
    total)``, ``on_step(name)`` and ``on_done(name, returned)`` as ``pipeline.run``; ``force`` discards a
    stored search of the run and starts it over; ``log`` narrates (default the console)."""
    from harmonic_nas import pipeline

    if isinstance(config, ExperimentConfig):
        if overrides:
            raise UserError("harmonic_nas.run: overrides apply to a config file; change an ExperimentConfig "
                            "with config.model_copy(update=...)")
        cfg = config if out is None else config.model_copy(
            update={"output": config.output.model_copy(update={"run_dir": Path(out)})})
        source = "the config"
    else:
        cfg = load_config(config, [*overrides, *([f"output.run_dir={out}"] if out is not None else [])])
        source = str(config)
    narration = {} if log is None else {"log": log}
    pipeline.run(cfg, executor=executor, scheduler=scheduler, force=force, dataset=dataset, on_step=on_step, on_done=on_done,
                 on_progress=on_progress, on_generation=on_generation, on_evaluation=on_evaluation, source=source,
                 **narration)
    return Run(cfg.run_dir, dataset=dataset)
