"""Intel/AMD RAPL package energy through the Linux powercap sysfs interface."""

from __future__ import annotations

import re
from pathlib import Path

from harmonic_nas.hardware.meters.base import EnergyMeter

POWERCAP = "sys/class/powercap"
_PACKAGE = re.compile(r"^intel-rapl:\d+$")  # packages only: sub-zones (core, uncore, dram) are parts or extras


class RaplMeter(EnergyMeter):
    """Sum of the package energy counters (``energy_uj``) of every CPU socket.

    The counters wrap at ``max_energy_range_uj``; one wrap between start and stop is undone (a counter
    of about 262 kJ wraps every few minutes at most, far longer than one layer's measurement). AMD CPUs
    appear under the same ``intel-rapl`` names. Since Linux 5.10 the counters are readable by root only.
    """

    name = "rapl"

    def __init__(self, root: str | Path = "/") -> None:
        self.root = Path(root)
        self._start: list[tuple[Path, int]] | None = None

    def _packages(self) -> list[Path]:
        base = self.root / POWERCAP
        return sorted(p for p in base.glob("intel-rapl:*") if _PACKAGE.match(p.name)) if base.is_dir() else []

    def available(self) -> bool:
        packages = self._packages()
        try:
            for package in packages:
                _read_int(package / "energy_uj")
                _read_int(package / "max_energy_range_uj")
        except (OSError, ValueError):
            return False
        return bool(packages)

    def start(self) -> None:
        self._start = [(package, _read_int(package / "energy_uj")) for package in self._packages()]

    def stop(self) -> float:
        if self._start is None:
            raise RuntimeError("RaplMeter.stop() without start()")
        microjoules = 0
        for package, before in self._start:
            after = _read_int(package / "energy_uj")
            if after < before:  # the counter wrapped around
                after += _read_int(package / "max_energy_range_uj")
            microjoules += after - before
        self._start = None
        return microjoules / 1e6


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())
