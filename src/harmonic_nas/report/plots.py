"""The report's plots as SVG (matplotlib, no pyplot global state): unimodal and multimodal fronts in the
paper's Figure 3 layout, hypervolume per generation, and the Figure 4 ablation.

SVG so that the page can inline them and every point, line and bar carries a ``<title>`` (its id and
numbers: the browser shows it on hover, no script needed). Legends sit below the axes, off the data.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from harmonic_nas.files import write_text
from harmonic_nas.report.data import VariantRun, pareto_of
from harmonic_nas.report.format import modalities_text, short_id
from harmonic_nas.search.store import Evaluation

GREY = "#b4b4b4"
RED = "#d62728"
BLUE = "#1f5fa8"
OTHERS = ("#1f5fa8", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")  # never the full method's red
MAX_LABELS = 16  # more Pareto points than this: ids only in the table


SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
# text as text (small files, the page's font), ids of markers and clip paths the same on every run
_SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "harmonic-nas"}


class Titles:
    """The hover text of a figure's artists: ``add`` gives an artist an id (unique within the figure)
    that ``svg`` turns into a ``<title>`` child of the artist's group."""

    def __init__(self) -> None:
        self.text: dict[str, str] = {}

    def add(self, artist: Artist, text: str) -> None:
        gid = f"hover-{len(self.text)}"
        artist.set_gid(gid)
        self.text[gid] = text

    def svg(self, fig: Figure) -> str:
        """The figure as a standalone SVG document with the titles in, and no other group ids (several
        plots inlined in one page would repeat matplotlib's figure_1, axes_1 ...) nor metadata."""
        buffer = io.StringIO()
        with mpl.rc_context(_SVG_STYLE):
            fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
        root = ET.fromstring(buffer.getvalue())
        for metadata in root.findall(f"{{{SVG}}}metadata"):
            root.remove(metadata)
        for group in root.iter(f"{{{SVG}}}g"):
            text = self.text.get(group.attrib.pop("id", ""))
            if text is not None:
                title = ET.Element(f"{{{SVG}}}title")
                title.text = text
                group.insert(0, title)
        return ET.tostring(root, encoding="unicode") + "\n"


def _save(fig: Figure, titles: Titles, path: Path) -> Path:
    # atomic: a full disk leaves the last plot whole
    return write_text(path, titles.svg(fig))


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _front_line(points: np.ndarray) -> np.ndarray:
    """The 2-D non-dominated points (x, y both minimised) as a staircase, sorted by x."""
    keep = [i for i, p in enumerate(points) if not np.any(np.all(points <= p, axis=1) & np.any(points < p, axis=1))]
    front = points[keep]
    front = front[np.argsort(front[:, 0], kind="stable")]
    steps = [front[0]]
    for p in front[1:]:
        steps += [np.array([p[0], steps[-1][1]]), p]
    return np.array(steps)


def _point_text(e: Evaluation, metric: str, pareto: bool) -> str:
    """A point's hover text: short id, val metric, latency, energy (and what a multimodal model reads)."""
    what = f"{e.modality} backbone " if e.kind == "backbone" else ""
    reads = f", reads {modalities_text(e)}" if e.kind == "candidate" else ""
    return (f"{what}{short_id(e.key)}{' (Pareto)' if pareto else ''}: val {metric} {e.val_metric:.4f}, "
            f"latency {e.latency_ms:.3f} ms, energy {e.energy_mj:.3f} mJ{reads}")


def _front_panels(fig: Figure, titles: Titles, evaluations: Sequence[Evaluation], front: Sequence[Evaluation],
                  metric: str, title: str, label_ids: bool) -> None:
    """Two panels (error vs latency, error vs energy): every evaluation grey, ``front`` red, each point
    its own artist with its hover text; the legend below the panels."""
    axes = fig.subplots(1, 2)
    front_keys = {e.key for e in front}
    grey = {"linestyle": "", "marker": "o", "markersize": 4.2, "color": GREY}
    red = {"linestyle": "", "marker": "o", "markersize": 5.8, "color": RED, "markeredgecolor": "black",
           "markeredgewidth": 0.5}
    for ax, column, unit in ((axes[0], 1, "latency (ms)"), (axes[1], 2, "energy (mJ)")):
        ax.set_xlabel(unit)
        ax.set_ylabel(f"error (1 − val {metric})")
        ax.grid(True, color="#e6e6e6", linewidth=0.6)
        if not evaluations:
            _empty(ax, "no evaluations yet")
            continue
        for e in evaluations:
            if e.key not in front_keys:
                (point,) = ax.plot([e.objectives[column]], [e.objectives[0]], zorder=2, **grey)
                titles.add(point, _point_text(e, metric, pareto=False))
        P = np.array([e.objectives for e in front], dtype=float).reshape(len(front), 3)
        if len(P):
            line = _front_line(P[:, [column, 0]])
            ax.plot(line[:, 0], line[:, 1], color=RED, linewidth=1.0, alpha=0.5, linestyle="--", zorder=3)
            for e, p in zip(front, P):
                (point,) = ax.plot([p[column]], [p[0]], zorder=4, **red)
                titles.add(point, _point_text(e, metric, pareto=True))
            if label_ids and len(front) <= MAX_LABELS:
                for e, p in zip(front, P):
                    ax.annotate(short_id(e.key), (p[column], p[0]), textcoords="offset points", xytext=(4, 4),
                                fontsize=7, color="#7a1010")
    if evaluations:
        legend = [Line2D([], [], label="evaluated", **grey),
                  Line2D([], [], color=RED, linewidth=1.0, alpha=0.5, linestyle="--", label="2-D front of this panel"),
                  Line2D([], [], label="Pareto (error, latency, energy)", **red)]
        fig.legend(handles=legend, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=11)


