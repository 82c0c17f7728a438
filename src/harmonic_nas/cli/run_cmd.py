"""``harmonic-nas run``: the whole job in one command, each step skipped when its output is complete."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from harmonic_nas.cli.checks import at_least_one
from harmonic_nas.cli.params import DEVICE, EXECUTOR, computed, config_option, set_option
from harmonic_nas.config import load_config
from harmonic_nas.console import console


@click.command("run")
@config_option(required=True)
@click.option("--out", type=click.Path(path_type=Path), help=computed("Run directory.", "output.runs_dir/<name>"))
@click.option("--executor", type=EXECUTOR, default="local", show_default=True,
              help="Where the search's evaluations run.")
@click.option("--scheduler", help="Dask scheduler address for --executor dask (tcp://host:8786).")
@click.option("--workers", type=int, help=computed("Local worker processes of the search.", "from runtime.workers"))
@click.option("--device", type=DEVICE,
              help=computed("Device of supernet training and the search's workers.", "from runtime.device"))
@click.option("--force", is_flag=True,
              help="Discard a stored search of this run and start it over (supernets and LUT are kept).")
@set_option()
def run(config_path: Path, out: Path | None, executor: str, scheduler: str | None, workers: int | None,
        device: str | None, force: bool, overrides: tuple[str, ...]) -> None:
    """Prepare the data, train every supernet, profile this device into a LUT, run the two-tier search,
    then export the Pareto models (RUN_DIR/models: ONNX when onnx and onnxruntime are installed, else the
    PyTorch file) and write the report (RUN_DIR/report/index.html, with their measured latencies). A step whose output is complete and made with the
    same settings is skipped, so a second run (or a run after an interruption) continues where it stopped.
    Adds the wall time of each step to the history in RUN_DIR/timings.json.

    \b
    Examples:
      harmonic-nas run --config configs/smoke.yaml --out /tmp/smoke
      harmonic-nas run --config configs/smoke.yaml --out /tmp/smoke2 --workers 1 --set supernet.epochs=2
      harmonic-nas run --config configs/demo.yaml --device cpu
    """
    from harmonic_nas import pipeline
    from harmonic_nas.cli.views import search_progress, show_search, supernet_table

    at_least_one("--workers", workers)
    given = {"output.run_dir": out, "runtime.workers": workers, "runtime.device": device}  # the same keys as --set
    sets = tuple(overrides) + tuple(f"{key}={value}" for key, value in given.items() if value is not None)
    cfg = load_config(config_path, list(sets))
    shows = {"train-supernet": lambda results: console.print(supernet_table(results)),
             "search": lambda result: show_search(result, "sb-sf-hw"),
             "report": lambda index: console.log(f"report: {index}")}
    with contextlib.ExitStack() as bars:  # the search's progress bars live while the search runs
        hooks: dict[str, Any] = {}

        def on_step(step: str) -> None:
            console.rule(f"[bold]{step}")
            if step == "search":
                hooks.update(bars.enter_context(search_progress()))

        def on_done(step: str, returned: Any) -> None:
            bars.close()
            if step in shows:
                shows[step](returned)

        pipeline.run(cfg, executor=executor, scheduler=scheduler, force=force, source=str(config_path), on_step=on_step,
                     on_done=on_done, on_progress=lambda *a: hooks["on_progress"](*a),
                     on_generation=lambda *a: hooks["on_generation"](*a))
