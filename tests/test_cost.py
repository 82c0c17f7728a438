"""The cost model: additive sums, the calibration fit and its storage in the LUT, the missing-key error,
and the validation report on a tiny space."""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.hardware.calibration import Calibration, LinearFit, fit_linear
from harmonic_nas.costing.catalog import candidate_specs, search_space_specs
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader, MissingLutEntryError
from harmonic_nas.hardware.meters import EnergyMeter, EstimatedEnergy
from harmonic_nas.costing.profiler import ProfileSettings
from harmonic_nas.hardware.specs import lut_key
from harmonic_nas.hardware.timing import TimingProtocol
from harmonic_nas.costing.validate import Figures, cross_validated, plot, random_genotype, validate_lut
from harmonic_nas.space.candidate import CandidateSpace
from harmonic_nas.space import Candidate, Genotype

SHAPES = {"image": (1, 8, 8), "thumb": (12,)}
CLASSES = 3


def synthetic_table(cfg: ExperimentConfig, runtime: str = "torch") -> LookupTable:
    """Every layer of the space at a known cost: latency = 0.01 x (index + 1) ms, energy = 2 x latency."""
    header = LutHeader.for_this_host(device="cpu", runtime=runtime, method="synthetic", batch_size=1, threads=1,
                                     energy_source="estimated:test@2W")
    table = LookupTable(header)
    for i, spec in enumerate(search_space_specs(cfg, SHAPES, CLASSES)):
        ms = 0.01 * (i + 1)
        table.add(spec, LutEntry(latency_ms=ms, latency_std_ms=0.0, energy_mj=2 * ms, repeats=1))
    return table


def sample(cfg: ExperimentConfig, seed: int) -> tuple[Candidate, Genotype]:
    rng = random.Random(seed)
    candidate = CandidateSpace.from_config(cfg).sample(rng)
    taps = [("image", 0), ("image", 1)] + [("thumb", b) for b in range(candidate.backbones["thumb"].blocks)]
    return candidate, random_genotype(taps, candidate.macro, cfg.fusion.operators, rng)


@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_cost_is_the_sum_of_the_entries_of_what_runs(runtime: str) -> None:
    cfg = tiny_config()
    table = synthetic_table(cfg, runtime)
    model = CostModel(table, cfg, SHAPES, CLASSES)
    for seed in range(5):
        candidate, genotype = sample(cfg, seed)
        Genotype.parse(genotype.to_json())
        specs = candidate_specs(cfg, candidate.backbones, genotype, SHAPES, CLASSES)
        cost = model.cost(candidate, genotype)
        expected = sum(table.lookup(s).latency_ms for s in specs)
        assert cost.layers == len(specs) and cost.latency_ms == pytest.approx(expected)
        assert cost.energy_mj == pytest.approx(2 * expected)
        unimodal = model.cost(candidate)  # every backbone as a classifier, no fusion
        assert unimodal.layers == len(candidate_specs(cfg, candidate.backbones, None, SHAPES, CLASSES))


def test_calibration_is_applied_and_survives_the_file(tmp_path: Path) -> None:
    cfg = tiny_config()
    table = synthetic_table(cfg)
    fit = LinearFit(scale=0.5, per_layer=-0.001, offset=0.2, models=10, mape=1.0, r2=0.99)
    table.calibration = Calibration(latency=fit, energy=fit, runtime="torch",
                                    date=datetime(2026, 1, 1, tzinfo=timezone.utc), cross_validation={"mape": 3.0})
    candidate, genotype = sample(cfg, 0)
    plain = CostModel(table, cfg, SHAPES, CLASSES, calibrated=False).cost(candidate, genotype)
    fitted = CostModel(table, cfg, SHAPES, CLASSES).cost(candidate, genotype)
    assert fitted.latency_ms == pytest.approx(0.5 * plain.latency_ms - 0.001 * plain.layers + 0.2)
    table.save(tmp_path / "cpu.json")
    loaded = LookupTable.load(tmp_path / "cpu.json")
    assert loaded.calibration == table.calibration
    assert loaded.merge(synthetic_table(cfg)).calibration is None  # fitted against other entries


