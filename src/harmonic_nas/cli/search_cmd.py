"""``harmonic-nas search`` (the two-tier search, or one of its baselines) and ``harmonic-nas status``."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import click

from harmonic_nas.cli.checks import at_least_one
from harmonic_nas.cli.params import DEVICE, EXECUTOR, VARIANT, computed, config_option, set_option
from harmonic_nas.cli.views import front_table
from harmonic_nas.config import load_config
from harmonic_nas.config.io import validate_config
from harmonic_nas.console import console
from harmonic_nas.errors import UserError
from harmonic_nas.layout import RunLayout
from harmonic_nas.search.variants import VARIANTS, Variant


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


def _search_process_state(owner: dict[str, Any] | None) -> str:
    """'running' if the process that owns the search is alive, 'interrupted' if it is gone, and 'running
    on HOST' when it runs on another machine (whose processes this one cannot see)."""
    if not owner:
        return "interrupted"
    if owner["host"] != socket.gethostname():
        return f"running on {owner['host']}"
    try:
        os.kill(owner["pid"], 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:  # alive, owned by another user
        pass
    return "running"


@click.command("status")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--variant", type=click.Choice(VARIANTS), default="sb-sf-hw", show_default=True)
def status(run_dir: Path, variant: str) -> None:
    """Progress of a search run (also while it runs): generations, evaluations, front, recent events."""
    from harmonic_nas.search.store import RunStore

    with RunStore.open(Variant.named(variant).store(RunLayout(run_dir)).folder) as store:
        meta = store.meta()
        cfg = validate_config(store.raw_config(), str(store.path))
        generations = store.generations()
        candidates = store.evaluations("candidate")
        backbones = store.evaluations("backbone")
        front = store.pareto_front()
        events = store.events(8)
    stored_variant = meta.get("variant")
    if stored_variant not in VARIANTS:
        raise UserError(f"{store.path}: stored variant {stored_variant!r}, expected one of {', '.join(VARIANTS)}")
    total = Variant.named(stored_variant).generations(cfg.search.generations)
    finished = [g for g in generations if g["summary"] is not None]
    console.print(f"[bold]{cfg.name}[/] ({stored_variant}): generation {len(finished)}/{total} finished; "
                  f"{len(backbones)} backbone and {len(candidates)} multimodal evaluations stored")
    if finished:
        last = finished[-1]["summary"]
        console.print(f"front {last['front_size']}, best val {last['best_val_metric']:.4f}, "
                      f"hypervolume {last['hypervolume']:.4f}")
    running = [g for g in generations if g["summary"] is None]
    if running:
        g = running[-1]
        done = sum(1 for e in candidates if e.generation == g["generation"])
        state = _search_process_state(meta.get("owner"))
        since = f" for {time.time() - g['started']:.0f} s" if state == "running" else ""
        console.print(f"generation {g['generation']} {state}{since}: {done} multimodal evaluations done")
        if state == "interrupted":
            console.print(f"resume with: harmonic-nas search --resume {run_dir}")
    if front:
        console.print(front_table(front, "Pareto front so far"))
    for event in events:
        console.print(f"{time.strftime('%H:%M:%S', time.localtime(event['time']))} {event['message']}")
