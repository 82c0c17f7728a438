"""Batch-1 latency of an exported model on this machine, measured like the LUT it was predicted from:
the LUT's runtime (ONNX Runtime when the LUT's runtime is onnxruntime, torch eager otherwise), thread
count, batch size and timing protocol (``hardware.timing``: warm-up, interleaved rounds, a low quantile,
thread-CPU clock on one thread).

Why a measurement is taken again when the LUT calibration's reference model, timed in the same rounds, runs
more than ``STEADY`` slower than at calibration: this host's cores slow down by up to 2x for spells of ~20 s
while the guest is idle (a pure-Python loop on the thread-CPU clock slows as much, in every process at
once: benchmarks/host_drift.py). One measurement takes 1-2 s, so a spell takes all of its rounds and no low
quantile can see past it; measuring again, up to ``ATTEMPTS`` times after pauses that start at
``RETRY_PAUSE_S`` and double (2 + 4 + 8 + 16 s: spells outlast a fixed 3 s step), times the model on the
machine the LUT was profiled on, and the attempt whose reference ran fastest is kept (with how many attempts
it took). A reference running *faster* than at calibration is not waited for: interference only adds time,
so the calibration itself was measured in a slow spell and waiting cannot undo that (nor could spreading
the calibration's rounds over a minute: whole models also slow for minutes at a time, benchmarks/round_span.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from harmonic_nas.console import console
from harmonic_nas.config.schema import ONNX_RUNTIMES, ExperimentConfig, HardwareConfig
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.costing.profiler import ProfileSettings
from harmonic_nas.costing.validate import reference_model
from harmonic_nas.hardware.timing import TimingProtocol, configure_measurement, make_runner, measure
from harmonic_nas.model_manifest import STEADY, MeasuredLatency

ATTEMPTS = 5
RETRY_PAUSE_S = 2.0

_METHOD = re.compile(
    r"quantile (?P<q>[\d.e+-]+) of >= (?P<repeats>\d+) single-call \S+ timings and >= (?P<seconds>[\d.e+-]+) s "
    r"per item over (?P<rounds>\d+) interleaved rounds(?: starting over >= (?P<span>[\d.e+-]+) s)?"
    r"(?:, each after a (?P<settle>[\d.e+-]+) s pause)? "
    r"after (?P<warmup>\d+) warm-up calls"
)


@dataclass(frozen=True)
class Timing:
    """How a model was timed: what the LUT header says, or the config when there is no LUT."""

    runtime: str
    threads: int
    batch_size: int
    protocol: TimingProtocol
    device: str  # the LUT's device name (what its predictions describe)

    @classmethod
    def of(cls, lut: LookupTable | None, hardware: HardwareConfig) -> Timing:
        configured = TimingProtocol.configured(hardware)
        if lut is None:
            return cls(hardware.runtime, hardware.threads, hardware.batch_size, configured, hardware.device)
        h = lut.header
        return cls(h.runtime, h.threads, h.batch_size, protocol_of(h.method, configured), h.device)


def protocol_of(method: str, fallback: TimingProtocol) -> TimingProtocol:
    """The protocol a LUT header's ``method`` describes (TimingProtocol.describe), else ``fallback``. A method
    that names no pause (one thread, or a table from before the pause) takes ``fallback``'s: the pause only
    keeps other items' threads off the cores, it does not change what is measured."""
    match = _METHOD.search(method)
    if match is None:
        return fallback
    return TimingProtocol(warmup=int(match["warmup"]), repeats=int(match["repeats"]), rounds=int(match["rounds"]),
                          min_seconds=float(match["seconds"]), quantile=float(match["q"]),
                          settle_seconds=fallback.settle_seconds if match["settle"] is None else float(match["settle"]),
                          span_seconds=0.0 if match["span"] is None else float(match["span"]))


