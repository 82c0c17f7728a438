"""What the report shows, read from a run directory: the full method's store, the baselines' stores
(RUN_DIR/baselines/<variant>/run.sqlite), the LUT header, the step timings and the manifests of the
models exported to RUN_DIR/models. Reads only; works while a search is still writing (the store is WAL)
and on a run with no finished generation yet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.errors import UserError
from harmonic_nas.run_timings import read_runs
from harmonic_nas.search.indicators import pareto_mask
from harmonic_nas.layout import RunLayout, StoreLayout
from harmonic_nas.model_manifest import Manifest, read_manifest
from harmonic_nas.search.store import Evaluation, RunStore
from harmonic_nas.search.variants import ABLATION, FULL_METHOD, Variant


def pareto_of(evaluations: list[Evaluation]) -> list[Evaluation]:
    """Non-dominated evaluations on (1 - val metric, latency, energy)."""
    if not evaluations:
        return []
    F = np.array([e.objectives for e in evaluations], dtype=float)
    return [e for e, keep in zip(evaluations, pareto_mask(F)) if keep]


@dataclass
class GenerationRow:
    generation: int
    hypervolume: float | None
    front_size: int | None
    best_val_metric: float | None
    seconds: float | None


@dataclass
class VariantRun:
    """One search variant's store, read once."""

    variant: str
    path: Path
    config: dict[str, Any]
    backbones: dict[str, list[Evaluation]]  # per modality, in evaluation order
    candidates: list[Evaluation]
    front: list[Evaluation]  # best metric first
    front_generation: int | None  # the finished generation the front is from; None: provisional
    generations: list[GenerationRow]  # finished generations
    generations_started: int
    generations_total: int
    running: int | None  # the generation being evaluated, if any
    started: float | None
    ended: float | None
    resumes: int
    hv_reference: list[float] | None

    @property
    def label(self) -> str:
        return Variant.named(self.variant).label

    @property
    def is_full_method(self) -> bool:
        return self.variant == FULL_METHOD.name

    @property
    def metric(self) -> str:
        for e in [*self.candidates, *(b for bs in self.backbones.values() for b in bs)]:
            if e.result.get("metric"):
                return str(e.result["metric"])
        return "metric"

    @property
    def best(self) -> Evaluation | None:
        """The best-accuracy model (ties: lower latency)."""
        pool = self.front or self.candidates
        return min(pool, key=lambda e: (-e.val_metric, e.latency_ms, e.key), default=None)

    @property
    def wall_seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max(0.0, self.ended - self.started)

    @property
    def finished(self) -> bool:
        return len(self.generations) >= self.generations_total


def read_variant(folder: Path) -> VariantRun:
    """Everything the report needs from the store in ``folder`` (UserError if there is none)."""
    with RunStore.open(folder) as store:
        meta = store.meta()
        generations = store.generations()
        evaluations = store.evaluations()
        front = store.pareto_front()
        events = store.events(100000)
    config = meta.get("config") or {}
    variant = Variant.named(str(meta.get("variant", FULL_METHOD.name)))
    backbones: dict[str, list[Evaluation]] = {m: [] for m in config.get("modalities", {})}
    for e in evaluations:
        if e.kind == "backbone":
            backbones.setdefault(e.modality or "?", []).append(e)
    backbones = {m: evals for m, evals in backbones.items() if evals}
    candidates = [e for e in evaluations if e.kind == "candidate"]
    finished = [g for g in generations if g["summary"] is not None]
    front_generation = max((g["generation"] for g in finished), default=None)
    if not front:  # no finished generation yet: the non-dominated candidates so far
        front_generation = None
        front = sorted(pareto_of(candidates), key=lambda e: (-e.val_metric, e.latency_ms, e.key))
    rows = [
        GenerationRow(g["generation"], g["summary"].get("hypervolume"), g["summary"].get("front_size"),
                      g["summary"].get("best_val_metric"), g["summary"].get("seconds"))
        for g in finished
    ]
    running = [g["generation"] for g in generations if g["summary"] is None]
    times = [g["started"] for g in generations]
    ends = [g["finished"] for g in generations if g["finished"] is not None]
    if running:  # still running (or stopped mid-generation): up to the last thing that happened
        ends += [ev["time"] for ev in events] + [g["started"] for g in generations]
    return VariantRun(
        variant=variant.name, path=StoreLayout(folder).store, config=config, backbones=backbones, candidates=candidates,
        front=front, front_generation=front_generation, generations=rows, generations_started=len(generations),
        generations_total=variant.generations(int(config.get("search", {}).get("generations", 1))), running=running[-1] if running else None,
        started=min(times) if times else None, ended=max(ends) if ends else None,
        resumes=sum(1 for ev in events if ev["kind"] == "resume"), hv_reference=meta.get("hv_reference"),
    )


