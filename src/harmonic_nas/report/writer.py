"""``write_report``: read the run, draw the plots and fusion diagrams, write index.html beside them."""

from __future__ import annotations

import re
from pathlib import Path

from harmonic_nas.files import make_dir, write_text
from harmonic_nas.layout import RunLayout
from harmonic_nas.report.data import collect
from harmonic_nas.report.diagrams import Diagram, fusion_diagram
from harmonic_nas.report.html import Plot, render
from harmonic_nas.report.plots import ablation_plot, front_plot, hypervolume_plot
from harmonic_nas.search.store import Evaluation

_DIAGRAM_SUFFIXES = (".dot", ".svg", ".png")
_PLOTS = ("multimodal-front", "hypervolume", "ablation", "unimodal-*")  # as <name>.svg, PNG before


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_report(run_dir: Path, out_dir: Path | None = None, *, diagrams: bool = True) -> Path:
    """Write the report of the run in ``run_dir`` to ``out_dir`` (default RUN_DIR/report); returns the
    path of index.html. UserError if ``run_dir`` has no search store. Works on a run still searching.
    Without ``diagrams`` (the page refreshed during a search, which must stay cheap) no Graphviz runs: the
    fusion section names the models and says their diagrams come with the final report."""
    run_dir = Path(run_dir)
    data = collect(run_dir)
    out = Path(out_dir) if out_dir is not None else RunLayout(run_dir).report
    make_dir(out)
    run = data.main
    metric = run.metric

    images: dict[str, Plot] = {}
    images["multimodal-front"] = Plot(
        front_plot(run.candidates, run.front, metric, f"{data.name}: multimodal candidates ({run.label})",
                   out / "multimodal-front.svg"),
        "multimodal front: error against latency and energy")
    images["hypervolume"] = Plot(hypervolume_plot(data.variants, out / "hypervolume.svg"),
                                 "hypervolume per generation")
    if data.baselines:
        images["ablation"] = Plot(ablation_plot(data.variants, metric, out / "ablation.svg"),
                                  "ablation: best model of each variant")
    for m, evaluations in run.backbones.items():
        images[f"unimodal-{m}"] = Plot(
            front_plot(evaluations, None, metric, f"{m} backbones (stage 1)", out / f"unimodal-{_safe(m)}.svg",
                       label_ids=False),
            f"{m} backbones: error against latency and energy")
    drawn = {plot.path for plot in images.values()}
    for pattern in _PLOTS:  # of an earlier report: PNGs of older releases, baselines or modalities gone since
        for old in [*out.glob(f"{pattern}.png"), *out.glob(f"{pattern}.svg")]:
            if old not in drawn:
                old.unlink()

    if diagrams:
        figures = _draw_diagrams(run.front, out / "fusion", metric)
    else:
        figures = [Diagram(e.key, "", None, [], problem="diagram drawn when the search ends") for e in run.front]

    # atomic: a browser reloading mid-write never sees half a page, a full disk leaves the last one
    return write_text(out / "index.html", render(data, images, figures))


def _draw_diagrams(front: list[Evaluation], folder: Path, metric: str) -> list[Diagram]:
    """The fusion diagram of each model of ``front`` into ``folder``, removing those of models no longer on it."""
    drawn = [fusion_diagram(e, folder, metric) for e in front]
    written = {f for d in drawn for f in d.files}
    if folder.is_dir():
        for stale in folder.iterdir():
            if stale.suffix in _DIAGRAM_SUFFIXES and stale not in written:
                stale.unlink()
    return drawn
