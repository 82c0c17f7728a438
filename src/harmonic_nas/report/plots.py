"""The report's PNG plots (matplotlib, Agg canvas, no pyplot global state): unimodal and multimodal fronts
in the paper's Figure 3 layout, hypervolume per generation, and the Figure 4 ablation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harmonic_nas.files import write_with
from harmonic_nas.report.data import VariantRun, pareto_of
from harmonic_nas.report.format import short_id
from harmonic_nas.search.store import Evaluation

GREY = "#b4b4b4"
RED = "#d62728"
BLUE = "#1f5fa8"
DPI = 110
OTHERS = ("#1f5fa8", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")  # never the full method's red
MAX_LABELS = 16  # more Pareto points than this: ids only in the table


def _save(fig: Figure, path: Path) -> Path:
    # atomic: a full disk leaves the last plot whole; no matplotlib URL in the file
    return write_with(path, lambda tmp: fig.savefig(tmp, dpi=DPI, metadata={"Software": None}))


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


def _front_panels(fig: Figure, evaluations: Sequence[Evaluation], front: Sequence[Evaluation], metric: str,
                  title: str, label_ids: bool) -> None:
    """Two panels (error vs latency, error vs energy): every evaluation grey, ``front`` red."""
    axes = fig.subplots(1, 2)
    front_keys = {e.key for e in front}
    for ax, column, unit in ((axes[0], 1, "latency (ms)"), (axes[1], 2, "energy (mJ)")):
        ax.set_xlabel(unit)
        ax.set_ylabel(f"error (1 − val {metric})")
        ax.grid(True, color="#e6e6e6", linewidth=0.6)
        if not evaluations:
            _empty(ax, "no evaluations yet")
            continue
        F = np.array([e.objectives for e in evaluations], dtype=float)
        rest = [i for i, e in enumerate(evaluations) if e.key not in front_keys]
        ax.scatter(F[rest, column], F[rest, 0], s=18, color=GREY, label="evaluated", zorder=2)
        P = np.array([e.objectives for e in front], dtype=float).reshape(len(front), 3)
        if len(P):
            line = _front_line(P[:, [column, 0]])
            ax.plot(line[:, 0], line[:, 1], color=RED, linewidth=1.0, alpha=0.5, linestyle="--", zorder=3,
                    label="2-D front of this panel")
            ax.scatter(P[:, column], P[:, 0], s=34, color=RED, edgecolor="black", linewidth=0.5, zorder=4,
                       label="Pareto (error, latency, energy)")
            if label_ids and len(front) <= MAX_LABELS:
                for e, p in zip(front, P):
                    ax.annotate(short_id(e.key), (p[column], p[0]), textcoords="offset points", xytext=(4, 4),
                                fontsize=7, color="#7a1010")
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    fig.suptitle(title, fontsize=11)


def front_plot(evaluations: Sequence[Evaluation], front: Sequence[Evaluation] | None, metric: str, title: str,
               path: Path, label_ids: bool = True) -> Path:
    """Figure 3 layout; ``front`` None: the non-dominated ones of ``evaluations``."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    _front_panels(fig, evaluations, pareto_of(list(evaluations)) if front is None else front, metric, title,
                  label_ids)
    return _save(fig, path)


def hypervolume_plot(runs: Sequence[VariantRun], path: Path) -> Path:
    """Hypervolume after each finished generation, one line per variant (same reference point)."""
    fig = Figure(figsize=(7, 3.6), layout="constrained")
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
        ax.plot([r.generation for r in rows], [r.hypervolume for r in rows], marker="o", label=run.label,
                linewidth=2.2 if main else 1.2, color=RED if main else next(others), zorder=3 if main else 2)
        drawn += 1
    if not drawn:
        _empty(ax, "no finished generation yet")
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    return _save(fig, path)


def ablation_plot(runs: Sequence[VariantRun], metric: str, path: Path) -> Path:
    """Figure 4: per variant its best-accuracy model's val metric, latency and energy (grouped bars)."""
    best = [(run, run.best) for run in runs]
    best = [(run, e) for run, e in best if e is not None]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
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
        ax.bar_label(bars, [fmt.format(v) for v in values], fontsize=7, padding=2)
        ax.set_xticks(x, labels, rotation=20, fontsize=8)
        ax.set_ylim(0, max(values) * 1.18 if max(values) > 0 else 1)
        ax.grid(True, axis="y", color="#e6e6e6", linewidth=0.6)
        ax.set_axisbelow(True)
    fig.suptitle("Best-accuracy model of each variant", fontsize=11)
    return _save(fig, path)
