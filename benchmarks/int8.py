"""Does INT8 pay on this CPU for these small depthwise-heavy networks? Two tables, as JSON (printed, and
written with --out):

* layers: every layer of a config's search space run by ONNX Runtime in float and after static INT8
  quantization, as the LUTs price them (``make_runner(..., layer=True)``: the INT8 layer cut to uint8 inputs
  and outputs, as inside a whole INT8 model), timed interleaved: op, input shape, float ms, int8 ms,
  int8/float;
* models (with --run-dir RUN_DIR, a finished run): every Pareto model exported as model.onnx and
  model.int8.onnx (into --models-dir, default a temp dir; the run is not written to), both files timed
  interleaved, with their val metric on the val score part and the drop (as the export records them).

1 thread, the thread-CPU clock and the LUT protocol (hardware.warmup / hardware.repeats of the config,
warm-up, interleaved rounds, 10th percentile). Only numbers from a quiet machine mean anything:

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \
        python benchmarks/int8.py --config configs/demo.yaml --run-dir runs/demo --out int8.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch
from benchjson import emit, machine

from harmonic_nas.config import load_config
from harmonic_nas.config.schema import INT8_RUNTIME, ExperimentConfig
from harmonic_nas.costing.catalog import build_layer, search_space_specs
from harmonic_nas.costing.profiler import ProfileSettings
from harmonic_nas.export import RunContext
from harmonic_nas.export.exporter import export_model, val_inputs
from harmonic_nas.export.formats import onnx_feed, onnx_session
from harmonic_nas.hardware.specs import lut_key
from harmonic_nas.hardware.timing import Runner, TimingProtocol, configure_measurement, make_runner, measure
from harmonic_nas.model_manifest import FILES
from harmonic_nas.pipeline import dataset_shapes

GROUP = 6  # layers per interleaved group (each twice: float and INT8)
CPU = torch.device("cpu")


def settings_of(cfg: ExperimentConfig) -> ProfileSettings:
    """One thread on the CPU with the config's protocol (the profiler's settings, runtime aside)."""
    protocol = TimingProtocol.configured(cfg.hardware)
    return ProfileSettings(CPU, "cpu", "onnxruntime", threads=1, batch_size=1, protocol=protocol)


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b > 0 else float("nan")


def layers(cfg: ExperimentConfig, limit: int | None) -> dict[str, Any]:
    shapes, classes = dataset_shapes(cfg)
    specs = search_space_specs(cfg, shapes, classes)[:limit]
    settings = settings_of(cfg)
    meter = settings.meter()
    configure_measurement(1)
    rows = []
    for start in range(0, len(specs), GROUP):
        group = specs[start : start + GROUP]
        runners: list[Runner] = []
        for spec in group:
            module, inputs = build_layer(spec)
            runners += [make_runner(module, inputs, runtime, CPU, 1, layer=True) for runtime in ("onnxruntime", INT8_RUNTIME)]
        times = measure(runners, settings.protocol, meter, settings.clock)
        for i, spec in enumerate(group):
            fp, q = times[2 * i].latency_ms, times[2 * i + 1].latency_ms
            rows.append({"op": spec.op, "key": lut_key(spec), "shape": "x".join(map(str, spec.input_shape)),
                         "float_ms": round(fp, 4), "int8_ms": round(q, 4), "ratio": ratio(q, fp)})
    by_op = {}
    for op in dict.fromkeys(r["op"] for r in rows):
        ratios = [r["ratio"] for r in rows if r["op"] == op]
        by_op[op] = {"layers": len(ratios), "median_ratio": round(statistics.median(ratios), 3),
                     "int8_faster": sum(r < 1 for r in ratios)}
    return {"count": len(rows), "method": settings.protocol.describe(settings.clock), "by_op": by_op, "rows": rows,
            "sum_float_ms": round(sum(r["float_ms"] for r in rows), 3),
            "sum_int8_ms": round(sum(r["int8_ms"] for r in rows), 3)}


def models(run_dir: Path, folder: Path) -> dict[str, Any]:
    ctx = RunContext.open(run_dir)
    settings = settings_of(ctx.cfg)
    meter = settings.meter()
    rows, runners = [], []
    for e in ctx.front:
        out = folder / e.key
        export_model(ctx, e, out, "onnx", measure=False)
        int8 = export_model(ctx, e, out, "onnx-int8", measure=False).entry.checks  # its val metrics, as recorded
        names = [i["name"] for i in json.loads((out / "arch.json").read_text(encoding="utf-8"))["inputs"]]
        example = [t[:1] for t in val_inputs(ctx.dataset, names, 1)]
        for fmt in ("onnx", "onnx-int8"):
            session = onnx_session(out / FILES[fmt], threads=1)
            feed = onnx_feed(session, names, example)
            runners.append(lambda session=session, feed=feed: session.run(None, feed))
        rows.append({"id": e.key, "lut_ms": round(e.latency_ms, 4), "val_search": e.val_metric,
                     "val_float": int8["val_exported"], "val_int8": int8["int8"]["val_int8"],
                     "val_drop": round(int8["int8"]["val_drop"], 4), "folder": str(out)})
    configure_measurement(1)  # after the exports, which build the models as the export command does
    times = measure(runners, settings.protocol, meter, settings.clock)
    for i, row in enumerate(rows):
        fp, q = times[2 * i].latency_ms, times[2 * i + 1].latency_ms
        row.update(float_ms=round(fp, 4), int8_ms=round(q, 4), ratio=ratio(q, fp))
    return {"run": str(run_dir), "lut_runtime": ctx.lut.header.runtime if ctx.lut else None,
            "method": settings.protocol.describe(settings.clock), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"), help="Its space's layers.")
    parser.add_argument("--layers", type=int, default=None, help="Only the first N layers (a quick check).")
    parser.add_argument("--run-dir", type=Path, default=None, help="A finished run: also its Pareto models.")
    parser.add_argument("--models-dir", type=Path, default=None, help="Where the exports go (default: a temp dir).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    result: dict[str, Any] = {**machine("int8"), "config": str(args.config)}
    if args.run_dir is not None:  # first: its exports run with torch's own thread count, as the command's do
        folder = args.models_dir or Path(tempfile.mkdtemp(prefix="int8-models-"))
        result["models"] = models(args.run_dir, folder)
    result["layers"] = layers(load_config(args.config), args.layers)
    emit(result, args.out)


if __name__ == "__main__":
    main()
