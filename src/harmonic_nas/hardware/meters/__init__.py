"""Pluggable energy meters (RAPL, NVML, Jetson INA3221, or a stated estimate) and picking the best one."""

from __future__ import annotations

from pathlib import Path

from harmonic_nas.errors import UserError
from harmonic_nas.hardware.meters.base import EnergyMeter, PowerSampler
from harmonic_nas.hardware.meters.estimated import DEFAULT_GPU_WATTS, DEFAULT_WATTS_PER_CORE, EstimatedEnergy
from harmonic_nas.hardware.meters.jetson import Ina3221Meter
from harmonic_nas.hardware.meters.nvml import NvmlMeter
from harmonic_nas.hardware.meters.rapl import RaplMeter

__all__ = [
    "DEFAULT_GPU_WATTS",
    "DEFAULT_WATTS_PER_CORE",
    "EnergyMeter",
    "EstimatedEnergy",
    "Ina3221Meter",
    "NvmlMeter",
    "PowerSampler",
    "RaplMeter",
    "detect_meter",
]


def detect_meter(device: str, root: str | Path = "/", threads: int = 1, watts: float | None = None) -> EnergyMeter:
    """The best meter for a torch ``device`` (cpu, cuda, cuda:N), falling back to a stated estimate.

    cpu: RAPL, else Jetson rails; cuda: NVML, else Jetson rails (a Jetson GPU has no NVML energy).
    Without a meter: ``watts`` if given, else 4 W per thread on CPU or 75 W on a GPU (see estimated.py).
    """
    kind, _, index = device.partition(":")
    if kind == "cpu" and not index:
        candidates: list[EnergyMeter] = [RaplMeter(root), Ina3221Meter(root)]
    elif kind == "cuda" and (not index or index.isdigit()):
        candidates = [NvmlMeter(int(index or 0)), Ina3221Meter(root)]
    else:
        raise UserError(f"unknown device {device!r} for energy measurement: expected cpu, cuda or cuda:N")
    for meter in candidates:
        if meter.available():
            return meter
    if watts is not None:
        return EstimatedEnergy(watts, model="stated-power")
    if kind == "cpu":
        return EstimatedEnergy.for_cpu(threads)
    return EstimatedEnergy(DEFAULT_GPU_WATTS, model="gpu-board-power")
