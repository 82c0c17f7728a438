"""Throughput of one sandwich step (max + min + 2 random subnets, batch 128) of an image supernet at
1x28x28 and a spectrogram supernet at 1x112x112 (and 1x64x64), with peak memory. Prints JSON.

    python benchmarks/supernet_step.py [--threads 2] [--steps 10]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from benchjson import emit, machine

import numpy as np
import torch

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config import MBV3Space
from harmonic_nas.data import Task
from harmonic_nas.metrics import distill_loss, task_loss
from harmonic_nas.runtime import configure_threads, step_rng

STAGES = [{"width": 24, "stride": 2}, {"width": 40, "stride": 2, "se": True}, {"width": 80, "stride": 2, "se": True, "act": "hswish"}]


def bench(shape: tuple[int, int, int], stem_stride: int, steps: int, batch: int, channels_last: bool, threads: int) -> dict:
    """Runs in a fresh process so that its peak RSS is its own."""
    configure_threads(threads)
    space_cfg = MBV3Space(stages=STAGES, stem_stride=stem_stride)
    torch.manual_seed(0)
    model = build_supernet(space_cfg, shape, 10)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(batch, *shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    task: Task = "multiclass"
    model.train()
    times = []
    for step in range(steps + 2):  # two warm-up steps
        rng = step_rng(0, 0, step)
        archs = [model.space.max(), model.space.min(), model.space.sample(rng), model.space.sample(rng)]
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        model.set_active(archs[0])
        teacher = model(x).logits
        task_loss(teacher, y, task).backward()
        for arch in archs[1:]:
            model.set_active(arch)
            distill_loss(model(x).logits, teacher, task).backward()
        opt.step()
        if step >= 2:
            times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {
        "input": "x".join(map(str, shape)),
        "stem_stride": stem_stride,
        "channels_last": channels_last,
        "step_s_median": round(median, 4),
        "samples_per_s": round(batch / median, 1),
        "subnet_passes_per_s": round(4 * batch / median, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    report = machine("supernet_step")
    results = []
    for shape, stem_stride in (((1, 28, 28), 1), ((1, 64, 64), 2), ((1, 112, 112), 2)):
        for channels_last in (True, False):
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                results.append(pool.submit(bench, shape, stem_stride, args.steps, args.batch, channels_last, args.threads).result())
    report.update({"subnets_per_step": 4, "batch": args.batch, "threads": args.threads, "results": results})
    emit(report, None)


if __name__ == "__main__":
    main()
