"""The fusion search step per train sample, two ways side by side in one run (same data shapes, same
threads, A and B alternated, process CPU time):

A. ``cached``: what stage 2 does, the search step on backbone features computed once (pooled taps);
B. ``backbones``: the shape of the authors' pipeline, the backbones (the max subnets of the demo's two
   3-stage MobileNetV3 spaces, 1x28x28 and 1x64x64 inputs) run forward and backward at every step, the
   fusion search step on their fresh taps.

A / B is the gain of computing features once, per step; it grows with the epochs because B pays the
backbones every epoch and A once. Prints JSON. The comparison with the authors' own code is in
BENCHMARKS.md (measured side by side with their ``train_darts_model``; no constant of theirs is used here).

    python benchmarks/fusion_epoch.py [--threads 1] [--samples 1024] [--rounds 3] [--macros 2x1 4x4]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

from benchjson import emit, machine

import torch
from torch import Tensor, nn

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config.schema import FusionConfig, MBV3Space
from harmonic_nas.fusion.darts import search
from harmonic_nas.fusion.features import SplitFeatures
from harmonic_nas.fusion.hardware_loss import HardwareCost
from harmonic_nas.fusion.projection import pool_to_sequence
from harmonic_nas.fusion.search_net import FusionSearchNet
from harmonic_nas.fusion.specs import op_spec
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader
from harmonic_nas.runtime import configure_threads

STAGES = [{"width": 24, "stride": 2}, {"width": 40, "stride": 2, "se": True},
          {"width": 80, "stride": 2, "se": True, "act": "hswish"}]
INPUTS = {"image": ((1, 28, 28), 1), "audio": ((1, 64, 64), 2)}  # shape, stem stride (as configs/demo.yaml)
TAP_CHANNELS = [24, 40, 80, 24, 40, 80]  # image stages, then audio stages
TAPS = [("image", s) for s in range(3)] + [("audio", s) for s in range(3)]


def lut(cfg: FusionConfig) -> LookupTable:
    header = LutHeader.for_this_host(device="bench", runtime="torch", method="synthetic", batch_size=1, threads=1,
                                     energy_source="estimated:synthetic")
    table = LookupTable(header)
    for i, name in enumerate(cfg.operators):
        table.add(op_spec(name, cfg.channels, cfg.length),
                  LutEntry(latency_ms=0.1 * (i + 1), latency_std_ms=0.0, energy_mj=0.2 * (i + 1), repeats=1))
    return table


class WithBackbones(nn.Module):
    """Raw inputs -> trainable backbones -> pooled taps -> the fusion search network (pipeline B)."""

    def __init__(self, fusion: FusionSearchNet, length: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.backbones = nn.ModuleDict()
        for m, (shape, stride) in INPUTS.items():
            supernet = build_supernet(MBV3Space(stages=STAGES, stem_stride=stride), shape, 10)
            # channels_last, as the supernet trainer runs them (2-4x faster on CPU)
            self.backbones[m] = supernet.extract(supernet.space.max()).to(memory_format=torch.channels_last)
        self.fusion, self.length = fusion, length

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        taps = [pool_to_sequence(t, self.length) for m, x in zip(self.backbones, inputs)
                for t in self.backbones[m](x.contiguous(memory_format=torch.channels_last)).taps]
        return self.fusion(taps)

    # what darts.search asks of the network it searches
    def arch_parameters(self) -> list[nn.Parameter]:
        return self.fusion.arch_parameters()

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def op_probs(self) -> Tensor:
        return self.fusion.op_probs()

    @property
    def gamma(self) -> nn.Parameter:
        return self.fusion.gamma


def raw_split(n: int, seed: int) -> SplitFeatures:
    g = torch.Generator().manual_seed(seed)
    return SplitFeatures([torch.randn(n, *shape, generator=g) for shape, _ in INPUTS.values()],
                         torch.randint(0, 10, (n,), generator=g))


def feature_split(n: int, length: int, seed: int) -> SplitFeatures:
    g = torch.Generator().manual_seed(seed)
    return SplitFeatures([torch.randn(n, c, length, generator=g) for c in TAP_CHANNELS],
                         torch.randint(0, 10, (n,), generator=g))


def cpu_ms_per_sample(net: nn.Module, train: SplitFeatures, val: SplitFeatures, cfg: FusionConfig,
                      cost: HardwareCost) -> float:
    """Process CPU time of one search epoch (architecture + weight step per batch, and the end-of-epoch
    validation on ``val``, one batch here) per train sample."""
    cfg = cfg.model_copy(update={"epochs": 1})
    start = time.process_time()
    search(net, train, val, cost, cfg, "multiclass", torch.Generator().manual_seed(1))  # type: ignore[arg-type]
    elapsed = time.process_time() - start
    return 1000 * elapsed / len(train)


def bench(macro: str, cfg: FusionConfig, samples: int, rounds: int) -> dict:
    cells, nodes = (int(v) for v in macro.split("x"))
    cost = HardwareCost(lut(cfg), cfg.operators, cfg.channels, cfg.length)
    torch.manual_seed(0)
    cached = FusionSearchNet.for_search(TAPS, TAP_CHANNELS, cells, nodes, cfg, num_classes=10)
    torch.manual_seed(0)
    pipeline = WithBackbones(FusionSearchNet.for_search(TAPS, TAP_CHANNELS, cells, nodes, cfg, num_classes=10),
                             cfg.length)
    feats, feats_val = feature_split(samples, cfg.length, 0), feature_split(cfg.batch_size, cfg.length, 1)
    raw, raw_val = raw_split(samples, 0), raw_split(cfg.batch_size, 1)
    # warm-up of both (allocator, oneDNN primitives) on a few batches
    few = 2 * cfg.batch_size
    cpu_ms_per_sample(cached, SplitFeatures([t[:few] for t in feats.taps], feats.targets[:few]), feats_val, cfg, cost)
    cpu_ms_per_sample(pipeline, SplitFeatures([t[:few] for t in raw.taps], raw.targets[:few]), raw_val, cfg, cost)
    a, b = [], []
    for _ in range(rounds):  # A and B alternated
        a.append(cpu_ms_per_sample(cached, feats, feats_val, cfg, cost))
        b.append(cpu_ms_per_sample(pipeline, raw, raw_val, cfg, cost))
    return {"macro": macro, "cached_ms_per_sample": [round(v, 3) for v in a],
            "backbones_ms_per_sample": [round(v, 3) for v in b],
            "median_ratio_backbones_over_cached": round(statistics.median(b) / statistics.median(a), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=1024, help="train samples per timed epoch")
    parser.add_argument("--rounds", type=int, default=3, help="A/B alternations (medians are compared)")
    parser.add_argument("--channels", type=int, default=192)
    parser.add_argument("--length", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=FusionConfig().batch_size)
    parser.add_argument("--macros", nargs="+", default=["2x1", "4x4"])
    args = parser.parse_args()
    configure_threads(args.threads)
    cfg = FusionConfig(channels=args.channels, length=args.length, batch_size=args.batch_size)
    report = machine("fusion_epoch")
    results = [bench(macro, cfg, args.samples, args.rounds) for macro in args.macros]
    report.update({
        "clock": "process CPU time", "channels": args.channels, "length": args.length, "batch_size": args.batch_size,
        "train_samples": args.samples, "threads": args.threads, "operators": cfg.operators, "results": results,
    })
    emit(report, None)


if __name__ == "__main__":
    main()
