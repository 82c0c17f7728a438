"""Seconds per fusion-search epoch on cached features (C=192, L=16 by default) for the macros 2 cells x
1 node and 4 x 4, compared per sample with the authors' code on a 2-core CPU (REFERENCE.md 3.7: about
51 s per epoch of 1050 samples for 2 x 1, 190 s for 4 x 4). Prints JSON.

    python benchmarks/fusion_epoch.py [--threads 2] [--samples 10000] [--val 2000] [--macros 2x1 4x4]

An epoch is what ``harmonic_nas.fusion.darts.search`` does per epoch: for every train batch one
architecture step on a val batch (task + hardware loss) and one weight step, then the val metric.
Features are AV-MNIST-like taps of two 3-stage MobileNetV3 backbones (24, 40, 80 channels), pooled.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.fusion.darts import search
from harmonic_nas.fusion.features import SplitFeatures
from harmonic_nas.fusion.hardware_loss import HardwareCost
from harmonic_nas.fusion.search_net import FusionSearchNet
from harmonic_nas.fusion.specs import op_spec
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader
from harmonic_nas.runtime import configure_threads

AUTHORS_S_PER_SAMPLE = {"2x1": 51.0 / 1050, "4x4": 190.0 / 1050}
GOAL_SPEEDUP = {"2x1": 20.0, "4x4": 10.0}
TAP_CHANNELS = [24, 40, 80, 24, 40, 80]  # image stages, then audio stages
TAPS = [("image", s) for s in range(3)] + [("audio", s) for s in range(3)]


def features(n: int, length: int, classes: int, seed: int) -> SplitFeatures:
    g = torch.Generator().manual_seed(seed)
    taps = [torch.randn(n, c, length, generator=g) for c in TAP_CHANNELS]
    return SplitFeatures(taps, torch.randint(0, classes, (n,), generator=g))


def lut(cfg: FusionConfig) -> LookupTable:
    header = LutHeader.for_this_host(device="bench", runtime="torch", method="synthetic", batch_size=1, threads=1,
                                     energy_source="estimated:synthetic")
    table = LookupTable(header)
    for i, name in enumerate(cfg.operators):
        table.add(op_spec(name, cfg.channels, cfg.length),
                  LutEntry(latency_ms=0.1 * (i + 1), latency_std_ms=0.0, energy_mj=0.2 * (i + 1), repeats=1))
    return table


def bench(macro: str, cfg: FusionConfig, train: SplitFeatures, val: SplitFeatures, epochs: int) -> dict:
    cells, nodes = (int(v) for v in macro.split("x"))
    torch.manual_seed(0)
    net = FusionSearchNet.for_search(TAPS, TAP_CHANNELS, cells, nodes, cfg, num_classes=10)
    cost = HardwareCost(lut(cfg), cfg.operators, cfg.channels, cfg.length)
    warm = SplitFeatures([t[: 4 * cfg.batch_size] for t in train.taps], train.targets[: 4 * cfg.batch_size])
    search(net, warm, val, cost, cfg.model_copy(update={"epochs": 1}), "multiclass", torch.Generator().manual_seed(0))
    history = search(net, train, val, cost, cfg.model_copy(update={"epochs": epochs}), "multiclass",
                     torch.Generator().manual_seed(1))
    seconds = min(r["seconds"] for r in history)
    per_sample = seconds / len(train)
    out = {
        "macro": macro,
        "epoch_s": round(seconds, 3),
        "ms_per_sample": round(1000 * per_sample, 4),
        "samples_per_s": round(len(train) / seconds, 1),
    }
    if macro in AUTHORS_S_PER_SAMPLE:
        speedup = AUTHORS_S_PER_SAMPLE[macro] / per_sample
        out.update(authors_ms_per_sample=round(1000 * AUTHORS_S_PER_SAMPLE[macro], 2),
                   speedup_per_sample=round(speedup, 1), goal_speedup=GOAL_SPEEDUP[macro],
                   meets_goal=speedup >= GOAL_SPEEDUP[macro])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--val", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per macro (the fastest is reported)")
    parser.add_argument("--channels", type=int, default=192)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=FusionConfig().batch_size)
    parser.add_argument("--macros", nargs="+", default=["2x1", "4x4"])
    args = parser.parse_args()
    configure_threads(args.threads)
    cfg = FusionConfig(channels=args.channels, length=args.length, batch_size=args.batch_size)
    train, val = features(args.samples, args.length, 10, 0), features(args.val, args.length, 10, 1)
    load_before = os.getloadavg()[0]
    results = [bench(macro, cfg, train, val, args.epochs) for macro in args.macros]
    print(json.dumps({
        "benchmark": "fusion_epoch",
        "channels": args.channels, "length": args.length, "batch_size": args.batch_size,
        "train_samples": args.samples, "val_samples": args.val, "threads": args.threads,
        "operators": cfg.operators, "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0], "cpus": os.cpu_count()},
        "results": results,
    }, indent=2))


if __name__ == "__main__":
    main()
