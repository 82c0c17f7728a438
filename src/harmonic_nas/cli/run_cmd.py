"""``harmonic-nas run``: the whole job in one command, each step skipped when its output is complete."""

from __future__ import annotations

import gc
import time
from pathlib import Path

import click

from harmonic_nas.cli.checks import dataset_modalities, given_lut, own_run
from harmonic_nas.config import load_config
from harmonic_nas.console import console
from harmonic_nas.run_timings import StepTimer
from harmonic_nas.runtime import release_freed_memory


def export_format() -> str:
    import importlib.util

    return "onnx" if all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")) else "pt"


@click.command("run")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Experiment config (YAML).")
@click.option("--out", type=click.Path(path_type=Path), help="Run directory (default: output.runs_dir/name).")
@click.option("--executor", type=click.Choice(["local", "dask", "inline"]), default="local", show_default=True)
@click.option("--scheduler", help="Dask scheduler address for --executor dask.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key.")
@click.pass_context
def run(ctx: click.Context, config_path: Path, out: Path | None, executor: str, scheduler: str | None,
        overrides: tuple[str, ...]) -> None:
    """Prepare the data, train every supernet, profile this device into a LUT, run the two-tier search,
    then write the report (RUN_DIR/report/index.html) and export the Pareto models (RUN_DIR/models: ONNX
    when onnx and onnxruntime are installed, else the PyTorch file). A step whose output is complete and made with the
    same settings is skipped, so a second run (or a run after an interruption) continues where it stopped.
    Adds the wall time of each step to the history in RUN_DIR/timings.json."""
    from harmonic_nas.cli.profile_cmd import profile_command
    from harmonic_nas.cli.search_cmd import run_search_command
    from harmonic_nas.cli.train_cmd import train_supernet
    from harmonic_nas.data.registry import load_dataset
    from harmonic_nas.export.pipeline import export_front
    from harmonic_nas.report import write_report

    sets = tuple(overrides) + ((f"output.run_dir={out}",) if out is not None else ())
    cfg = load_config(config_path, list(sets))
    dataset_modalities(cfg, str(config_path))  # what later steps need, checked before the first one
    given_lut(cfg, str(config_path))
    own_run(cfg.run_dir)  # a second run on this directory stops here, not after training
    timer = StepTimer(cfg.run_dir)

    def step(name: str, action: object) -> None:
        console.rule(f"[bold]{name}")
        start = time.perf_counter()
        action()  # type: ignore[operator]
        timer.record(name, time.perf_counter() - start)
        gc.collect()
        release_freed_memory()  # the next step (the search's workers above all) gets what this one freed

    step("prepare", lambda: load_dataset(cfg.dataset, seed=cfg.runtime.seed))
    step("train-supernet", lambda: ctx.invoke(train_supernet, config_path=config_path, modalities=(), device=None,
                                              resume=True, force=False, keep_checkpoint=False, overrides=sets))
    if cfg.hardware.lut is None:
        step("profile", lambda: ctx.invoke(profile_command, config_path=config_path, device="cpu", out=None,
                                           runtime=None, batch_size=None, threads=None, validate_n=0, seed=0,
                                           shapes=(), classes=None, overrides=sets))
    step("search", lambda: run_search_command(cfg, "sb-sf-hw", executor=executor, scheduler=scheduler))
    step("report", lambda: console.log(f"report: {write_report(cfg.run_dir)}"))
    step("export", lambda: export_front(cfg.run_dir, fmt=export_format()))
    console.log(f"step times (s): {timer.steps}")
