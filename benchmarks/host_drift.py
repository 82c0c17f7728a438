"""Is a whole model's drift between measurements of this process or of the host? ``--processes`` workers
build the same random model of a config's space (seeded) and a second copy of it (other memory); the
parent has them measure it one at a time, round-robin (order reversed every other round), for ``--rounds``
rounds, each time with the model and its copy in the same interleaved rounds (the LUT's protocol: the config's
runtime and threads) and a pure-Python probe on the thread-CPU clock. Prints JSON (and writes --out).

    python benchmarks/host_drift.py [--config configs/demo.yaml] [--processes 4 --rounds 20]

How to read it, on log latencies: "process" is the spread of the workers' means (memory placement, a
process's allocator or thread pool), "round" the spread of the rounds' means (the host: what all
processes see at once), "copy_over_model" the ratio of two models measured in the same rounds. If the
drift were per process, "process" would be the larger and export could not trust a reference model measured
in its own process; if it is of the host, "round" is the larger and the ratio of two models timed side by
side stays near 1, which is what export's drift-corrected ratio relies on.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchjson import emit, machine


def probe_ms() -> float:
    """A fixed pure-Python loop on the thread-CPU clock (second best of 7): how fast the core runs now."""
    times = []
    for _ in range(7):
        start = time.thread_time()
        sum(range(300_000))
        times.append((time.thread_time() - start) * 1e3)
    return sorted(times)[1]


def worker(config: Path, seed: int) -> None:
    """Build the model, say "ready", then measure once per line read on stdin (one JSON line back)."""
    import torch

    from harmonic_nas.config import load_config
    from harmonic_nas.costing.profiler import ProfileSettings
    from harmonic_nas.costing.validate import random_models
    from harmonic_nas.hardware.timing import TimingProtocol, configure_measurement, make_runner, measure
    from harmonic_nas.pipeline import dataset_shapes

    cfg = load_config(config)
    shapes, num_classes = dataset_shapes(cfg)
    hw = cfg.hardware
    (model,) = random_models(cfg, shapes, num_classes, 1, seed)
    configure_measurement(hw.threads)
    device = torch.device("cpu")
    settings = ProfileSettings(device, "cpu", hw.runtime, hw.threads, hw.batch_size,
                               TimingProtocol.configured(hw))
    meter = settings.meter()
    runners = [make_runner(module, model.inputs, hw.runtime, device, hw.threads, hw.batch_size)
               for module in (model.module, copy.deepcopy(model.module))]
    print("ready", flush=True)
    for _ in sys.stdin:
        first, second = measure(runners, settings.protocol, meter, settings.clock)
        print(json.dumps({"model_ms": first.latency_ms, "copy_ms": second.latency_ms, "probe_ms": probe_ms(),
                          "method": settings.protocol.describe(settings.clock)}), flush=True)


def spread(log_values: np.ndarray) -> float:
    return float(np.std(log_values))


def run(config: Path, processes: int, rounds: int, seed: int) -> dict:
    command = [sys.executable, __file__, "--worker", "--config", str(config), "--seed", str(seed)]
    workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(processes)]
    try:
        for w in workers:
            if w.stdout.readline().strip() != "ready":
                raise SystemExit("a worker failed to start (see its error above)")
        rows = []
        for r in range(rounds):
            order = range(processes) if r % 2 == 0 else reversed(range(processes))
            for i in order:
                w = workers[i]
                w.stdin.write("go\n")
                w.stdin.flush()
                rows.append({"round": r, "process": i, "time": time.strftime("%H:%M:%S"),
                             **json.loads(w.stdout.readline())})
    finally:
        for w in workers:
            w.stdin.close()
            w.wait()
    grid = np.zeros((processes, rounds))
    probe = np.zeros((processes, rounds))
    for row in rows:
        grid[row["process"], row["round"]] = row["model_ms"]
        probe[row["process"], row["round"]] = row["probe_ms"]
    logs = np.log(grid)
    copy_ratio = np.array([row["copy_ms"] / row["model_ms"] for row in rows])
    return {
        "config": str(config), "processes": processes, "rounds": rounds, "seed": seed, "method": rows[0]["method"],
        "model_ms": {"min": float(grid.min()), "median": float(np.median(grid)), "max": float(grid.max())},
        "sd_log": {"total": spread(logs), "process": spread(logs.mean(axis=1)), "round": spread(logs.mean(axis=0)),
                   "within_process": spread(logs - logs.mean(axis=1, keepdims=True))},
        "copy_over_model": {"within_5": float(np.mean(np.abs(copy_ratio - 1) <= 0.05)),
                            "within_10": float(np.mean(np.abs(copy_ratio - 1) <= 0.10)),
                            "min": float(copy_ratio.min()), "max": float(copy_ratio.max())},
        "probe_max_over_min": float(probe.max() / probe.min()),
        "corr_log_model_probe": float(np.corrcoef(logs.ravel(), np.log(probe).ravel())[0, 1]),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="Which random model of the space.")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    if args.worker:
        worker(args.config, args.seed)
        return
    result = machine("host_drift")
    result.update(run(args.config, args.processes, args.rounds, args.seed))
    emit(result, args.out)


if __name__ == "__main__":
    main()
