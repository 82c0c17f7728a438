"""The energy-meter interface, and power sampling for meters that only read instantaneous power."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

Clock = Callable[[], float]


class EnergyMeter(ABC):
    """Energy used by the device between ``start()`` and ``stop()``, in joules.

    The profiler divides by the number of inferences run in between; ``source`` goes into the LUT
    header so that every table says whether its energy was measured (and how) or estimated.
    """

    name: str

    @property
    def source(self) -> str:
        return f"measured:{self.name}"

    @abstractmethod
    def available(self) -> bool:
        """Whether this meter can measure on this machine (hardware present and readable)."""

    @abstractmethod
    def start(self) -> None:
        """Begin a measurement."""

    @abstractmethod
    def stop(self) -> float:
        """End the measurement begun by ``start()``; joules used in between."""

    def per_call(self, joules: float, calls: int, latency_s: float) -> float:
        """Joules of one call given ``joules`` measured over ``calls`` calls and the latency statistic the
        LUT stores (``latency_s``): the measured mean."""
        return joules / calls


class PowerSampler:
    """Integrates instantaneous power read every ``interval`` seconds by a background thread.

    Power rails and older GPUs expose watts, not an energy counter; the trapezoid rule over samples
    taken at start, during and at stop turns them into joules.
    """

    def __init__(self, read_watts: Callable[[], float], interval: float, clock: Clock = time.perf_counter) -> None:
        self.read_watts = read_watts
        self.interval = interval
        self.clock = clock
        self._samples: list[tuple[float, float]] = []
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._samples = []
        self._done.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="power-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> float:
        if self._thread is None:
            raise RuntimeError("PowerSampler.stop() without start()")
        self._done.set()
        self._thread.join()
        self._thread = None
        self._sample()
        samples = self._samples
        return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(samples, samples[1:]))

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        self._samples.append((self.clock(), self.read_watts()))
