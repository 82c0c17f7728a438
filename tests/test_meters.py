"""Energy meters against fake sysfs trees and a fake NVML module, and the choice of meter."""

from __future__ import annotations

import os
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from harmonic_nas.errors import UserError
from harmonic_nas.hardware.meters import (
    EstimatedEnergy,
    Ina3221Meter,
    NvmlMeter,
    RaplMeter,
    detect_meter,
)

FOREVER = 1e6  # sampling interval that keeps the sampler thread idle, so a fake clock decides the result


def write(path: Path, value: object) -> None:
    """Replace a sysfs file atomically, as the kernel does: a sampler thread never reads half a number."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def ticks(*values: float) -> Iterator[float]:
    return iter(values).__next__  # type: ignore[return-value]


# ---- RAPL --------------------------------------------------------------------------------------------

RAPL = "sys/class/powercap"


def fake_rapl(root: Path, packages: dict[int, int], max_uj: int = 262_143_328_850) -> None:
    for index, energy in packages.items():
        write(root / RAPL / f"intel-rapl:{index}" / "energy_uj", energy)
        write(root / RAPL / f"intel-rapl:{index}" / "max_energy_range_uj", max_uj)
        write(root / RAPL / f"intel-rapl:{index}:0" / "energy_uj", 5)  # core sub-zone: part of the package
    write(root / RAPL / "intel-rapl-mmio:0" / "energy_uj", 7)  # duplicate MMIO interface: ignored


def test_rapl_sums_packages_across_a_wrap_around(tmp_path: Path) -> None:
    fake_rapl(tmp_path, {0: 1_000_000, 1: 9_999_000}, max_uj=10_000_000)
    meter = RaplMeter(tmp_path)
    assert meter.available() and meter.source == "measured:rapl"
    meter.start()
    write(tmp_path / RAPL / "intel-rapl:0" / "energy_uj", 2_500_000)  # 1.5 J
    write(tmp_path / RAPL / "intel-rapl:0:0" / "energy_uj", 999_999)
    write(tmp_path / RAPL / "intel-rapl:1" / "energy_uj", 499_000)  # wrapped: 1_000 + 499_000 uJ
    assert meter.stop() == pytest.approx(1.5 + 0.5)


def test_rapl_unavailable_without_readable_counters(tmp_path: Path) -> None:
    assert not RaplMeter(tmp_path).available()
    fake_rapl(tmp_path, {0: 10})
    write(tmp_path / RAPL / "intel-rapl:0" / "energy_uj", "")
    assert not RaplMeter(tmp_path).available()
    with pytest.raises(RuntimeError):
        RaplMeter(tmp_path).stop()


# ---- Jetson INA3221 ------------------------------------------------------------------------------------

IIO = "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1"
HWMON = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"


def fake_iio(root: Path, watts_in: float) -> None:
    write(root / IIO / "rail_name_0", "VDD_IN")
    write(root / IIO / "in_power0_input", int(watts_in * 1000))
    write(root / IIO / "rail_name_1", "VDD_SYS_CPU")
    write(root / IIO / "in_power1_input", 1000)


def fake_hwmon(root: Path) -> None:
    for channel, (label, millivolts, milliamps) in enumerate(
        [("VDD_GPU_SOC", 5000, 800), ("VDD_CPU_CV", 5000, 200), ("NC", 0, 0)], start=1
    ):
        write(root / HWMON / f"in{channel}_label", label)
        write(root / HWMON / f"in{channel}_input", millivolts)
        write(root / HWMON / f"curr{channel}_input", milliamps)


def test_jetson_iio_uses_the_input_rail_and_integrates(tmp_path: Path) -> None:
    fake_iio(tmp_path, watts_in=5.0)
    meter = Ina3221Meter(tmp_path, interval=FOREVER, clock=ticks(0.0, 2.0))
    assert meter.available() and meter.source == "measured:ina3221(VDD_IN)"
    meter.start()
    write(tmp_path / IIO / "in_power0_input", 7000)
    assert meter.stop() == pytest.approx((5.0 + 7.0) / 2 * 2.0)


def test_jetson_hwmon_multiplies_volts_and_amps_and_sums_rails(tmp_path: Path) -> None:
    fake_hwmon(tmp_path)
    meter = Ina3221Meter(tmp_path, interval=FOREVER, clock=ticks(10.0, 10.5))
    assert meter.source == "measured:ina3221(VDD_GPU_SOC+VDD_CPU_CV)"
    meter.start()
    assert meter.stop() == pytest.approx((4.0 + 1.0) * 0.5)
    chosen = Ina3221Meter(tmp_path, rails=("VDD_CPU_CV",), interval=FOREVER, clock=ticks(0.0, 0.5))
    chosen.start()
    assert chosen.stop() == pytest.approx(1.0 * 0.5)
    assert not Ina3221Meter(tmp_path, rails=("VDD_NOPE",)).available()


def test_jetson_sampler_thread_sees_a_power_burst(tmp_path: Path) -> None:
    fake_iio(tmp_path, watts_in=2.0)
    meter = Ina3221Meter(tmp_path, interval=0.002)
    meter.start()
    time.sleep(0.03)
    write(tmp_path / IIO / "in_power0_input", 10_000)
    time.sleep(0.03)
    write(tmp_path / IIO / "in_power0_input", 2000)
    time.sleep(0.03)
    joules = meter.stop()
    assert 0.3 < joules < 1.0  # 0.18 J if only start and stop were sampled, about 0.42 J with the burst


# ---- NVML ------------------------------------------------------------------------------------------------


class FakeNvmlError(Exception):
    pass


def fake_pynvml(monkeypatch: pytest.MonkeyPatch, energy_counter: bool = True, init_fails: bool = False) -> dict:
    state = {"energy_mj": 1000, "power_mw": 150_000, "inits": 0}
    module = types.ModuleType("pynvml")

    def init() -> None:
        if init_fails:
            raise FakeNvmlError("Driver Not Loaded")
        state["inits"] += 1

    def energy(handle: str) -> int:
        assert handle == "gpu1"
        if not energy_counter:
            raise FakeNvmlError("Not Supported")
        return state["energy_mj"]

    module.NVMLError = FakeNvmlError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda index: f"gpu{index}"  # type: ignore[attr-defined]
    module.nvmlDeviceGetTotalEnergyConsumption = energy  # type: ignore[attr-defined]
    module.nvmlDeviceGetPowerUsage = lambda handle: state["power_mw"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", module)
    return state


def test_nvml_energy_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    state = fake_pynvml(monkeypatch)
    meter = NvmlMeter(index=1)
    assert meter.available() and meter.source == "measured:nvml"
    meter.start()
    state["energy_mj"] += 5000
    assert meter.stop() == pytest.approx(5.0)
    meter.start()
    state["energy_mj"] += 250
    assert meter.stop() == pytest.approx(0.25) and state["inits"] == 1


def test_nvml_samples_power_when_the_counter_is_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    state = fake_pynvml(monkeypatch, energy_counter=False)
    meter = NvmlMeter(index=1, interval=FOREVER, clock=ticks(0.0, 0.1))
    meter.start()
    state["power_mw"] = 250_000
    assert meter.stop() == pytest.approx((150 + 250) / 2 * 0.1)


def test_nvml_unavailable_without_module_or_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails as if nvidia-ml-py were absent
    assert not NvmlMeter().available()
    fake_pynvml(monkeypatch, init_fails=True)
    assert not NvmlMeter().available()


# ---- estimate and detection --------------------------------------------------------------------------------


def test_estimated_energy_is_power_times_time_and_says_so() -> None:
    meter = EstimatedEnergy.for_cpu(threads=2, watts_per_core=4.0)
    meter.clock = ticks(1.0, 1.25)
    assert meter.available() and meter.source == "estimated:cpu-core-tdp@8W"
    meter.start()
    assert meter.stop() == pytest.approx(2.0)
    with pytest.raises(RuntimeError):
        meter.stop()
    with pytest.raises(ValueError):
        EstimatedEnergy(0.0, model="nothing")


def test_estimated_energy_per_call_scales_the_latency_statistic_not_the_metered_time(tmp_path: Path) -> None:
    """A busy machine stretches the metered interval; the LUT's latency is a low quantile. The estimate
    follows the latency alone, so it is not latency times that noise."""
    meter = EstimatedEnergy.for_cpu(threads=1, watts_per_core=4.0)
    assert meter.per_call(joules=100.0, calls=10, latency_s=0.002) == pytest.approx(0.008)
    measured = RaplMeter(tmp_path)  # a real meter keeps the measured mean
    assert measured.per_call(joules=1.0, calls=10, latency_s=0.002) == pytest.approx(0.1)


def test_detect_prefers_real_meters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    empty = tmp_path / "empty"
    assert detect_meter("cpu", empty).source == "estimated:cpu-core-tdp@4W"
    assert detect_meter("cpu", empty, threads=2).source == "estimated:cpu-core-tdp@8W"
    assert detect_meter("cuda", empty).source == "estimated:gpu-board-power@75W"
    assert detect_meter("cuda:1", empty, watts=15).source == "estimated:stated-power@15W"
    jetson = tmp_path / "jetson"
    fake_iio(jetson, watts_in=5.0)
    assert isinstance(detect_meter("cuda", jetson), Ina3221Meter)
    assert isinstance(detect_meter("cpu", jetson), Ina3221Meter)
    fake_rapl(jetson, {0: 10})
    assert isinstance(detect_meter("cpu", jetson), RaplMeter)
    fake_pynvml(monkeypatch)
    assert isinstance(detect_meter("cuda:1", jetson), NvmlMeter)
    with pytest.raises(UserError, match="unknown device 'tpu'"):
        detect_meter("tpu", empty)
