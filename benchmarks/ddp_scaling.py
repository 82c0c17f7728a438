"""Supernet training throughput with one and several processes (torch.distributed). Prints JSON.

    python benchmarks/ddp_scaling.py [--steps 8] [--batch 128] [--input 1x28x28]

On CPU (gloo): 1 process x 1 thread, 1 process x 2 threads, 2 processes x 1 thread (torchrun), and, as
an ablation, 2 processes x 1 thread with per-shard BatchNorm (what skipping the global-batch BN would
save; training never runs that way). With CUDA: 1 GPU, and all visible GPUs under torchrun (nccl).

Each run is the real trainer (``SupernetTrainer.train_epoch``: sandwich of max + min + 2 random
subnets, Adam, and in a distributed run the sharding, global-batch BN and the gradient all-reduce) on
random data of the given shape; samples/s = global batch / median step time after 2 warm-up steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchjson import emit, machine

import numpy as np
import torch

STAGES = [{"width": 24, "stride": 2}, {"width": 40, "stride": 2, "se": True}, {"width": 80, "stride": 2, "se": True, "act": "hswish"}]
WARMUP = 2


def _worker(args: argparse.Namespace) -> None:
    """One process of one configuration (alone, or one rank under torchrun); rank 0 writes the result."""
    from harmonic_nas.config import validate_config
    from harmonic_nas.data import ArrayDataset, ModalitySpec, SplitData
    from harmonic_nas.runtime import configure_threads, resolve_device
    from harmonic_nas.supernet import SupernetTrainer
    from harmonic_nas.supernet.distributed import from_env

    configure_threads(args.threads)
    dist = from_env(resolve_device(args.device))
    shape = tuple(int(v) for v in args.input.split("x"))
    n = args.batch * (args.steps + WARMUP)
    rng = np.random.default_rng(0)
    split = SplitData(
        inputs={"image": rng.standard_normal((n, *shape), dtype=np.float32)}, targets=rng.integers(0, 10, n).astype(np.int64)
    )
    dataset = ArrayDataset(
        name="random", modalities={"image": ModalitySpec("image", shape)}, num_classes=10, task="multiclass",
        splits={"train": split, "val": split, "test": split},
    )
    cfg = validate_config(
        {
            "name": "bench",
            "output": {"runs_dir": args.runs},
            "modalities": {"image": {"type": "mbv3", "stages": STAGES, "stem_stride": 1 if shape[-1] <= 32 else 2}},
            "supernet": {"batch_size": args.batch, "random_subnets": 2, "bn_calib_samples": 16},
            "runtime": {"threads": args.threads},
        }
    )
    trainer = SupernetTrainer(cfg, "image", dataset, dist.device, show_progress=False, dist=dist)
    if args.per_shard_bn:  # ablation: undo the global-batch BatchNorm (dropout stays global)
        for module in trainer.model.modules():
            if type(module).__name__.startswith("GlobalBatch") and isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.__class__ = type(module).__mro__[2]
    stamps: list[float] = []

    def on_step(loss: float, sps: float) -> None:
        if dist.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    start = time.perf_counter()
    trainer.train_epoch(0, on_step)
    steps = np.diff([start, *stamps])[WARMUP:]
    if dist.is_main:
        median = float(statistics.median(steps))
        result = {
            "processes": dist.world_size,
            "threads_per_process": args.threads,
            "device": dist.device.type,
            "per_shard_bn": args.per_shard_bn,
            "step_s_median": round(median, 4),
            "samples_per_s": round(args.batch / median, 1),
        }
        Path(args.out).write_text(json.dumps(result))
    dist.shutdown()


def _run(procs: int, threads: int, device: str, args: argparse.Namespace, per_shard_bn: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        worker = [
            __file__, "--worker", "--threads", str(threads), "--device", device, "--steps", str(args.steps),
            "--batch", str(args.batch), "--input", args.input, "--runs", tmp, "--out", str(out),
        ] + (["--per-shard-bn"] if per_shard_bn else [])
        env = {**os.environ, "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000", "OMP_NUM_THREADS": str(threads)}
        if procs == 1:
            command = [sys.executable, *worker]
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), *worker]
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="Timed steps (after 2 warm-up steps).")
    parser.add_argument("--batch", type=int, default=128, help="Global batch (split between the processes).")
    parser.add_argument("--input", default="1x28x28")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--per-shard-bn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", default="", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    report = machine("ddp_scaling")
    started = time.time()
    results = [
        _run(1, 1, "cpu", args),
        _run(1, 2, "cpu", args),
        _run(2, 1, "cpu", args),
        _run(2, 1, "cpu", args, per_shard_bn=True),
    ]
    one, two_threads, two_procs = (r["samples_per_s"] for r in results[:3])
    summary = {
        "cpu_2x1_vs_1x1_speedup": round(two_procs / one, 2),
        "cpu_2x1_scaling_efficiency": round(two_procs / one / 2, 2),
        "cpu_2x1_vs_1x2": round(two_procs / two_threads, 2),
        "cpu_global_bn_cost": round(1 - two_procs / results[3]["samples_per_s"], 3),
    }
    if torch.cuda.is_available():
        gpus = torch.cuda.device_count()
        results.append(_run(1, 1, "cuda", args))
        if gpus > 1:
            results.append(_run(gpus, 1, "cuda", args))
            summary[f"gpu_{gpus}x_scaling_efficiency"] = round(results[-1]["samples_per_s"] / results[-2]["samples_per_s"] / gpus, 2)
    report.update({"input": args.input, "global_batch": args.batch, "subnets_per_step": 4, "steps_timed": args.steps,
                   "seconds": round(time.time() - started, 1), "results": results, "summary": summary})
    emit(report, None)


if __name__ == "__main__":
    main()
