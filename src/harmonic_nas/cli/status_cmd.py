"""``harmonic-nas status``: where a search stands (also while it runs), once, as JSON, or watched until it
ends."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Group, RenderableType
from rich.text import Text

from harmonic_nas.cli.params import VARIANT
from harmonic_nas.cli.views import front_tables
from harmonic_nas.console import console
from harmonic_nas.search.status import SearchStatus, read_status, store_coming


def status_view(status: SearchStatus) -> RenderableType:
    """What ``status`` prints: the counts, the last finished generation, the running one, the front so far
    and the recent events."""
    lines: list[RenderableType] = [Text.assemble(
        (status.name, "bold"),
        f" ({status.variant}): {status.generations_done} of {status.generations_total} generations finished; "
        f"{status.backbone_evaluations} backbone and {status.candidate_evaluations} multimodal evaluations "
        f"stored; {status.state}" + (f" on {status.host}" if status.host else ""))]
    summary = status.last_summary
    if summary:
        best = summary["best_val_metric"]
        lines.append(Text(f"front {summary['front_size']}, best val {'-' if best is None else f'{best:.4f}'}, "
                          f"hypervolume {summary['hypervolume']:.4f}"))
    if status.running_generation is not None:
        since = (f" for {time.time() - status.running_since:.0f} s"
                 if status.state == "running" and status.running_since is not None else "")
        where = "stopped" if status.state == "interrupted" else "running"
        lines.append(Text(f"generation {status.running_generation} {where}{since}: "
                          f"{status.running_evaluations} multimodal evaluations done"))
    if status.state == "interrupted":
        lines.append(Text(f"resume with: {status.resume_command}"))
    if status.front:
        lines += front_tables(status.front, "Pareto front so far")
    lines += [Text(f"{time.strftime('%H:%M:%S', time.localtime(event['time']))} {event['message']}")
              for event in status.events]
    return Group(*lines)


def watch(read: Callable[[], SearchStatus], show: Callable[[SearchStatus], None], interval: float) -> None:
    """Read the status every ``interval`` seconds and ``show`` it when it changed, until the search is no
    longer running (finished, or its process gone)."""
    shown = None
    while True:
        status = read()
        if status.to_json() != shown:
            show(status)
            shown = status.to_json()
        if status.state != "running":
            return
        time.sleep(interval)


def live_watch(read: Callable[[], SearchStatus], interval: float) -> None:
    """``watch`` on a terminal: one view redrawn in place (its clock ticking), left on screen at the end."""
    from rich.live import Live

    with Live(Text("reading the store ..."), console=console, auto_refresh=False) as live:
        while True:
            status = read()
            live.update(status_view(status), refresh=True)
            if status.state != "running":
                return
            time.sleep(interval)


@click.command("status")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--variant", type=VARIANT, default="sb-sf-hw", show_default=True,
              help="Which search of the run: the full method or a baseline.")
@click.option("--watch", "watching", is_flag=True,
              help="Refresh until the search ends (finished, or its process gone), then exit 0; waits for the "
                   "search to start while a command holding the run (e.g. run) prepares it.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Seconds between refreshes of --watch.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object on stdout (with --watch: one line per change).")
def status(run_dir: Path, variant: str, watching: bool, interval: float, as_json: bool) -> None:
    """Progress of a search run (also while it runs): generations, evaluations, front, recent events, and
    the command that resumes it if its process is gone.

    \b
    Examples:
      harmonic-nas status runs/smoke
      harmonic-nas status runs/smoke --watch
      harmonic-nas status runs/smoke --variant random --json
    """
    def read() -> SearchStatus:
        return read_status(run_dir, variant)

    def show(status: SearchStatus) -> None:
        if as_json:
            click.echo(json.dumps(status.to_json()))
        else:
            console.print(status_view(status))

    if not watching:
        show(read())
        return
    waiting = store_coming(run_dir, variant)
    if waiting:
        console.log(f"waiting for the search to start: {run_dir} is in use by {waiting}")
        while waiting:
            time.sleep(interval)
            waiting = store_coming(run_dir, variant)
    if console.is_terminal and not as_json:
        live_watch(read, interval)
    else:
        watch(read, show, interval)
