"""Timing one callable the way a deployment runs it: runners for torch eager and ONNX Runtime, and one
measurement protocol (warm-up, interleaved rounds, a low quantile) shared by single layers and whole models, so
that the table and its validation measure alike.

Why a CPU-time clock on one CPU thread: the layer runs on the calling thread, so its CPU time equals the
wall time of an undisturbed run, while excluding the time other processes hold the core (on a busy
2-core machine whole-model wall times came out up to 3x long and the calibration fit collapsed). With
several threads or a GPU the work happens elsewhere, so those use the wall clock.

Why interleave: on a shared or thermally throttled machine the speed drifts over seconds; timing every
item in each of several rounds spreads that drift over all items instead of biasing whichever ran
during a slow spell. Why a low quantile (the 10th percentile) rather than the median: interference
(preemption, another process thrashing the shared caches) only ever adds time, so the fast calls are the
undisturbed ones. On this shared 2-core machine, under the same load, tables and whole models summarised
by their medians predicted 34-98 % of 50 models within +-10 % from run to run, by the 10th percentile
98-100 %; on a quiet machine the two nearly coincide.

Why a pause before each item's calls on the wall clock (``settle_seconds``): a multi-threaded item's thread
pool (each ONNX Runtime session has its own) spin-waits for a while after a call, so the next item, timed
at once, shares the cores with the previous item's spinning threads. Measured twice, 50 whole models on 2
threads agreed within +-10 % for 72-78 % of the models without a pause (ONNX Runtime, INT8), for all 50
with a 50 ms pause (BENCHMARKS.md, LUT fidelity). A deployment runs one model, whose own pool spins as it
would here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import io
import math
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.config.schema import INT8_RUNTIME, ONNX_RUNTIMES, RUNTIMES, HardwareConfig
from harmonic_nas.errors import UserError
from harmonic_nas.hardware.meters import EnergyMeter
from harmonic_nas.runtime import configure_threads

Runner = Callable[[], object]
CLOCKS: dict[str, Callable[[], float]] = {"thread-cpu": time.thread_time, "wall": time.perf_counter}
ONNX_OPSET = 17
# glibc mallopt parameters (malloc.h): keep freed memory instead of returning it to the OS, which made
# fresh inference processes 2x slower here (the MALLOC_MMAP_MAX_ / MALLOC_TRIM_THRESHOLD_ settings).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


@dataclass(frozen=True)
class TimingProtocol:
    """How one item is timed: ``warmup`` untimed calls, then ``rounds`` interleaved rounds that together
    time at least ``repeats`` calls and at least ``min_seconds`` (short layers get many more calls, which
    is where their statistics need them); each call is timed on its own and the item's latency is the
    ``quantile`` of those times. On the wall clock each item's calls in a round follow a pause of
    ``settle_seconds`` (the module docstring says why; the thread-CPU clock of one thread needs none). With
    ``span_seconds`` the rounds' starts are spread evenly over at least that much wall time (a measurement
    whose rounds take that long anyway waits for nothing): an experiment's knob, 0 everywhere else, since
    spreading a calibration's rounds over 30 or 60 s did not keep this host's slow periods out of it
    (benchmarks/round_span.py, BENCHMARKS.md)."""

    warmup: int = 10
    repeats: int = 50
    rounds: int = 5
    min_seconds: float = 0.4
    quantile: float = 0.1
    settle_seconds: float = 0.05
    span_seconds: float = 0.0

    @classmethod
    def configured(cls, hardware: HardwareConfig, **changes: Any) -> TimingProtocol:
        """The protocol of a config's ``hardware`` section (its warm-up and repeats), with ``changes``."""
        return cls(warmup=hardware.warmup, repeats=hardware.repeats, **changes)

    def __post_init__(self) -> None:
        counts_ok = self.warmup >= 0 and self.repeats >= 1 and self.rounds >= 1
        times_ok = self.min_seconds >= 0 and self.settle_seconds >= 0 and self.span_seconds >= 0
        if not counts_ok or not times_ok or not 0 <= self.quantile <= 1:
            raise ValueError(f"invalid timing protocol {self}")

    def settle(self, clock: str) -> float:
        """The pause before each item's calls in a round under ``clock``."""
        return self.settle_seconds if clock == "wall" else 0.0

    def describe(self, clock: str) -> str:
        """The header's ``method``: enough to reproduce the numbers."""
        pause = f", each after a {self.settle(clock):g} s pause" if self.settle(clock) else ""
        span = f" starting over >= {self.span_seconds:g} s" if self.span_seconds else ""
        return (
            f"quantile {self.quantile:g} of >= {self.repeats} single-call {clock} timings "
            f"and >= {self.min_seconds:g} s per item "
            f"over {self.rounds} interleaved rounds{span}{pause} after {self.warmup} warm-up calls; spread = 1.4826 x MAD; "
            "eval mode, denormals flushed, gc off while timing"
        )

    def round_start(self, k: int) -> float:
        """Seconds after the first round's start before which round ``k`` must not start."""
        return self.span_seconds * k / (self.rounds - 1) if self.rounds > 1 else 0.0

    def calls_per_round(self, seconds_per_call: float) -> int:
        """Calls per round for an item whose warm-up took ``seconds_per_call`` per call."""
        by_count = math.ceil(self.repeats / self.rounds)
        by_time = math.ceil(self.min_seconds / self.rounds / max(seconds_per_call, 1e-7))
        return max(by_count, min(by_time, 100_000))


