"""Exporting one Pareto model (or the whole front): build it, write arch.json, model.pt and the chosen
format (model.onnx, model.int8.onnx, model.ts), check every file against the in-memory network on real val
inputs (INT8: its val metric instead, export/int8.py), measure its latency, and record the format in the
folder's manifest.json (model_manifest) beside the formats exported before."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from harmonic_nas.config.schema import INT8_RUNTIME
from harmonic_nas.console import console
from harmonic_nas.data import MultimodalDataset, SplitData, Task
from harmonic_nas.errors import UserError
from harmonic_nas.export.build import BuiltModel, RunContext, build_model
from harmonic_nas.export.formats import (
    TOLERANCE, ParityError, export_onnx, export_torchscript, load_model, max_abs_diff, onnx_feed, onnx_outputs,
    onnx_session, require_parity, save_pt, torchscript_outputs,
)
from harmonic_nas.export.int8 import int8_checks, write_int8
from harmonic_nas.files import make_dir
from harmonic_nas.export.latency import Timing, measure_latency
from harmonic_nas.hardware.timing import check_runtime
from harmonic_nas.jsonfile import write_json
from harmonic_nas.layout import RunLayout
from harmonic_nas.metrics import metric_name, score
from harmonic_nas.model_manifest import (
    FILES, FORMATS, MANIFEST_NAME, ExportEntry, Manifest, MeasuredLatency, agreement, read_manifest, record_export,
)
from harmonic_nas.search.store import Evaluation

PARITY_SAMPLES = 32
ARCH_FORMAT = "harmonic-nas-arch/2"  # /1 also held the last export's format, checks and latency


@dataclass
class ExportResult:
    """What one export wrote and measured."""

    key: str
    out_dir: Path
    files: list[Path]
    parity: dict[str, float]
    samples: int
    val_metric_exported: float
    latency: MeasuredLatency | None
    manifest: Manifest  # every format of the folder, this one last
    arch: dict[str, Any] = field(default_factory=dict)

    @property
    def lut_latency_ms(self) -> float:
        return float(self.arch["lut"]["latency_ms"])

    @property
    def entry(self) -> ExportEntry:
        """This export's entry of the manifest."""
        return self.manifest.exports[-1]


def check_format(fmt: str) -> str:
    """``fmt`` if it is a known format whose libraries are installed, else one UserError line."""
    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt in ("onnx", "onnx-int8"):
        check_runtime("onnxruntime" if fmt == "onnx" else INT8_RUNTIME)  # onnx to export, onnxruntime to check
    return fmt


def val_inputs(dataset: MultimodalDataset, modalities: list[str], n: int) -> list[Tensor]:
    """The first ``n`` val samples of every modality, float32, a copy of their own (a real batch; the
    prepared arrays are read-only memory maps, which torch warns about sharing)."""
    val = dataset.split("val")
    n = min(n, len(val))
    if n < 1:
        raise UserError(f"dataset {dataset.name!r}: the val split is empty, nothing to check the export on")
    return [torch.from_numpy(np.array(val.inputs[m][:n], dtype=np.float32)) for m in modalities]


@torch.no_grad()
def metric_on(forward: Callable[..., Tensor], modalities: Sequence[str], val: SplitData, task: Task,
              batch_size: int) -> float:
    """The metric of ``forward`` (raw float32 inputs, one per modality in ``modalities`` order) on ``val``."""
    logits = []
    for start in range(0, len(val), batch_size):
        batch = [torch.from_numpy(np.ascontiguousarray(val.inputs[m][start : start + batch_size], dtype=np.float32))
                 for m in modalities]
        logits.append(forward(*batch).float())
    return score(torch.cat(logits), torch.from_numpy(np.array(val.targets)), task)


def val_metric_of(built: BuiltModel, val: SplitData, task: Task, batch_size: int) -> float:
    """The metric of the whole exported network on the raw inputs of ``val`` (on the val score part it
    should equal the search's)."""
    return metric_on(built.net, built.modalities, val, task, batch_size)


def onnx_val_metric(path: Path, names: Sequence[str], val: SplitData, task: Task, batch_size: int) -> float:
    """The metric of the ONNX model at ``path`` (float or INT8; inputs ``names``, the modality order) on ``val``."""
    session = onnx_session(path)
    return metric_on(lambda *batch: torch.from_numpy(session.run(None, onnx_feed(session, names, batch))[0]),
                     names, val, task, batch_size)


