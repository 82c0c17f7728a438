"""How far to trust a LUT: build random whole models, measure them with the LUT's own runtime and
protocol, and compare with the additive and the calibrated cost (cross-validated), then store the
calibration fitted on all of them in the LUT.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harmonic_nas.backbones import build_supernet
from harmonic_nas.backbones.specs import tap_shapes
from harmonic_nas.config.schema import MIN_CALIBRATION_MODELS, ExperimentConfig
from harmonic_nas.console import make_progress
from harmonic_nas.errors import UserError
from harmonic_nas.fusion.discrete import FusionNet, MultimodalNet
from harmonic_nas.hardware.calibration import Calibration, ReferenceModel, fit_linear
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.hardware.meters import EnergyMeter
from harmonic_nas.costing.profiler import ProfileSettings
from harmonic_nas.hardware.timing import Measurement, make_runner, measure
from harmonic_nas.space.candidate import Candidate, CandidateSpace
from harmonic_nas.space.fusion import Macro
from harmonic_nas.space.genotype import Cell, Genotype, Node

FOLDS = 5


def random_genotype(
    taps: Sequence[tuple[str, int]], macro: Macro, operators: Sequence[str], rng: random.Random
) -> Genotype:
    """A genotype of the shape derivation produces (first node reads the cell's two inputs) with random
    cell inputs, node inputs and operators."""
    cells = []
    for p in range(macro.cells):
        nodes = [
            Node(inputs=[0, 1] if d == 0 else sorted(rng.sample(range(2 + d), 2)), op=rng.choice(list(operators)))
            for d in range(macro.nodes)
        ]
        cells.append(Cell(inputs=sorted(rng.sample(range(len(taps) + p), 2)), nodes=nodes))
    return Genotype(taps=taps, cells=cells)


@dataclass(frozen=True)
class RandomModel:
    """One random candidate, its genotype (None: a lone backbone) and the module that runs it."""

    candidate: Candidate
    genotype: Genotype | None
    module: nn.Module
    inputs: tuple[Tensor, ...]


def random_models(
    cfg: ExperimentConfig, input_shapes: Mapping[str, tuple[int, ...]], num_classes: int, n: int, seed: int
) -> list[RandomModel]:
    """``n`` random multimodal networks of ``cfg``'s space (random weights: latency does not depend on them)."""
    space = CandidateSpace.from_config(cfg)
    supernets = _supernets(cfg, input_shapes, num_classes)
    rng = random.Random(seed)
    models = []
    for _ in range(n):
        candidate = space.sample(rng)
        taps = _taps(supernets, candidate, input_shapes)
        genotype = None if len(taps) < 2 else random_genotype(taps, candidate.macro, cfg.fusion.operators, rng)
        models.append(_model(cfg, supernets, candidate, genotype, input_shapes, num_classes))
    return models


def reference_model(
    cfg: ExperimentConfig, input_shapes: Mapping[str, tuple[int, ...]], num_classes: int, reference: ReferenceModel
) -> RandomModel:
    """The calibration's reference network rebuilt (random weights) to be measured again."""
    candidate = CandidateSpace.from_config(cfg).parse(reference.candidate)
    genotype = None if reference.genotype is None else Genotype.parse(reference.genotype)
    return _model(cfg, _supernets(cfg, input_shapes, num_classes), candidate, genotype, input_shapes, num_classes)


def _supernets(cfg: ExperimentConfig, input_shapes: Mapping[str, tuple[int, ...]], num_classes: int) -> dict[str, nn.Module]:
    return {
        m: build_supernet(space_cfg, tuple(input_shapes[m]), num_classes).eval()
        for m, space_cfg in cfg.modalities.items()
    }


def _taps(supernets: Mapping[str, nn.Module], candidate: Candidate,
          input_shapes: Mapping[str, tuple[int, ...]]) -> list[tuple[str, int]]:
    archs = candidate.backbones
    return [(m, s) for m in archs for s in range(len(tap_shapes(supernets[m], archs[m], input_shapes[m])))]


def _model(
    cfg: ExperimentConfig, supernets: Mapping[str, nn.Module], candidate: Candidate, genotype: Genotype | None,
    input_shapes: Mapping[str, tuple[int, ...]], num_classes: int,
) -> RandomModel:
    """The network of ``candidate`` with ``genotype`` (None: one modality with one tap, nothing to fuse, the
    model is the backbone)."""
    archs = candidate.backbones
    backbones = {m: supernets[m].extract(archs[m]).eval() for m in archs}
    if genotype is None:
        (modality,) = archs
        return RandomModel(candidate, None, backbones[modality], (_example(input_shapes[modality]),))
    shapes = {m: tap_shapes(supernets[m], archs[m], input_shapes[m]) for m in archs}
    fusion = FusionNet(
        genotype, [shapes[m][s][0] for m, s in genotype.taps], cfg.fusion.channels, cfg.fusion.length,
        num_classes, cfg.fusion.dropout,
    )
    net = MultimodalNet(backbones, fusion).eval()
    return RandomModel(candidate, genotype, net, tuple(_example(input_shapes[m]) for m in net.modalities))


def _example(shape: tuple[int, ...]) -> Tensor:
    return torch.randn(1, *shape)


@dataclass(frozen=True)
class Figures:
    """Agreement of predicted with measured costs over held-out models."""

    mape: float
    within_10: float
    spearman: float | None

    @classmethod
    def of(cls, predicted: Sequence[float], measured: Sequence[float]) -> Figures:
        from scipy.stats import spearmanr  # a second to import: not for every command that exports or reports

        p, m = np.asarray(predicted, float), np.asarray(measured, float)
        error = np.abs(p - m) / m
        rho = spearmanr(p, m).statistic if len(m) > 1 and np.ptp(m) > 0 and np.ptp(p) > 0 else float("nan")
        return cls(float(error.mean() * 100), float(np.mean(error <= 0.10)), None if np.isnan(rho) else float(rho))


@dataclass
class ValidationReport:
    """Per-model numbers and the held-out figures of the additive and the fitted model."""

    runtime: str
    energy_measured: bool
    rows: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, dict[str, dict[str, float | None]]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def cross_validated(
    additive: Sequence[float], layers: Sequence[int], measured: Sequence[float], seed: int
) -> list[float]:
    """Out-of-fold predictions of the calibration: each model predicted by a fit on the other folds."""
    order = list(range(len(measured)))
    random.Random(seed).shuffle(order)
    predicted = [0.0] * len(measured)
    for fold in range(FOLDS):
        held = set(order[fold::FOLDS])
        train = [i for i in order if i not in held]
        fit = fit_linear([additive[i] for i in train], [layers[i] for i in train], [measured[i] for i in train])
        for i in held:
            predicted[i] = fit.predict(additive[i], layers[i])
    return predicted


def validate_lut(
    table: LookupTable,
    cfg: ExperimentConfig,
    input_shapes: Mapping[str, tuple[int, ...]],
    num_classes: int,
    n: int,
    settings: ProfileSettings,
    meter: EnergyMeter,
    seed: int = 0,
) -> ValidationReport:
    """Measure ``n`` random models, report held-out figures, and set ``table.calibration`` (fitted on all)."""
    if n < MIN_CALIBRATION_MODELS:
        raise UserError(f"--validate needs at least {MIN_CALIBRATION_MODELS} models (a {FOLDS}-fold cross-validation), found {n}")
    costs = CostModel(table, cfg, input_shapes, num_classes, calibrated=False)
    models = random_models(cfg, input_shapes, num_classes, n, seed)
    plain = [costs.additive(costs.specs(m.candidate, m.genotype)) for m in models]  # missing keys fail here
    measured = measure_models(models, settings, meter)
    layers = [c.layers for c in plain]
    series = {
        "latency": ([c.latency_ms for c in plain], [m.latency_ms for m in measured]),
        "energy": ([c.energy_mj for c in plain], [m.energy_mj for m in measured]),
    }
    held_out = {metric: cross_validated(a, layers, y, seed) for metric, (a, y) in series.items()}
    report = ValidationReport(settings.runtime, meter.source.startswith("measured:"))
    report.figures = {
        metric: {"additive": asdict(Figures.of(a, y)), "fitted": asdict(Figures.of(held_out[metric], y))}
        for metric, (a, y) in series.items()
        if metric == "latency" or report.energy_measured
    }
    for i, model in enumerate(models):
        row: dict[str, Any] = {"layers": layers[i]}
        for metric, (additive, actual) in series.items():
            row.update({f"{metric}_measured": actual[i], f"{metric}_additive": additive[i],
                        f"{metric}_fitted": held_out[metric][i]})
        genotype = None if model.genotype is None else model.genotype.to_json()
        report.rows.append({**row, "candidate": model.candidate.to_json(), "genotype": genotype})
    table.calibration = Calibration(
        latency=fit_linear(series["latency"][0], layers, series["latency"][1]),
        energy=fit_linear(series["energy"][0], layers, series["energy"][1]),
        runtime=settings.runtime,
        date=datetime.now(timezone.utc).replace(microsecond=0),
        cross_validation=dict(report.figures["latency"]["fitted"]),
        reference=_median_model(models, series["latency"][1]),
    )
    return report


def _median_model(models: Sequence[RandomModel], latencies: Sequence[float]) -> ReferenceModel:
    """The multimodal model of median latency (any model if none fuses): typical of what gets exported."""
    fused = [i for i, m in enumerate(models) if m.genotype is not None] or list(range(len(models)))
    i = sorted(fused, key=lambda k: latencies[k])[len(fused) // 2]
    genotype = models[i].genotype
    return ReferenceModel(candidate=models[i].candidate.to_json(),
                          genotype=None if genotype is None else genotype.to_json(), latency_ms=latencies[i])


def measure_models(models: Sequence[RandomModel], settings: ProfileSettings, meter: EnergyMeter) -> list[Measurement]:
    """All models in one interleaved group: a slow spell of the machine then touches every model alike
    instead of inflating whichever group ran during it (seen: 2x on a shared machine)."""
    with make_progress() as bar:
        task = bar.add_task("building whole models", total=len(models))
        runners = []
        for m in models:
            runners.append(make_runner(
                m.module, m.inputs, settings.runtime, settings.device, settings.threads, settings.batch_size
            ))
            bar.advance(task)
        rounds = bar.add_task("measuring (rounds)", total=settings.protocol.rounds)
        return measure(runners, settings.protocol, meter, settings.clock, on_round=lambda: bar.advance(rounds))


def plot(report: ValidationReport, path: str | Path) -> Path:
    """Predicted vs measured (additive and cross-validated fitted) with the +-10 % band, one panel per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(report.figures)
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        unit = "ms" if metric == "latency" else "mJ"
        measured = [r[f"{metric}_measured"] for r in report.rows]
        low, high = min(measured) * 0.8, max(measured) * 1.2
        line = np.linspace(low, high, 2)
        ax.fill_between(line, line * 0.9, line * 1.1, color="0.9", label="+-10 %")
        ax.plot(line, line, color="0.5", linewidth=1)
        for kind, marker in (("additive", "x"), ("fitted", "o")):
            figures = report.figures[metric][kind]
            rho = "n/a" if figures["spearman"] is None else f"{figures['spearman']:.3f}"
            label = f"{kind}: MAPE {figures['mape']:.1f} %, within 10 % {figures['within_10']:.0%}, Spearman {rho}"
            ax.scatter(measured, [r[f"{metric}_{kind}"] for r in report.rows], marker=marker, s=22, label=label)
        ax.set_xlabel(f"measured {metric} ({unit})")
        ax.set_ylabel(f"predicted {metric} ({unit})")
        ax.set_title(f"{metric}, {len(measured)} random models, {report.runtime}")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
