"""Energy estimated from a stated constant power, for machines without any energy meter."""

from __future__ import annotations

import time

from harmonic_nas.hardware.meters.base import Clock, EnergyMeter

# A server core's share of package TDP is about 3.5 W (e.g. 225 W / 64 cores), a desktop core's 6-10 W;
# 4 W per busy core is the stated default. It only scales latency: such "energy" ranks like latency, and it
# scales the very latency statistic the LUT stores (not the mean time over the metered interval, which
# made the estimate latency times measurement noise: up to 25x the latency under load).
DEFAULT_WATTS_PER_CORE = 4.0
# The PCIe slot limit, the floor of a discrete GPU's board power under load.
DEFAULT_GPU_WATTS = 75.0


class EstimatedEnergy(EnergyMeter):
    """Not a measurement: energy = ``watts`` x elapsed time; ``source`` is ``estimated:<model>@<watts>W``."""

    name = "estimated"

    def __init__(self, watts: float, model: str, clock: Clock = time.perf_counter) -> None:
        if watts <= 0:
            raise ValueError(f"EstimatedEnergy needs a positive power, found {watts} W")
        self.watts = watts
        self.model = model
        self.clock = clock
        self._start: float | None = None

    @classmethod
    def for_cpu(cls, threads: int = 1, watts_per_core: float = DEFAULT_WATTS_PER_CORE) -> EstimatedEnergy:
        """Package power of ``threads`` busy cores (``estimated:cpu-core-tdp@4W`` for one thread)."""
        return cls(threads * watts_per_core, model="cpu-core-tdp")

    @property
    def source(self) -> str:
        return f"estimated:{self.model}@{self.watts:g}W"

    def available(self) -> bool:
        return True

    def start(self) -> None:
        self._start = self.clock()

    def stop(self) -> float:
        if self._start is None:
            raise RuntimeError("EstimatedEnergy.stop() without start()")
        elapsed, self._start = self.clock() - self._start, None
        return self.watts * elapsed

    def per_call(self, joules: float, calls: int, latency_s: float) -> float:
        """The stated model: ``watts`` x the latency statistic (whatever was metered in between)."""
        return self.watts * latency_s
