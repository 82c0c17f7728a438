"""Does spreading a measurement's rounds over more wall time keep a slow spell of the host out of it? The
calibration's random whole models of a config's space (same seed and count as ``profile --validate``) are
measured again and again with the config's protocol, alternating back-to-back rounds (span 0) with rounds
spread over each ``--span`` (order reversed every other repetition). Prints JSON (and writes --out).

    python benchmarks/round_span.py [--config configs/demo.yaml] [--models 30] [--span 30] [--repeats 8]

How to read it: for every model, its fastest measurement over the whole run stands for the undisturbed
machine; a repetition's "inflation" is the median over models of latency / that fastest. The calibration's
fit scale grows with it (every prediction then comes out that much high), so an arm is as good as its worst
repetition: "max_inflation" and "within_5" (share of repetitions inflated by at most 5 %). A pure-Python probe
on the thread-CPU clock before each repetition says how fast the core ran then (host_drift.py).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchjson import emit, machine
from host_drift import probe_ms

from harmonic_nas.config import load_config
from harmonic_nas.costing.profiler import ProfileSettings
from harmonic_nas.costing.validate import random_models
from harmonic_nas.hardware.timing import TimingProtocol, configure_measurement, make_runner, measure
from harmonic_nas.pipeline import dataset_shapes


def run(config: Path, models: int, spans: list[float], repeats: int, seed: int) -> dict:
    cfg = load_config(config)
    shapes, num_classes = dataset_shapes(cfg)
    hw = cfg.hardware
    device = torch.device("cpu")
    settings = ProfileSettings(device, "cpu", hw.runtime, hw.threads, hw.batch_size,
                               TimingProtocol.configured(hw))
    configure_measurement(hw.threads)
    meter = settings.meter()
    runners = [make_runner(m.module, m.inputs, hw.runtime, device, hw.threads, hw.batch_size)
               for m in random_models(cfg, shapes, num_classes, models, seed)]
    arms = [0.0, *spans]
    rows = []
    for r in range(repeats):
        for span in arms if r % 2 == 0 else reversed(arms):
            protocol = replace(settings.protocol, span_seconds=span)
            probe, start, clock = probe_ms(), time.perf_counter(), time.strftime("%H:%M:%S")
            latencies = [m.latency_ms for m in measure(runners, protocol, meter, settings.clock)]
            rows.append({"repeat": r, "span": span, "time": clock, "seconds": round(time.perf_counter() - start, 1),
                         "probe_ms": round(probe, 3), "latency_ms": latencies})
    fastest = np.min([row["latency_ms"] for row in rows], axis=0)
    for row in rows:
        row["inflation"] = round(float(np.median(np.divide(row["latency_ms"], fastest))), 4)
    result = {"config": str(config), "models": models, "seed": seed, "repeats": repeats,
              "method": settings.protocol.describe(settings.clock), "arms": {}}
    for span in arms:
        mine = [row for row in rows if row["span"] == span]
        inflation = np.array([row["inflation"] for row in mine])
        result["arms"][f"span_{span:g}s"] = {
            "inflation": inflation.tolist(), "max_inflation": float(inflation.max()),
            "within_5": float(np.mean(inflation <= 1.05)), "seconds_mean": float(np.mean([row["seconds"] for row in mine])),
        }
    result["rows"] = [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--models", type=int, default=30, help="Random whole models (the calibration's count).")
    parser.add_argument("--span", type=float, action="append", default=None,
                        help="Spread arm(s), seconds (repeatable; default 30); always beside span 0.")
    parser.add_argument("--repeats", type=int, default=8, help="Measurements per arm.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    result = machine("round_span")
    result.update(run(args.config, args.models, args.span or [30.0], args.repeats, args.seed))
    emit(result, args.out)


if __name__ == "__main__":
    main()