@dataclass
class LutInfo:
    path: Path
    device: str | None = None
    runtime: str | None = None
    energy_source: str | None = None
    host_cpu: str | None = None
    date: str | None = None
    batch_size: int | None = None
    threads: int | None = None
    entries: int | None = None
    problem: str | None = None  # why the file could not be read


def read_lut(path: Path) -> LutInfo:
    """The LUT header (no validation: the report shows what is there, or why it is not)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        header = raw["header"]
    except FileNotFoundError:
        return LutInfo(path, problem="file not found")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return LutInfo(path, problem=f"unreadable ({type(exc).__name__})")
    return LutInfo(
        path, device=header.get("device"), runtime=header.get("runtime"), energy_source=header.get("energy_source"),
        host_cpu=header.get("host_cpu"), date=header.get("date"), batch_size=header.get("batch_size"),
        threads=header.get("threads"), entries=len(raw.get("entries", {}) or {}),
    )


@dataclass
class ReportData:
    run_dir: Path
    main: VariantRun
    baselines: list[VariantRun]  # in the Figure 4 order
    lut: LutInfo
    timings: list[dict[str, Any]]
    exports: dict[str, Manifest] = field(default_factory=dict)  # front models exported to RUN_DIR/models, by key
    problems: list[str] = field(default_factory=list)  # baseline stores that could not be read

    @property
    def name(self) -> str:
        return str(self.main.config.get("name") or self.run_dir.name)

    @property
    def dataset(self) -> str:
        dataset = self.main.config.get("dataset", {})
        name = str(dataset.get("name", "?"))
        options = dataset.get("options") or {}
        if options:
            name += " (" + ", ".join(f"{k}={v}" for k, v in options.items()) + ")"
        return name

    @property
    def variants(self) -> list[VariantRun]:
        """Every variant present, the full method included, in Figure 4 order."""
        runs = {r.variant: r for r in [*self.baselines, self.main]}
        return [runs[v.name] for v in ABLATION if v.name in runs]


def exported(models: Path, front: list[Evaluation]) -> dict[str, Manifest]:
    """The manifest of every model of ``front`` exported to ``models``/<key>/, if it describes that model
    (same id and val metric: a re-searched model's old export is not it)."""
    found = {}
    for e in front:
        manifest = read_manifest(models / e.key)
        if manifest is not None and manifest.describes(e.key, e.val_metric):
            found[e.key] = manifest
    return found


def collect(run_dir: Path) -> ReportData:
    """Read the run in ``run_dir``; UserError if it has no search store."""
    run_dir = Path(run_dir)
    layout = RunLayout(run_dir)
    if not layout.search().store.is_file():
        if not run_dir.is_dir():
            raise UserError(f"{run_dir}: no such run directory")
        raise UserError(f"{layout.search().store}: no search store here (start a search with "
                        f"harmonic-nas search --config C --out {run_dir})")
    main = read_variant(run_dir)
    baselines: list[VariantRun] = []
    problems: list[str] = []
    for variant in ABLATION:
        files = variant.store(layout)
        if variant.name == main.variant or not variant.baseline or not files.store.is_file():
            continue
        try:
            baselines.append(read_variant(files.folder))
        except UserError as exc:
            problems.append(str(exc))
    timings: list[dict[str, Any]] = []
    try:
        timings = read_runs(run_dir)
    except (OSError, ValueError) as exc:
        problems.append(f"{layout.timings}: unreadable ({exc})")
    hardware = main.config.get("hardware", {})
    lut = layout.lut(hardware.get("device", "cpu"), hardware.get("lut"))
    return ReportData(run_dir, main, baselines, read_lut(lut), timings, exported(layout.models, main.front), problems)
