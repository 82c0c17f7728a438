"""NVIDIA GPU energy through NVML (the ``pynvml`` module of nvidia-ml-py), imported only when used."""

from __future__ import annotations

import time
from typing import Any

from harmonic_nas.hardware.meters.base import Clock, EnergyMeter, PowerSampler


class NvmlMeter(EnergyMeter):
    """GPU ``index``'s total-energy counter (Volta and newer), else its power sampled every ``interval`` s."""

    name = "nvml"

    def __init__(self, index: int = 0, interval: float = 0.02, clock: Clock = time.perf_counter) -> None:
        self.index = index
        self.interval = interval
        self.clock = clock
        self._nvml: Any = None
        self._device: Any = None
        self._counter_start: int | None = None
        self._sampler: PowerSampler | None = None

    def _open(self) -> tuple[Any, Any]:
        if self._device is None:
            import pynvml  # nvidia-ml-py: optional, absent on CPU-only machines

            pynvml.nvmlInit()
            self._device = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self._nvml = pynvml
        return self._nvml, self._device

    def available(self) -> bool:
        try:
            import pynvml
        except ImportError:
            return False
        try:
            self._open()
        except pynvml.NVMLError:
            return False
        return True

    def start(self) -> None:
        nvml, device = self._open()
        try:
            self._counter_start = nvml.nvmlDeviceGetTotalEnergyConsumption(device)  # mJ
        except nvml.NVMLError:  # not supported before Volta: sample power (mW) instead
            self._counter_start = None
            def watts() -> float:
                return nvml.nvmlDeviceGetPowerUsage(device) / 1000.0

            self._sampler = PowerSampler(watts, self.interval, self.clock)
            self._sampler.start()

    def stop(self) -> float:
        nvml, device = self._open()
        if self._counter_start is not None:
            joules = (nvml.nvmlDeviceGetTotalEnergyConsumption(device) - self._counter_start) / 1000.0
            self._counter_start = None
            return joules
        if self._sampler is None:
            raise RuntimeError("NvmlMeter.stop() without start()")
        sampler, self._sampler = self._sampler, None
        return sampler.stop()
