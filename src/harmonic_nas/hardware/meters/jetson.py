"""NVIDIA Jetson board power from its INA3221 monitors through sysfs, sampled and integrated."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harmonic_nas.hardware.meters.base import Clock, EnergyMeter, PowerSampler

DRIVERS = "sys/bus/i2c/drivers"
# Rails that carry the whole module's input: when one exists it is used alone, since the other rails
# are parts of it and adding them would count their power twice (TX2 and Orin NX, Nano, AGX Orin).
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")


@dataclass(frozen=True)
class Rail:
    name: str
    read_watts: Callable[[], float]


def find_rails(root: Path) -> list[Rail]:
    """Every labelled INA3221 channel under the old (``ina3221x``, iio) or new (``ina3221``, hwmon) driver.

    iio exposes ``in_power<i>_input`` in mW named by ``rail_name_<i>``; hwmon exposes ``in<i>_input`` in mV
    and ``curr<i>_input`` in mA named by ``in<i>_label``.
    """
    rails = []
    for iio in sorted((root / DRIVERS).glob("ina3221x/*/iio:device*")):
        for power in sorted(iio.glob("in_power*_input")):
            channel = power.name.removeprefix("in_power").removesuffix("_input")
            label = iio / f"rail_name_{channel}"
            if label.is_file():
                rails.append(Rail(label.read_text().strip(), lambda p=power: _number(p) / 1e3))
    for hwmon in sorted((root / DRIVERS).glob("ina3221/*/hwmon/hwmon*")):
        for label in sorted(hwmon.glob("in*_label")):
            channel = label.name.removeprefix("in").removesuffix("_label")
            volts, amps = hwmon / f"in{channel}_input", hwmon / f"curr{channel}_input"
            name = label.read_text().strip()
            if volts.is_file() and amps.is_file() and name != "NC":
                rails.append(Rail(name, lambda v=volts, a=amps: _number(v) * _number(a) / 1e6))
    return rails


class Ina3221Meter(EnergyMeter):
    """Sum of the chosen rails' power, sampled every ``interval`` seconds and integrated over time.

    ``rails`` picks rails by name; by default the module's input rail when there is one (``TOTAL_RAILS``),
    else all rails. The chosen names appear in ``source``.
    """

    name = "ina3221"

    def __init__(self, root: str | Path = "/", rails: tuple[str, ...] | None = None, interval: float = 0.005,
                 clock: Clock = time.perf_counter) -> None:
        self.root = Path(root)
        self.rails = rails
        self.interval = interval
        self.clock = clock
        self._sampler: PowerSampler | None = None

    def _chosen(self) -> list[Rail]:
        rails = find_rails(self.root)
        wanted = self.rails or next(((name,) for name in TOTAL_RAILS if any(r.name == name for r in rails)), None)
        return [r for r in rails if wanted is None or r.name in wanted]

    @property
    def source(self) -> str:
        return f"measured:{self.name}({'+'.join(r.name for r in self._chosen())})"

    def available(self) -> bool:
        try:
            rails = self._chosen()
            for rail in rails:
                rail.read_watts()
        except (OSError, ValueError):
            return False
        return bool(rails)

    def start(self) -> None:
        rails = self._chosen()
        self._sampler = PowerSampler(lambda: sum(r.read_watts() for r in rails), self.interval, self.clock)
        self._sampler.start()

    def stop(self) -> float:
        if self._sampler is None:
            raise RuntimeError("Ina3221Meter.stop() without start()")
        sampler, self._sampler = self._sampler, None
        return sampler.stop()


def _number(path: Path) -> float:
    return float(path.read_text().strip())