@dataclass(frozen=True)
class Measurement:
    """One item at the measured batch size: latency per call (the protocol's quantile), spread, mean energy per call."""

    latency_ms: float
    latency_std_ms: float
    energy_mj: float
    repeats: int


def clock_for(device: torch.device, threads: int) -> str:
    """``thread-cpu`` for one CPU thread, else ``wall`` (see the module docstring)."""
    return "thread-cpu" if device.type == "cpu" and threads == 1 else "wall"


def configure_measurement(threads: int) -> None:
    """Pin the thread count, flush denormals, and keep glibc from returning memory to the OS."""
    configure_threads(threads)
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)


def _batched(inputs: Sequence[Tensor], batch_size: int) -> tuple[Tensor, ...]:
    return tuple(t.repeat(batch_size, *([1] * (t.dim() - 1))) if batch_size > 1 else t for t in inputs)


def make_runner(
    module: nn.Module, inputs: Sequence[Tensor], runtime: str, device: torch.device, threads: int, batch_size: int = 1,
    *, layer: bool = False,
) -> Runner:
    """A no-argument callable running ``module`` (eval mode) once on ``inputs`` repeated to ``batch_size``.

    torch: eager under inference_mode (synchronised on CUDA); onnxruntime: the module exported to ONNX
    (opset 17) in a session with ``threads`` intra-op threads and denormals as zero; onnxruntime-int8: that
    ONNX model quantized to INT8 first (``hardware.quantize``), and when ``module`` is one ``layer`` of a
    model (the profiler's LUT entries), run as inside a whole INT8 model: uint8 in, uint8 out.
    """
    check_runtime(runtime)
    module = module.eval()
    batch = _batched(inputs, batch_size)
    if runtime == "torch":
        module = module.to(device)
        batch = tuple(t.to(device) for t in batch)
        sync = torch.cuda.synchronize if device.type == "cuda" else None

        def run() -> object:
            with torch.inference_mode():
                out = module(*batch)
            if sync is not None:
                sync(device)
            return out

        return run
    if runtime == INT8_RUNTIME:
        from harmonic_nas.hardware.quantize import int8_runner

        return int8_runner(module, batch, threads, inside_model=layer)
    return _onnx_runner(module, batch, device, threads)


