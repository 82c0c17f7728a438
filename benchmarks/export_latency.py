"""Does the latency a user measures match the one the search optimised? Times a finished run's Pareto models
as `export` does (the LUT's runtime and protocol, the calibration's reference model in the same rounds),
``--trials`` times ``--pause`` seconds apart, and compares each with its stored prediction: raw, and with
the machine's slowdown since the calibration (the reference's) taken out. Prints JSON (and writes --out).

    python benchmarks/export_latency.py --run-dir runs/demo [--trials 6 --pause 10]

Goal (issue 17): every exported model within +-10 % of its prediction on a quiet machine. On a shared host
the whole-model times drift with other tenants; the normalised column says whether the cost model or the
machine moved.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchjson import emit, machine

from harmonic_nas.export.build import RunContext, build_model
from harmonic_nas.export.exporter import val_inputs
from harmonic_nas.export.latency import Timing, measure_latency

TOLERANCE = 0.10


def within(errors: list[float]) -> float:
    return sum(abs(e) <= TOLERANCE for e in errors) / len(errors)


def run(run_dir: Path, trials: int, pause: float) -> dict:
    ctx = RunContext.open(run_dir)
    timing = Timing.of(ctx.lut, ctx.cfg.hardware)
    models = [build_model(ctx, e) for e in ctx.front]
    inputs = {b.evaluation.key: val_inputs(ctx.dataset, b.modalities, 1) for b in models}
    rows = []
    for trial in range(trials):
        if trial:
            time.sleep(pause)
        for built in models:
            key = built.evaluation.key
            m = measure_latency(built.net, inputs[key], timing, reference=ctx.latency_reference)
            predicted = built.evaluation.latency_ms
            factor = m.machine_factor
            rows.append({
                "trial": trial, "model": key, "time": time.strftime("%H:%M:%S"), "predicted_ms": predicted,
                "measured_ms": m.latency_ms, "machine_factor": factor, "error": m.latency_ms / predicted - 1,
                "error_normalised": None if factor is None else m.latency_ms / factor / predicted - 1,
            })
    raw = [r["error"] for r in rows]
    normalised = [r["error_normalised"] for r in rows if r["error_normalised"] is not None]
    calibration = ctx.lut.calibration if ctx.lut is not None else None
    return {
        "run_dir": str(run_dir),
        "protocol": {"runtime": timing.runtime, "threads": timing.threads, "batch_size": timing.batch_size,
                     "method": m.method},
        "calibrated": calibration is not None,
        "models": len(models),
        "trials": trials,
        "within_10": {"raw": within(raw), "normalised": within(normalised) if normalised else None},
        "median_abs_error": {"raw": statistics.median(abs(e) for e in raw),
                             "normalised": statistics.median(abs(e) for e in normalised) if normalised else None},
        "machine_factor_range": [min(r["machine_factor"] for r in rows), max(r["machine_factor"] for r in rows)]
        if normalised else None,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--pause", type=float, default=10.0, help="Seconds between trials.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    result = machine("export_latency")
    result.update(run(args.run_dir, args.trials, args.pause))
    emit(result, args.out)


if __name__ == "__main__":
    main()