def measure_latency(
    net: nn.Module, example: Sequence[Tensor], timing: Timing, onnx_path: Path | None = None,
    names: Sequence[str] = (), reference: Reference | None = None, attempts: int = ATTEMPTS,
    pause_s: float = RETRY_PAUSE_S,
) -> MeasuredLatency:
    """Time ``net`` on one sample per modality (repeated to the LUT's batch size) on this CPU.

    With an onnxruntime or onnxruntime-int8 timing the model that runs is ``onnx_path`` (the exported file,
    float or INT8) when given, else ``net`` exported (and quantized) on the fly as the profiler does; with a
    torch LUT it is ``net`` in eager mode. The LUT calibration's ``reference`` model, when given, is timed in
    the same interleaved rounds, and the measurement taken again (up to ``attempts`` times, after pauses of
    ``pause_s``, doubling) while it runs more than ``STEADY`` slower than at calibration (the module docstring
    says why)."""
    from harmonic_nas.export.formats import onnx_feed, onnx_session

    device = torch.device("cpu")
    settings = ProfileSettings(device=device, device_name=timing.device, runtime=timing.runtime,
                               threads=timing.threads, batch_size=timing.batch_size, protocol=timing.protocol)
    previous = torch.get_num_threads()
    configure_measurement(timing.threads)
    try:
        batch = [t[:1].cpu().repeat(timing.batch_size, *([1] * (t.dim() - 1))) for t in example]
        if timing.runtime in ONNX_RUNTIMES and onnx_path is not None:
            session = onnx_session(onnx_path, timing.threads)
            feed = onnx_feed(session, names, batch)

            def runner() -> object:
                return session.run(None, feed)
        else:
            runner = make_runner(net.cpu().eval(), [t[:1] for t in batch], timing.runtime, device,
                                 timing.threads, timing.batch_size)
        runners = [runner]
        if reference is not None:
            runners.append(make_runner(reference.module, reference.inputs, timing.runtime, device, timing.threads,
                                       timing.batch_size))
        meter = settings.meter()
        kept = None  # (reference factor, result, reference's result) of the attempt on the fastest machine
        attempts = max(1, attempts)
        for attempt in range(1, attempts + 1):
            result, *again = measure(runners, timing.protocol, meter, settings.clock)
            factor = again[0].latency_ms / reference.calibration_ms if again and reference else 1.0
            if kept is None or factor < kept[0]:
                kept = (factor, result, again)
            if factor <= 1 + STEADY or attempt == attempts:
                break
            pause = pause_s * 2 ** (attempt - 1)
            console.log(f"reference model at {factor:.2f}x its calibration time: the machine is slower than when "
                        f"the LUT was fitted, measuring again in {pause:g} s ({attempt + 1} of {attempts})")
            time.sleep(pause)
        _, result, again = kept
    finally:
        torch.set_num_threads(previous)
    return MeasuredLatency(
        runtime=timing.runtime, threads=timing.threads, batch_size=timing.batch_size,
        latency_ms=result.latency_ms, latency_std_ms=result.latency_std_ms, energy_mj=result.energy_mj,
        energy_source=meter.source, repeats=result.repeats, lut_device=timing.device,
        method=timing.protocol.describe(settings.clock),
        reference_ms=again[0].latency_ms if again else None,
        reference_calibration_ms=reference.calibration_ms if reference is not None else None,
        attempts=attempt,
    )


@dataclass(frozen=True)
class Reference:
    """The LUT calibration's reference network (random weights) and when it was fitted, its latency."""

    module: nn.Module
    inputs: tuple[Tensor, ...]
    calibration_ms: float

    @classmethod
    def of(cls, lut: LookupTable | None, cfg: ExperimentConfig, input_shapes: Mapping[str, tuple[int, ...]],
           num_classes: int) -> Reference | None:
        """None when the LUT has no calibration reference (no LUT, an uncalibrated or an older one)."""
        if lut is None or lut.calibration is None or lut.calibration.reference is None:
            return None
        stored = lut.calibration.reference
        model = reference_model(cfg, input_shapes, num_classes, stored)
        return cls(model.module, model.inputs, stored.latency_ms)
