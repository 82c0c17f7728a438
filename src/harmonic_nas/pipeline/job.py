"""The whole job: prepare, train every supernet, profile this device, search, export, report; each step
skipped when its output is complete, its wall time added to RUN_DIR/timings.json."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.console import console
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.pipeline.common import Log, check_given_lut, check_modalities, writing
from harmonic_nas.pipeline.outputs import export_front, report
from harmonic_nas.pipeline.profiling import ProfileResult, profile
from harmonic_nas.pipeline.searching import SearchResult, search
from harmonic_nas.pipeline.training import prepare, train_supernets
from harmonic_nas.search.engine import EvaluationHook, GenerationHook, ProgressHook

StepHook = Callable[[str], object]  # a step starts
DoneHook = Callable[[str, Any], object]  # a step ended with what it returned


@dataclass
class RunResult:
    """What each step returned, and its wall time (s)."""

    supernets: dict[str, dict[str, Any]] = field(default_factory=dict)
    lut: ProfileResult | None = None  # None: hardware.lut names a table measured elsewhere
    search: SearchResult | None = None
    report: Path | None = None
    models: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def run(
    cfg: ExperimentConfig,
    *,
    executor: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    dataset: MultimodalDataset | None = None,
    on_step: StepHook | None = None, on_done: DoneHook | None = None,
    on_progress: ProgressHook | None = None, on_generation: GenerationHook | None = None,
    on_evaluation: EvaluationHook | None = None,
    source: str = "the config",
    log: Log = console.log,
) -> RunResult:
    """The main job end to end in RUN_DIR: the data, every supernet (resumed or reused), the LUT of this CPU
    (unless hardware.lut names one), the two-tier search, the Pareto models exported (ONNX when onnx and
    onnxruntime are installed, else model.pt), the report. A step whose output is complete and made with the
    same settings is skipped, so a second run (or one after an interruption) continues where it stopped.

    ``force`` discards a stored search of the run and starts it over (as ``search`` does).
    ``on_step(name)`` and ``on_done(name, returned)`` frame every step (prepare, train-supernet, profile,
    search, export, report); ``on_progress``, ``on_generation`` and ``on_evaluation`` follow the search (see
    ``search``).
    """
    from harmonic_nas.run_timings import StepTimer
    from harmonic_nas.runtime import release_freed_memory

    check_modalities(cfg, dataset, source)  # what later steps need, checked before the first one
    check_given_lut(cfg, source)
    result = RunResult()
    with writing(cfg.run_dir):  # a second run on this directory stops here, not after training
        timer = StepTimer(cfg.run_dir)

        def step(name: str, action: Callable[[], Any]) -> Any:
            if on_step is not None:
                on_step(name)
            start = time.perf_counter()
            returned = action()
            timer.record(name, time.perf_counter() - start)
            result.seconds[name] = timer.steps[name]
            if on_done is not None:
                on_done(name, returned)
            gc.collect()
            release_freed_memory()  # the next step (the search's workers above all) gets what this one freed
            return returned

        data = step("prepare", lambda: dataset or prepare(cfg))
        result.supernets = step("train-supernet", lambda: train_supernets(cfg, dataset=data, resume=True,
                                                                           source=source, log=log))
        if cfg.hardware.lut is None:
            shapes = {m: tuple(data.modalities[m].shape) for m in cfg.modalities}
            result.lut = step("profile", lambda: profile(cfg, input_shapes=shapes, num_classes=data.num_classes, log=log))
        result.search = step("search", lambda: search(
            cfg, executor=executor, scheduler=scheduler, force=force, dataset=dataset, on_progress=on_progress,
            on_generation=on_generation, on_evaluation=on_evaluation, source=source, log=log))
        result.models = step("export", lambda: export_front(cfg.run_dir, dataset=dataset))
        # Written again after the export (the search wrote one when it ended): its Pareto table shows the
        # latency each exported model measured beside the LUT's prediction.
        result.report = step("report", lambda: report(cfg.run_dir))
        log(f"step times (s): {timer.steps}")
        return result