def test_missing_entry_names_the_key_and_the_profile_command(tmp_path: Path) -> None:
    cfg = tiny_config()
    full = synthetic_table(cfg)
    candidate, genotype = sample(cfg, 1)
    specs = candidate_specs(cfg, candidate.backbones, genotype, SHAPES, CLASSES)
    missing = lut_key(specs[-1])
    table = LookupTable(full.header, {k: v for k, v in full.entries.items() if k != missing})
    table.save(tmp_path / "cpu.json")
    with pytest.raises(MissingLutEntryError) as info:
        CostModel(table, cfg, SHAPES, CLASSES).cost(candidate, genotype)
    message = str(info.value)
    assert missing in message and "harmonic-nas profile --config" in message and "\n" not in message


def test_fit_recovers_a_known_linear_relation() -> None:
    rng = np.random.default_rng(0)
    additive = rng.uniform(0.5, 5.0, 40)
    layers = rng.integers(10, 60, 40)
    measured = 0.8 * additive - 0.01 * layers + 0.3
    fit = fit_linear(additive, layers, measured)
    assert (fit.scale, fit.per_layer, fit.offset) == pytest.approx((0.8, -0.01, 0.3), abs=1e-9)
    assert fit.mape == pytest.approx(0.0, abs=1e-9) and fit.r2 == pytest.approx(1.0)
    held_out = cross_validated(list(additive), list(layers), list(measured), seed=0)
    assert held_out == pytest.approx(list(measured))
    noisy = measured * rng.normal(1.0, 0.01, 40)
    rough = fit_linear(additive, layers, noisy)
    assert rough.scale == pytest.approx(0.8, abs=0.05) and rough.mape < 2.0
    with pytest.raises(ValueError):
        fit_linear([1.0, 2.0], [1, 2], [1.0, 2.0])


def test_figures() -> None:
    figures = Figures.of([1.0, 2.1, 2.0, 5.0], [1.0, 2.0, 3.0, 4.0])
    assert figures.within_10 == 0.5
    assert figures.mape == pytest.approx((0 + 5 + 100 / 3 + 25) / 4)
    assert figures.spearman == pytest.approx(0.8)
    assert Figures.of([1.0, 1.0], [1.0, 2.0]).spearman is None


class FakeMeter(EnergyMeter):
    """A 'measured' meter (3 W over the wall clock), so that energy is validated like latency."""

    name = "fake"

    def available(self) -> bool:
        return True

    def start(self) -> None:
        self.started = time.perf_counter()

    def stop(self) -> float:
        return 3.0 * (time.perf_counter() - self.started)


def test_validation_reports_both_models_and_stores_the_calibration(tmp_path: Path) -> None:
    from harmonic_nas.costing.profiler import profile

    cfg = tiny_config()
    fast = TimingProtocol(warmup=1, repeats=5, rounds=1, min_seconds=0.0)
    settings = ProfileSettings(torch.device("cpu"), "cpu", protocol=fast)
    meter = EstimatedEnergy.for_cpu(1)
    table = profile(search_space_specs(cfg, SHAPES, CLASSES), tmp_path / "cpu.json", settings, meter)
    report = validate_lut(table, cfg, SHAPES, CLASSES, 6, settings, meter, seed=3)
    assert set(report.figures) == {"latency"}  # estimated energy is not a measurement to validate against
    assert set(report.figures["latency"]) == {"additive", "fitted"}
    assert len(report.rows) == 6 and all(r["latency_measured"] > 0 for r in report.rows)
    assert table.calibration is not None and table.calibration.latency.models == 6
    assert table.calibration.cross_validation == report.figures["latency"]["fitted"]
    assert plot(report, tmp_path / "plot.png").stat().st_size > 1000

    measured = validate_lut(table, cfg, SHAPES, CLASSES, 6, settings, FakeMeter(), seed=4)
    assert set(measured.figures) == {"latency", "energy"} and all(r["energy_measured"] > 0 for r in measured.rows)