def export_model(
    ctx: RunContext, evaluation: Evaluation, out_dir: Path, fmt: str = "onnx", *, measure: bool = True,
    samples: int = PARITY_SAMPLES, tolerance: float = TOLERANCE,
) -> ExportResult:
    """Export ``evaluation`` to ``out_dir``: arch.json, model.pt and, for onnx/onnx-int8/torchscript,
    model.onnx, model.int8.onnx or model.ts, and the format's entry in manifest.json (the entries of other
    formats kept). Raises ParityError (a one-line UserError) when a file's outputs on ``samples`` real val
    inputs differ from the in-memory network's by more than ``tolerance`` (for INT8: when its outputs are
    not finite logits of the right shape; its val metric and drop from float are recorded instead)."""
    check_format(fmt)
    out_dir = Path(out_dir)
    make_dir(out_dir)
    built = build_model(ctx, evaluation)
    names = built.modalities
    inputs = val_inputs(ctx.dataset, names, samples)
    with torch.no_grad():
        reference = built.net(*inputs)
    parity: dict[str, float] = {}
    files = [out_dir / "arch.json", out_dir / FILES["pt"]]
    files[0].unlink(missing_ok=True)  # written last, only when every check passed

    save_pt(built.net, built.recipe, files[1])
    with torch.no_grad():
        parity["pt"] = max_abs_diff(load_model(files[1])(*inputs), reference)
    require_parity(str(files[1]), parity["pt"], len(reference), tolerance)
    onnx_file = graph_inputs = None
    if fmt == "onnx":
        onnx_file = out_dir / FILES["onnx"]
        graph_inputs = export_onnx(built.net, [t[:2] for t in inputs], names, onnx_file)
        parity["onnx"] = max_abs_diff(onnx_outputs(onnx_file, names, inputs), reference)
        require_parity(f"{onnx_file} (ONNX Runtime)", parity["onnx"], len(reference), tolerance)
        files.append(onnx_file)
    elif fmt == "onnx-int8":
        onnx_file = out_dir / FILES["onnx-int8"]
        train = ctx.dataset.split("train")
        with tempfile.TemporaryDirectory(prefix="harmonic-nas-export-") as tmp:
            float_file = Path(tmp) / FILES["onnx"]
            graph_inputs = export_onnx(built.net, [t[:2] for t in inputs], names, float_file)
            quantized = write_int8(float_file, train, graph_inputs, ctx.cfg.runtime.seed, onnx_file)
        outputs = onnx_outputs(onnx_file, names, inputs)
        if outputs.shape != reference.shape or not bool(torch.isfinite(outputs).all()):
            raise ParityError(f"{onnx_file} (INT8, ONNX Runtime): outputs of shape {tuple(outputs.shape)} with "
                              f"non-finite values or another shape than the PyTorch model's {tuple(reference.shape)}")
        files.append(onnx_file)
    elif fmt == "torchscript":
        ts_file = out_dir / FILES["torchscript"]
        export_torchscript(built.net, [t[:2] for t in inputs], ts_file)
        parity["torchscript"] = max_abs_diff(torchscript_outputs(ts_file, inputs), reference)
        require_parity(str(ts_file), parity["torchscript"], len(reference), tolerance)
        files.append(ts_file)

    exported_val = val_metric_of(built, ctx.val_score, ctx.dataset.task, ctx.cfg.fusion.batch_size)
    checks = {"samples": len(reference), "tolerance": tolerance, "max_abs_diff": parity, "val_exported": exported_val}
    if fmt == "onnx-int8":
        val_int8 = onnx_val_metric(onnx_file, names, ctx.val_score, ctx.dataset.task, ctx.cfg.fusion.batch_size)
        checks["int8"] = int8_checks(quantized, exported_val, val_int8, max_abs_diff(outputs, reference), train,
                                     ctx.cfg.runtime.seed)
    latency = None
    if measure:
        timing = Timing.of(ctx.lut, ctx.cfg.hardware)
        timed_file = onnx_file if timing.runtime == "onnxruntime" else None  # else the LUT's runtime on the net
        # the LUT calibration's reference model, timed alike; its calibration time is of the LUT's runtime
        same_runtime = fmt != "onnx-int8" or timing.runtime == INT8_RUNTIME
        if fmt == "onnx-int8":  # the INT8 file, whatever the LUT's runtime: what it costs is the point
            timing, timed_file = replace(timing, runtime=INT8_RUNTIME), onnx_file
        latency = measure_latency(built.net, inputs, timing, timed_file, names,
                                  ctx.latency_reference if same_runtime else None)
    entry = ExportEntry.now(format=fmt, file=files[-1].name, measured=latency, checks=checks, onnx_inputs=graph_inputs)
    manifest = record_export(out_dir, evaluation.key, evaluation.val_metric, entry, [f.name for f in files])
    arch = arch_json(ctx, built, exported_val)
    write_json(files[0], arch)
    files.append(out_dir / MANIFEST_NAME)
    return ExportResult(evaluation.key, out_dir, files, parity, len(reference), exported_val, latency, manifest, arch)


