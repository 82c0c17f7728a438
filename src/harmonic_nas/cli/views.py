"""How the commands show what the pipeline returns and does: tables of results and live progress bars.
Shared by each step's command and by ``run``, which shows its steps the same way."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from rich.progress import Progress
from rich.table import Table

from harmonic_nas.console import console, make_progress
from harmonic_nas.report.format import metric, modalities_text, points_lost, short_id


def supernet_table(results: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Supernet validation metric per subnet (BN recalibrated)")
    table.add_column("modality")
    table.add_column("subnet")
    table.add_column("metric")
    table.add_column("val", justify="right")
    for modality, metrics in results.items():
        for sub in metrics["subnets"]:
            table.add_row(modality, sub["name"], metrics["metric"], f"{sub['val']:.4f}")
    return table


@contextlib.contextmanager
def progress_on_demand(*fields: str) -> Iterator[Callable[[], Progress]]:
    """A progress display (``make_progress(*fields)``) that appears when first asked for, once the work has
    started: a bad input found before stays one error line, not a line after an empty display."""
    with contextlib.ExitStack() as stack:
        shown: list[Progress] = []

        def display() -> Progress:
            if not shown:
                shown.append(stack.enter_context(make_progress(*fields)))
            return shown[0]

        yield display


@contextlib.contextmanager
def search_progress() -> Iterator[dict[str, Any]]:
    """A bar per stage of every generation, with the front size, best val metric and hypervolume so far:
    yields the ``on_progress`` and ``on_generation`` hooks of ``pipeline.search``."""
    with progress_on_demand("front", "best", "hv") as display:
        bars: dict[str, Any] = {}
        stats = {"front": "-", "best": "-", "hv": "-"}

        def on_progress(label: str, done: int, total: int) -> None:
            progress = display()
            if label not in bars or (done == 0 and progress.tasks[bars[label]].finished):
                bars[label] = progress.add_task(f"{label}", total=max(total, 1), **stats)
            progress.update(bars[label], completed=done if total else 1, total=max(total, 1), **stats)

        def on_generation(g: int, summary: dict[str, Any]) -> None:
            best = summary["best_val_metric"]
            stats.update(front=str(summary["front_size"]), best="-" if best is None else f"{best:.4f}",
                         hv=f"{summary['hypervolume']:.4f}")
            console.log(f"generation {g}: front {stats['front']}, best val {stats['best']}, "
                        f"hypervolume {stats['hv']}, {summary['seconds']:.0f} s")
            bars.clear()

        yield {"on_progress": on_progress, "on_generation": on_generation}


def front_table(front: list[Any], title: str) -> Table:
    """One row per Pareto model: its backbones a line each, the modalities its fusion reads a line each. Fits
    an 80-column log: no number wraps or truncates, no modality's name folds (a long backbone text may)."""
    table = Table(title=title)
    table.add_column("id", no_wrap=True)
    table.add_column("backbones", overflow="fold")
    table.add_column("cells x\nnodes", no_wrap=True)
    table.add_column("reads", no_wrap=True)
    for column in ("val", "test", "latency\nms", "energy\nmJ"):
        table.add_column(column, justify="right", no_wrap=True)
    for e in front:
        macro = e.candidate.macro
        backbones = "\n".join(f"{m}:{a.short_text()}" for m, a in e.candidate.backbones.items())
        table.add_row(short_id(e.key), backbones, f"{macro.cells}x{macro.nodes}", modalities_text(e, sep="\n"),
                      metric(e.val_metric), metric(e.test_metric), f"{e.latency_ms:.3f}", f"{e.energy_mj:.3f}")
    return table


def reliance_table(front: list[Any]) -> Table | None:
    """The test points each Pareto model loses with one modality's features shuffled across samples: whether
    it relies on that modality at all. A table of its own, so that the front table fits a narrow terminal.
    None before the scores exist (a run still searching)."""
    shuffled = list(dict.fromkeys(m for e in front for m in e.test_shuffled))
    if not shuffled:
        return None
    table = Table(title="Test points lost with one modality shuffled (~0: not relied on)")
    table.add_column("id", no_wrap=True)
    table.add_column("test", justify="right", no_wrap=True)
    for modality in shuffled:
        table.add_column(f"{modality}\nshuffled", justify="right", no_wrap=True)
    for e in front:
        table.add_row(short_id(e.key), metric(e.test_metric), *(points_lost(e, m) for m in shuffled))
    return table


def front_tables(front: list[Any], title: str) -> list[Table]:
    """The front table, and the reliance table once the test scores exist: what `search`, `run` and `status`
    show of a front."""
    reliance = reliance_table(front)
    return [front_table(front, title), *([reliance] if reliance is not None else [])]


def show_search(result: Any, variant: str) -> None:
    """The final front of a ``pipeline.search`` and the fusion gain over the best unimodal backbone."""
    for table in front_tables(result.front, f"Pareto front ({variant})"):
        console.print(table)
    if result.fusion_gain:
        console.print(result.fusion_gain, markup=False)  # "[image+audio]" is text, not a rich tag
