"""Forward, input gradient and weight gradient of the supernet's most expensive depthwise layers, apart:
the weight gradient of oneDNN's depthwise kernel is what dominates a sandwich step on CPU. The LUT's timing
protocol (``hardware.timing.measure``: warm-up, interleaved rounds, gc off) on thread CPU time, medians;
each gradient is timed with the forward it needs (subtract the forward column). Prints JSON.

    python benchmarks/depthwise_grad.py [--threads 1] [--batch 128 32] [--repeats 10]
"""

from __future__ import annotations

import argparse

from benchjson import emit, machine

import torch
from torch import nn

from harmonic_nas.hardware.meters.estimated import EstimatedEnergy
from harmonic_nas.hardware.timing import TimingProtocol, measure

LAYERS = [(480, 4), (144, 14)]  # (channels, side): the deepest and the widest-map 7x7 layers of the demo's spaces


def layer_times(channels: int, side: int, kernel: int, batch: int, fmt: torch.memory_format, repeats: int) -> dict:
    conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels, bias=False).to(memory_format=fmt)
    x = torch.randn(batch, channels, side, side).to(memory_format=fmt).requires_grad_(True)
    grad = torch.randn_like(conv(x))
    protocol = TimingProtocol(warmup=2, repeats=repeats, rounds=min(repeats, 5), min_seconds=0.0, quantile=0.5)
    forward, input_grad, weight_grad = measure(
        [lambda: conv(x), lambda: torch.autograd.grad(conv(x), x, grad),
         lambda: torch.autograd.grad(conv(x), conv.weight, grad)],
        protocol, EstimatedEnergy.for_cpu(), clock="thread-cpu")
    return {"forward_ms": round(forward.latency_ms, 2), "forward_and_input_grad_ms": round(input_grad.latency_ms, 2),
            "forward_and_weight_grad_ms": round(weight_grad.latency_ms, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs="+", default=[128, 32])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = machine("depthwise_grad")
    rows = []
    for channels, side in LAYERS:
        for kernel in (7, 3):
            for batch in args.batch:
                for name, fmt in (("channels_last", torch.channels_last), ("contiguous", torch.contiguous_format)):
                    rows.append({"channels": channels, "side": side, "kernel": kernel, "batch": batch, "format": name,
                                 **layer_times(channels, side, kernel, batch, fmt, args.repeats)})
    result.update({"clock": "thread CPU time", "threads": args.threads, "rows": rows})
    emit(result, None)


if __name__ == "__main__":
    main()
