"""Fidelity of the LUT cost model on this machine: profile a config's whole search space into a fresh LUT
(timed), then measure random whole multimodal models and compare with the plain additive and the fitted
(5-fold cross-validated) cost. Prints JSON (and writes it with --out).

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 \
        python benchmarks/lut_fidelity.py [--config configs/demo.yaml] [--models 50] [--runtime torch ...] \
            [--threads 1 --threads 2]

With --threads 1 and a deployment's thread count N > 1 for one runtime, "deployment_from_1_thread" answers
whether the quiet-machine-robust protocol (each layer on 1 thread, thread CPU time) can stand for the
deployment: the 1-thread table's sums calibrated (5-fold, held out) on the N-thread wall-clock times of the
same whole models.

With --repeatability the same models are measured a second time after validation: "repeatability" holds the
figures of the first measurement taken as a prediction of the second ("raw"), and after the machine's drift
between the two (the median ratio, "drift") is taken out ("drift_removed"). No table can predict a protocol's
measurements better than the protocol reproduces itself, so this is the ceiling of "fitted" on this machine;
"goals_met.machine_steady" is False when that ceiling is below the within_10 goal (the machine, not the table,
then decides the figure).
--settle compares pauses before each item on the wall clock (hardware/timing.py says why), side by side.

Goals (issue 4): >= 95 % of the models within +-10 % and Spearman >= 0.95 for the fitted model;
profiling the av-digits space in <= 300 s on 2 cores. Timings on a machine shared with other work are
disturbed: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from benchjson import emit, machine

from harmonic_nas.pipeline import dataset_shapes
from harmonic_nas.config import load_config
from harmonic_nas.config.schema import RUNTIMES
from harmonic_nas.costing.catalog import search_space_specs
from harmonic_nas.costing.profiler import ProfileSettings, profile
from harmonic_nas.hardware.timing import TimingProtocol, configure_measurement
from harmonic_nas.costing.validate import Figures, cross_validated, measure_models, plot, random_models, validate_lut
from harmonic_nas.hardware.calibration import fit_linear

GOALS = {"within_10": 0.95, "spearman": 0.95, "profile_seconds": 300.0}


def run(config: Path, runtime: str, threads: int, models: int, seed: int, workdir: Path,
        repeatability: bool, settle: float | None) -> tuple[dict, dict]:
    """The row of one runtime and thread count, and its per-model series (additive, layers, measured)."""
    cfg = load_config(config)
    shapes, num_classes = dataset_shapes(cfg)
    hardware = cfg.hardware
    settings = ProfileSettings(
        torch.device("cpu"), "cpu", runtime, threads, hardware.batch_size,
        TimingProtocol.configured(hardware, **({} if settle is None else {"settle_seconds": settle})),
    )
    configure_measurement(settings.threads)
    meter = settings.meter()
    specs = search_space_specs(cfg, shapes, num_classes)
    name = f"{runtime}-{threads}t" + ("" if settle is None else f"-settle{settle:g}")
    out = workdir / f"lut-{name}.json"
    start = time.perf_counter()
    table = profile(specs, out, settings, meter)
    profile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    report = validate_lut(table, cfg, shapes, num_classes, models, settings, meter, seed)
    validate_seconds = time.perf_counter() - start
    table.save(out)
    measured = [r["latency_measured"] for r in report.rows]
    again = None
    if repeatability:
        remeasured = [m.latency_ms for m in measure_models(random_models(cfg, shapes, num_classes, models, seed),
                                                           settings, meter)]
        drift = float(np.median(np.divide(remeasured, measured)))
        again = {"raw": asdict(Figures.of(measured, remeasured)), "drift": round(drift, 4),
                 "drift_removed": asdict(Figures.of([m * drift for m in measured], remeasured))}
    figure = plot(report, workdir / f"lut-fidelity-{name}.png")
    fitted = report.figures["latency"]["fitted"]
    series = {"models": [(r["candidate"], r["genotype"]) for r in report.rows], "layers": [r["layers"] for r in report.rows],
              "additive": [r["latency_additive"] for r in report.rows], "measured": measured}
    return {
        "protocol": {"runtime": runtime, "threads": threads, "clock": settings.clock,
                     "settle_seconds": settings.protocol.settle(settings.clock)},
        "layers_profiled": len(specs),
        "profile_seconds": round(profile_seconds, 1),
        "validate_seconds": round(validate_seconds, 1),
        "models": models,
        "figures": report.figures,
        "repeatability": again,
        "calibration": table.calibration.model_dump(mode="json") if table.calibration else None,
        "goals_met": {
            "within_10": fitted["within_10"] >= GOALS["within_10"],
            "spearman": (fitted["spearman"] or 0.0) >= GOALS["spearman"],
            "profile_seconds": profile_seconds <= GOALS["profile_seconds"],
            # with --repeatability: could any table have met within_10 (False: the machine limits the figure)
            "machine_steady": None if again is None else again["drift_removed"]["within_10"] >= GOALS["within_10"],
        },
        "lut": str(out),
        "plot": str(figure),
    }, series


def deployment_from_one_thread(one: dict, many: dict, seed: int) -> dict:
    """The 1-thread table's sums (``one``) calibrated on the deployment's whole-model times (``many``, the same
    models): held-out figures of the fit, as a calibration on deployment measurements would predict."""
    assert one["models"] == many["models"], "the two rows measured different random models"
    additive, layers, measured = one["additive"], one["layers"], many["measured"]
    held_out = cross_validated(additive, layers, measured, seed)
    return {"fitted": asdict(Figures.of(held_out, measured)),
            "fit_scale": round(fit_linear(additive, layers, measured).scale, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--runtime", action="append", choices=RUNTIMES)
    parser.add_argument("--threads", type=int, action="append",
                        help="Intra-op threads (repeatable): 1 times thread CPU time, more the wall clock, as a "
                        "deployment with that many threads sees it (default: hardware.threads).")
    parser.add_argument("--repeatability", action="store_true",
                        help="Measure the models a second time: how well the protocol reproduces itself.")
    parser.add_argument("--settle", type=float, action="append",
                        help="Seconds of pause before each item on the wall clock (repeatable: each value is a "
                        "row of every thread count > 1, measured one after the other; default: the protocol's).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="Where LUTs and plots go (default: a temp dir).")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="lut-fidelity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    result = {
        **machine("lut_fidelity"),
        "config": str(args.config),
        "goals": GOALS,
        "runtimes": {},
    }
    for runtime in args.runtime or ["torch", "onnxruntime"]:
        one_thread, deployments = None, {}
        for threads in args.threads or [load_config(args.config).hardware.threads]:
            for settle in (args.settle or [None]) if threads > 1 else [None]:
                key = runtime if args.threads is None else f"{runtime}/{threads} threads"
                key += "" if settle is None else f", settle {settle:g} s"
                result["runtimes"][key], series = run(
                    args.config, runtime, threads, args.models, args.seed, workdir, args.repeatability, settle)
                if threads == 1:
                    one_thread = series
                else:
                    deployments[key] = series
        for key, series in deployments.items() if one_thread is not None else ():
            result.setdefault("deployment_from_1_thread", {})[key] = (
                deployment_from_one_thread(one_thread, series, args.seed))
    emit(result, args.out)


if __name__ == "__main__":
    main()
