"""``harmonic-nas search``: the two-tier search, or one of its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harmonic_nas.cli.checks import at_least_one
from harmonic_nas.cli.params import DEVICE, EXECUTOR, VARIANT, computed, config_option, set_option
from harmonic_nas.config import load_config
from harmonic_nas.console import console
from harmonic_nas.errors import UserError


def resolve_config(
    config_path: Path | None, resume: Path | None, out: Path | None, overrides: tuple[str, ...], variant: str
) -> Any:
    """The config of a new run (``--config``, ``--out`` as its run directory) or of the run to resume (its
    stored config; ``--set`` may change keys that do not change results, such as runtime.*)."""
    from harmonic_nas.pipeline import stored_config

    if (config_path is None) == (resume is None):
        raise UserError("give either --config FILE (a new or continued run) or --resume RUN_DIR")
    if config_path is not None:
        sets = list(overrides) + ([f"output.run_dir={out}"] if out is not None else [])
        return load_config(config_path, sets)
    return stored_config(resume, variant=variant, overrides=overrides)  # type: ignore[arg-type]


@click.command("search")
@config_option()
@click.option("--resume", type=click.Path(path_type=Path),
              help="Continue the run in this directory (its stored config).")
@click.option("--out", type=click.Path(path_type=Path), help=computed("Run directory.", "output.runs_dir/<name>"))
@click.option("--variant", type=VARIANT, default="sb-sf-hw", show_default=True,
              help="The full method, or a baseline of the paper's Figure 4 / random search.")
@click.option("--executor", type=EXECUTOR, default="local", show_default=True, help="Where evaluations run.")
@click.option("--scheduler", help="Dask scheduler address for --executor dask (tcp://host:8786).")
@click.option("--workers", type=int, help=computed("Local worker processes.", "from runtime.workers"))
@click.option("--threads", type=int, default=1, show_default=True, help="Threads per worker.")
@click.option("--device", type=DEVICE, help=computed("Device of the workers.", "from runtime.device"))
@click.option("--force", is_flag=True, help="Discard a stored search of this run and start over.")
@set_option("runtime.feature_cache_mb=256")
def search(
    config_path: Path | None, resume: Path | None, out: Path | None, variant: str, executor: str,
    scheduler: str | None, workers: int | None, threads: int, device: str | None, force: bool,
    overrides: tuple[str, ...],
) -> None:
    """Two-tier search: NSGA-II over backbones and the fusion macro gene, DARTS fusion search per selected
    tuple. Stores every evaluation in RUN_DIR/run.sqlite; a stopped run continues with --resume RUN_DIR
    (a baseline's with its --variant too) or the same --config, reusing every finished evaluation. With
    --resume, --set may change only keys that keep the run's results (runtime.* but seed, output.*,
    dataset.cache_dir).

    \b
    Examples:
      harmonic-nas search --config configs/smoke.yaml --out /tmp/smoke
      harmonic-nas search --resume /tmp/smoke --workers 1
      harmonic-nas search --config configs/smoke.yaml --out /tmp/smoke --variant random
      harmonic-nas search --resume /tmp/smoke --variant random --set runtime.feature_cache_mb=256
    """
    from harmonic_nas import pipeline
    from harmonic_nas.cli.views import search_progress, show_search

    at_least_one("--workers", workers)
    at_least_one("--threads", threads)
    cfg = resolve_config(config_path, resume, out, overrides, variant)
    with search_progress() as hooks:
        result = pipeline.search(cfg, variant=variant, executor=executor, scheduler=scheduler, workers=workers,
                                 threads=threads, device=device, force=force, **hooks)
    show_search(result, variant)
    if result.report is not None:
        console.log(f"report: {result.report}")
