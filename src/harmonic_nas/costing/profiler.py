"""Profiling: measure every layer spec once on this device and write the LUT.

All layers still to measure form one interleaved group (see timing.py): a slow spell of the machine lasting
seconds then touches one of each layer's rounds, which the low quantile drops, instead of every round of a
small group. The thread-CPU clock does not escape such spells (the host slows the core itself:
benchmarks/host_drift.py). Two tables of the demo space measured A B A B agreed within +-10 % for 80 % of
the layers in groups of 12 and 98 % in one group (2-thread ONNX Runtime), 96-100 % (worst layer 1.58x
apart) and 100 % (worst 1.05x) on 1 thread with torch (BENCHMARKS.md, LUT fidelity). The table is written
when the group is done; a rerun skips every key already written, and a killed profile starts over (about a
minute for the demo space). ``group_size`` measures and flushes smaller groups when resuming matters more."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from harmonic_nas.console import make_progress
from harmonic_nas.errors import UserError
from harmonic_nas.costing.catalog import build_layer
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader
from harmonic_nas.hardware.lut_writer import LutWriter
from harmonic_nas.hardware.meters import EnergyMeter, EstimatedEnergy, detect_meter
from harmonic_nas.hardware.int8_recipe import layer_recipe
from harmonic_nas.hardware.specs import LayerSpec, lut_key
from harmonic_nas.hardware.timing import CLOCKS, Measurement, TimingProtocol, clock_for, make_runner, measure

LayerBuilder = Callable[[LayerSpec], tuple[nn.Module, tuple[Tensor, ...]]]


@dataclass(frozen=True)
class ProfileSettings:
    """Where and how to measure; everything but ``device`` and ``protocol`` goes into the LUT header."""

    device: torch.device
    device_name: str
    runtime: str = "torch"
    threads: int = 1
    batch_size: int = 1
    protocol: TimingProtocol = TimingProtocol()

    @property
    def clock(self) -> str:
        return clock_for(self.device, self.threads)

    def meter(self, watts: float | None = None) -> EnergyMeter:
        """The device's best energy meter; an estimate integrates power over the same clock as latency."""
        meter = detect_meter(str(self.device), threads=self.threads, watts=watts)
        if isinstance(meter, EstimatedEnergy):
            meter.clock = CLOCKS[self.clock]
        return meter

    def header(self, meter: EnergyMeter) -> LutHeader:
        return LutHeader.for_this_host(
            device=self.device_name,
            runtime=self.runtime,
            method=self.protocol.describe(self.clock),
            batch_size=self.batch_size,
            threads=self.threads,
            energy_source=meter.source,
            layer_recipe=layer_recipe(self.runtime),  # INT8: what was timed, the layer quantized and cut
        )


def to_entry(measurement: Measurement, float_ops: tuple[str, ...] | None = None) -> LutEntry:
    return LutEntry(
        latency_ms=measurement.latency_ms,
        latency_std_ms=measurement.latency_std_ms,
        energy_mj=measurement.energy_mj,
        repeats=measurement.repeats,
        float_ops=float_ops,
    )


def profile(specs: Iterable[LayerSpec], out: str | Path, settings: ProfileSettings, meter: EnergyMeter, *,
            group_size: int | None = None, build: LayerBuilder = build_layer) -> LookupTable:
    """Measure every spec not yet in the LUT at ``out`` (created or resumed) and return the table; layers
    are built by ``build`` and measured and flushed ``group_size`` at a time (default: all of them in one
    interleaved group; the module docstring says why)."""
    unique = list(dict.fromkeys(specs))
    group_size = group_size or max(len(unique), 1)
    with LutWriter(out, settings.header(meter), every=group_size) as writer:
        todo = [spec for spec in unique if spec not in writer]
        with make_progress("step") as bar:
            task = bar.add_task("profiling", total=len(unique), completed=len(unique) - len(todo), step="-")
            for start in range(0, len(todo), group_size):
                group = todo[start : start + group_size]
                bar.update(task, step=f"building {len(group)} layers")
                rounds = iter(range(1, settings.protocol.rounds + 1))

                def next_round() -> None:  # the count moves when the group is done: say where its rounds are
                    bar.update(task, step=f"round {next(rounds)}/{settings.protocol.rounds} done")

                for spec, entry in zip(group, _measure_group(group, settings, meter, build, next_round)):
                    writer.add(spec, entry)
                writer.flush()
                bar.advance(task, len(group))
        return writer.table


def _measure_group(group: Sequence[LayerSpec], settings: ProfileSettings, meter: EnergyMeter,
                   build: LayerBuilder, on_round: Callable[[], object] | None = None) -> list[LutEntry]:
    runners = []
    for spec in group:
        module, inputs = build(spec)
        try:
            runners.append(
                make_runner(module, inputs, settings.runtime, settings.device, settings.threads, settings.batch_size,
                            layer=True)
            )
        except UserError as exc:  # e.g. a layer ORT cannot quantize: one line naming it
            raise UserError(f"layer {lut_key(spec)}: {exc}") from None
        except Exception as exc:  # name the layer: an export or build failure is otherwise anonymous
            raise RuntimeError(f"cannot run layer {lut_key(spec)} with {settings.runtime}: {exc}") from exc
    measured = measure(runners, settings.protocol, meter, settings.clock, on_round)
    # an INT8 runner (hardware.quantize.Int8Runner) says which ops of its layer ran in float
    return [to_entry(m, getattr(run, "float_ops", None)) for m, run in zip(measured, runners)]
