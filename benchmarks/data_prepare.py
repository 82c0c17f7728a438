"""Dataset preparation and loading benchmark: prints JSON.

* time and peak memory (max RSS of the preparing process) to prepare av-digits (full MNIST) and emoji
  from the installed sources, each in a fresh process and a fresh cache directory;
* how fast a prepared split loads into torch tensors (batches of 128, sequential and shuffled).

Usage: python benchmarks/data_prepare.py [--quick] [--datasets av-digits emoji] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchjson import emit, machine

# VmHWM (not ru_maxrss, which a child inherits from its forking parent) is the peak of this process alone.
_CHILD = r"""
import json, sys, time
from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.data.registry import prepare_dataset
cfg = DatasetConfig(name=sys.argv[1], cache_dir=sys.argv[2], options=json.loads(sys.argv[3]))
start = time.perf_counter()
prepared = prepare_dataset(cfg, progress=False, force=True)
seconds = time.perf_counter() - start
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(hwm / 1024, 1),
                  "cache": str(prepared.root)}))
"""

QUICK = {
    "av-digits": {"train_size": 5000, "val_size": 1000, "test_size": 1000, "tts_clips": 300, "tts_eval_clips": 100},
    "emoji": {"text_encoder": "hashing", "max_items": 400, "label": "group"},
    "tuxpaint": {"text_encoder": "hashing", "max_items": 200, "min_items": 5},
}


def prepare(name: str, options: dict, cache_dir: Path) -> dict:
    """Prepare in a fresh process: its max RSS is the preparation's peak memory."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, name, str(cache_dir), json.dumps(options)],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"preparing {name} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_rate(name: str, options: dict, cache_dir: Path, batch: int = 128, seconds: float = 3.0) -> dict:
    """Samples per second from the memory-mapped train split into float32 tensors (every modality),
    through the batch iterator that training uses."""
    import numpy as np
    import torch

    from harmonic_nas.config.schema import DatasetConfig
    from harmonic_nas.data import iterate_batches, load_dataset

    data = load_dataset(DatasetConfig(name=name, cache_dir=cache_dir, options=options), progress=False).split("train")
    n = len(data)
    rates = {}
    for mode in ("sequential", "shuffled"):
        order = np.random.default_rng(0).permutation(n) if mode == "shuffled" else np.arange(n)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            streams = [iterate_batches(a, data.targets, batch, torch.device("cpu"), order=order) for a in data.inputs.values()]
            for batches in zip(*streams):
                done += len(batches[0][1])
                if time.perf_counter() - start >= seconds:
                    break
        rates[mode] = round(done / (time.perf_counter() - start))
    return {"train_samples": n, "batch": batch, "samples_per_s": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["av-digits", "emoji"])
    parser.add_argument("--quick", action="store_true", help="Small subsets (a smoke run, seconds).")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args()
    report = machine("data_prepare")
    report.update({"platform": platform.platform(), "quick": args.quick, "datasets": {}})
    with tempfile.TemporaryDirectory(prefix="hnas-bench-") as tmp:
        for name in args.datasets:
            options = QUICK.get(name, {}) if args.quick else {}
            entry = {"options": options, "prepare": prepare(name, options, Path(tmp))}
            entry["load"] = load_rate(name, options, Path(tmp))
            report["datasets"][name] = entry
            print(f"{name}: {entry}", file=sys.stderr, flush=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
