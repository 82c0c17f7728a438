"""What a finished (or running) search leaves for people and devices: the HTML report and the exported
models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harmonic_nas.console import console
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.export.exporter import ExportResult
from harmonic_nas.layout import RunLayout
from harmonic_nas.pipeline.common import Log, writing


def report(run_dir: Path, *, out: Path | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out`` (default RUN_DIR/report) and return its
    index.html: a self-contained page with the fronts, hypervolume per generation, the ablation of the
    baselines found in RUN_DIR/baselines/, the Pareto models and their fusion diagrams. It reads the run
    without its lock, so it works on a search still running."""
    from harmonic_nas.report.writer import write_report

    return write_report(run_dir, out)


def export_model(
    run_dir: Path,
    *,
    model: str = "best-acc",
    fmt: str = "onnx",
    out: Path | None = None,
    samples: int = 32,
    measure: bool = True,
    overrides: Sequence[str] = (),
    dataset: MultimodalDataset | None = None,
    log: Log = console.log,
) -> ExportResult:
    """Export one Pareto model of the search run in ``run_dir`` (``model``: its id or a unique prefix,
    best-acc or fastest) as a standalone network into ``out`` (default RUN_DIR/models/<id>): arch.json,
    model.pt and, for ``fmt`` onnx, onnx-int8 or torchscript, model.onnx, model.int8.onnx (its val metric
    and drop from float recorded) or model.ts, each checked against the PyTorch model on ``samples`` real
    val inputs; ``measure`` times it like the LUT's runtime. ``overrides``
    (key.path=value) may change keys of the run's config that keep its results, e.g. dataset.cache_dir."""
    from harmonic_nas.export import RunContext, select_model
    from harmonic_nas.export.exporter import check_format
    from harmonic_nas.export.exporter import export_model as export_one

    check_format(fmt)
    with writing(run_dir if out is None else None, existing=True):
        ctx = RunContext.open(run_dir, dataset, overrides=overrides)
        chosen = select_model(ctx.front, model, str(run_dir))
        folder = out or RunLayout(run_dir).models / chosen.key
        log(f"exporting {chosen.key} ({model}, one of {len(ctx.front)} Pareto models) to {folder}")
        return export_one(ctx, chosen, folder, fmt, measure=measure, samples=samples)


def export_front(
    run_dir: Path,
    *,
    fmt: str | None = None,
    out: Path | None = None,
    measure: bool = True,
    dataset: MultimodalDataset | None = None,
) -> list[Path]:
    """Export every model of the run's Pareto front to ``out/<id>`` (default RUN_DIR/models), keeping the
    ones exported there already; ``fmt`` defaults to onnx when onnx and onnxruntime are installed, else pt.
    Returns the folders, best val metric first."""
    from harmonic_nas.export.exporter import export_front as export_all

    with writing(run_dir if out is None else None, existing=True):
        return export_all(run_dir, out, fmt or default_format(), dataset=dataset, measure=measure)


def default_format() -> str:
    """onnx when onnx and onnxruntime are installed (the ONNX export and its parity check need them), else pt."""
    import importlib.util

    return "onnx" if all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")) else "pt"