def front_figure(evaluations: Sequence[Evaluation], front: Sequence[Evaluation] | None, metric: str, title: str,
                 label_ids: bool = True) -> tuple[Figure, Titles]:
    """Figure 3 layout; ``front`` None: the non-dominated ones of ``evaluations``."""
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    titles = Titles()
    _front_panels(fig, titles, evaluations, pareto_of(list(evaluations)) if front is None else front, metric,
                  title, label_ids)
    return fig, titles


def front_plot(evaluations: Sequence[Evaluation], front: Sequence[Evaluation] | None, metric: str, title: str,
               path: Path, label_ids: bool = True) -> Path:
    """:func:`front_figure` written to ``path`` (SVG)."""
    return _save(*front_figure(evaluations, front, metric, title, label_ids), path)


def hypervolume_plot(runs: Sequence[VariantRun], path: Path) -> Path:
    """Hypervolume after each finished generation, one line per variant (same reference point)."""
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    titles = Titles()
    ax = fig.subplots()
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (scaled objectives)")
    ax.grid(True, color="#e6e6e6", linewidth=0.6)
    drawn = 0
    others = iter(OTHERS * 4)
    for run in runs:
        rows = [r for r in run.generations if r.hypervolume is not None]
        if not rows:
            continue
        main = run.is_full_method
        (line,) = ax.plot([r.generation for r in rows], [r.hypervolume for r in rows], marker="o", label=run.label,
                          linewidth=2.2 if main else 1.2, color=RED if main else next(others), zorder=3 if main else 2)
        titles.add(line, f"{run.label}: " + ", ".join(f"generation {r.generation} {r.hypervolume:.4f}" for r in rows))
        drawn += 1
    if not drawn:
        _empty(ax, "no finished generation yet")
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(bottom=0)
        fig.legend(loc="outside lower center", ncols=min(drawn, 5), fontsize=8, frameon=False)
    return _save(fig, titles, path)


def ablation_plot(runs: Sequence[VariantRun], metric: str, path: Path) -> Path:
    """Figure 4: per variant its best-accuracy model's val metric, latency and energy (grouped bars)."""
    best = [(run, run.best) for run in runs]
    best = [(run, e) for run, e in best if e is not None]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    titles = Titles()
    axes = fig.subplots(1, 3)
    labels = [run.label for run, _ in best]
    colors = [RED if run.is_full_method else BLUE for run, _ in best]
    for ax, values, title, fmt in (
        (axes[0], [e.val_metric for _, e in best], f"val {metric}", "{:.3f}"),
        (axes[1], [e.latency_ms for _, e in best], "latency (ms)", "{:.2f}"),
        (axes[2], [e.energy_mj for _, e in best], "energy (mJ)", "{:.2f}"),
    ):
        ax.set_title(title, fontsize=10)
        if not best:
            _empty(ax, "no evaluations")
            continue
        x = np.arange(len(values))
        bars = ax.bar(x, values, color=colors, width=0.65)
        for bar, (run, e), value in zip(bars, best, values):
            titles.add(bar, f"{run.label}: best model {short_id(e.key)}, {title} {fmt.format(value)}")
        ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=7, padding=2)
        ax.set_xticks(x, labels, rotation=20, fontsize=8)
        ax.set_ylim(0, max(values) * 1.18 if max(values) > 0 else 1)
        ax.grid(True, axis="y", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
    fig.suptitle("Best-accuracy model of each variant", fontsize=11)
    return _save(fig, titles, path)
