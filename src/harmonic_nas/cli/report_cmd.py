"""``harmonic-nas report RUN_DIR``: the HTML report of a search run (also of one still running)."""

from __future__ import annotations

from pathlib import Path

import click

from harmonic_nas.cli.params import computed
from harmonic_nas.console import console


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help=computed("Output directory.", "RUN_DIR/report"))
def report(run_dir: Path, out: Path | None) -> None:
    """Write RUN_DIR/report/index.html: a self-contained page (no network needed to view it) with the
    multimodal and unimodal Pareto fronts, hypervolume per generation, the ablation of the baselines found
    in RUN_DIR/baselines/, the table of Pareto models and their fusion diagrams; the SVG plots lie beside it.

    \b
    Examples:
      harmonic-nas report /tmp/smoke
      harmonic-nas report /tmp/smoke --out /tmp/smoke-report
    """
    from harmonic_nas.pipeline import report as write_report

    console.print(f"report: {write_report(run_dir, out=out)}")