def check_runtime(runtime: str) -> None:
    """Fail early, in one line, on an unknown runtime or a missing optional dependency."""
    if runtime not in RUNTIMES:
        raise UserError(f"unknown runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime in ONNX_RUNTIMES:
        try:
            import onnx  # noqa: F401  (the exporter needs it)
            import onnxruntime  # noqa: F401
        except ImportError:
            raise UserError(
                f"runtime {runtime} needs onnx and onnxruntime: pip install 'harmonic-nas[onnx]'"
            ) from None


def ort_options(threads: int) -> Any:
    """ONNX Runtime session options as every measurement uses them: ``threads`` intra-op threads,
    sequential execution, all graph optimisations, denormals flushed to zero."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    return options


def onnx_bytes(module: nn.Module, batch: Sequence[Tensor], names: Sequence[str]) -> bytes:
    """``module`` (on the CPU) as an ONNX model (opset 17, inputs named ``names``) in memory."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
        torch.onnx.export(module.cpu(), tuple(batch), buffer, dynamo=False, opset_version=ONNX_OPSET,
                          input_names=list(names))
    return buffer.getvalue()


def session_runner(model: bytes, arrays: dict[str, np.ndarray], threads: int, providers: Sequence[str]) -> Runner:
    """A runner of the ONNX ``model`` in a session set up by ``ort_options``, fed the graph's inputs of
    ``arrays`` (the exporter drops unused inputs)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, ort_options(threads), providers=list(providers))
    feed = {i.name: arrays[i.name] for i in session.get_inputs()}

    def run() -> object:
        return session.run(None, feed)

    return run


def _onnx_runner(module: nn.Module, batch: tuple[Tensor, ...], device: torch.device, threads: int) -> Runner:
    names = [f"input{i}" for i in range(len(batch))]
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    return session_runner(onnx_bytes(module, batch, names), dict(zip(names, (t.numpy() for t in batch))), threads,
                          providers)


def measure(
    runners: Sequence[Runner],
    protocol: TimingProtocol,
    meter: EnergyMeter,
    clock: str = "wall",
    on_round: Callable[[], object] | None = None,
) -> list[Measurement]:
    """Time every runner with ``protocol`` and ``clock``, interleaved round by round (``on_round`` is
    called after each); energy per call from ``meter``."""
    calls: list[int] = []
    for run in runners:
        start = time.perf_counter()
        run()  # first call: lazy initialisation, never representative; the speed estimate if no warm-up
        per_call = time.perf_counter() - start
        if protocol.warmup:
            start = time.perf_counter()
            for _ in range(protocol.warmup):
                run()
            per_call = (time.perf_counter() - start) / protocol.warmup
        calls.append(protocol.calls_per_round(per_call))
    samples: list[list[float]] = [[] for _ in runners]
    joules = [0.0] * len(runners)
    now = CLOCKS[clock]
    settle = protocol.settle(clock)
    gc.collect()
    gc.disable()
    try:
        first = time.perf_counter()
        for k in range(protocol.rounds):
            wait = first + protocol.round_start(k) - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            for i, run in enumerate(runners):
                if settle:
                    time.sleep(settle)
                times = samples[i]
                meter.start()
                for _ in range(calls[i]):
                    t0 = now()
                    run()
                    times.append(now() - t0)
                joules[i] += meter.stop()
            if on_round is not None:
                on_round()
    finally:
        gc.enable()
    return [_summarise(times, energy, protocol.quantile, meter) for times, energy in zip(samples, joules)]


def _summarise(seconds: list[float], joules: float, quantile: float, meter: EnergyMeter) -> Measurement:
    """The quantile as latency, 1.4826 x the median absolute deviation as spread, the meter's energy per
    call (a measured mean, or an estimate from the latency quantile)."""
    median = statistics.median(seconds)
    mad = statistics.median(abs(s - median) for s in seconds)
    latency = float(np.quantile(seconds, quantile))
    return Measurement(
        latency_ms=latency * 1e3,
        latency_std_ms=1.4826 * mad * 1e3,
        energy_mj=meter.per_call(joules, len(seconds), latency) * 1e3,
        repeats=len(seconds),
    )