def summary_line(result: ExportResult) -> str:
    """One line: where, parity, val metric, measured vs LUT latency."""
    parity = ", ".join(f"{name} {v:.1e}" for name, v in result.parity.items())
    line = (f"exported {result.key} to {result.out_dir}: max abs diff {parity}; val "
            f"{result.val_metric_exported:.4f}")
    int8 = result.entry.checks.get("int8")
    if int8 is not None:
        line += f", INT8 {int8['val_int8']:.4f} (drop {int8['val_drop']:+.4f})"
    if result.latency is not None:
        lat = result.latency
        line += (f"; {lat.latency_ms:.3f} ms measured ({lat.runtime}, batch {lat.batch_size}), "
                 f"predicted {result.lut_latency_ms:.3f} ms, {lat.versus(result.lut_latency_ms)}")
    return line


def arch_json(ctx: RunContext, built: BuiltModel, exported_val: float) -> dict[str, Any]:
    """What the model is (reproduce reads its candidate and genotype), whatever format it was exported in:
    the formats, their checks and latencies are in manifest.json."""
    e = built.evaluation
    recipe = built.recipe
    used = set(built.net.backbones)  # modalities whose taps the fusion reads
    lut: dict[str, Any] = {"latency_ms": e.latency_ms, "energy_mj": e.energy_mj}
    if ctx.lut is not None:
        h = ctx.lut.header
        lut.update(file=str(ctx.lut.path or ctx.cfg.lut_path), device=h.device, runtime=h.runtime, threads=h.threads,
                   batch_size=h.batch_size, calibrated=ctx.lut.calibration is not None, energy_source=h.energy_source)
    return {
        "format": ARCH_FORMAT,
        "id": e.key,
        "run": str(ctx.store_dir),
        "candidate": e.candidate.to_json(),
        "genotype": e.genotype.to_json() if e.genotype is not None else None,
        "metrics": {"metric": metric_name(ctx.dataset.task), "val": e.val_metric, "test": e.test_metric,
                    "test_shuffled": e.test_shuffled or None, "val_exported": exported_val},
        "lut": lut,
        "inputs": [
            {"name": m, "shape": ["batch", *recipe["input_shapes"][m]], "dtype": "float32", "used": m in used}
            for m in recipe["modalities"]
        ],
        "output": {"name": "logits", "shape": ["batch", recipe["num_classes"]], "task": recipe["task"]},
        "num_classes": recipe["num_classes"],
        "class_names": recipe["class_names"],
        "feature_settings": {"calib_samples": ctx.settings.calib_samples, "batch_size": ctx.settings.batch_size,
                             "seed": ctx.settings.seed, "channels_last": ctx.settings.channels_last},
    }


def already_exported(folder: Path, evaluation: Evaluation, fmt: str) -> bool:
    """``folder`` holds a complete export of ``evaluation`` in ``fmt``: its arch.json (written last, after
    every parity check) names the same model and val metric, and its manifest has an entry of ``fmt`` for
    that model whose file exists, beside model.pt."""
    try:
        arch = json.loads((folder / "arch.json").read_text(encoding="utf-8"))
        same = (arch["format"] == ARCH_FORMAT and arch["id"] == evaluation.key
                and arch["metrics"]["val"] == evaluation.val_metric)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    manifest = read_manifest(folder)
    return (same and manifest is not None and manifest.describes(evaluation.key, evaluation.val_metric)
            and manifest.entry(fmt) is not None and (folder / FILES["pt"]).is_file())


def export_front(
    run_dir: Path, out_dir: Path | None = None, fmt: str = "onnx", *, dataset: MultimodalDataset | None = None,
    measure: bool = True, reuse: bool = True,
) -> list[Path]:
    """Export every model of the run's Pareto front to ``out_dir/<key>/`` (default ``run_dir/models``);
    returns the folders, best val metric first. With ``reuse``, a model already exported there (see
    :func:`already_exported`) is kept as it is. A model failing its parity check does not stop the others:
    they are exported, then one ParityError names every model that failed."""
    check_format(fmt)
    ctx = RunContext.open(Path(run_dir), dataset)
    out = Path(out_dir) if out_dir is not None else RunLayout(run_dir).models
    folders, failed, timed = [], [], []
    for i, e in enumerate(ctx.front, start=1):
        if reuse and already_exported(out / e.key, e, fmt):
            console.log(f"{e.key}: already exported to {out / e.key}")
            folders.append(out / e.key)
            continue
        console.log(f"exporting model {i}/{len(ctx.front)}: {e.key} ({fmt})")  # each takes seconds to a minute
        try:
            result = export_model(ctx, e, out / e.key, fmt, measure=measure)
        except ParityError as exc:
            failed.append(f"{e.key}: {exc}")
            continue
        folders.append(result.out_dir)
        console.log(summary_line(result))
        if result.latency is not None:
            timed.append((result.latency, result.lut_latency_ms))
    if timed:
        console.log(agreement(timed))
    if failed:
        raise ParityError(f"{len(failed)} of {len(ctx.front)} Pareto models failed the parity check "
                          f"(the others are in {out}): " + "; ".join(failed))
    return folders
