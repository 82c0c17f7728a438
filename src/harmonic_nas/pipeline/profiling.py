"""Profiling this device: every layer the config's search space can run, measured into a LUT (resumable),
and on request whole models measured to fit and report the cost model's accuracy."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harmonic_nas.config.schema import INT8_RUNTIME, MIN_CALIBRATION_MODELS, ExperimentConfig
from harmonic_nas.console import console
from harmonic_nas.costing.validate import ValidationReport
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.hardware.timing import TimingProtocol
from harmonic_nas.pipeline.common import Log, check_modalities, writing

Shapes = Mapping[str, tuple[int, ...]]


@dataclass
class ProfileResult:
    """The LUT written, how many layers the space has and how many were measured now (the others were in
    the table already), and the validation when one was asked for."""

    path: Path
    table: LookupTable
    layers: int
    measured: int
    seconds: float
    energy_source: str
    validation: ValidationReport | None = None
    validation_files: tuple[Path, Path] | None = None  # the report JSON and the plot PNG


def dataset_shapes(cfg: ExperimentConfig) -> tuple[dict[str, tuple[int, ...]], int]:
    """Per-sample input shape of every modality of the config, and the number of classes (from the dataset)."""
    from harmonic_nas.data.registry import missing_modalities, open_prepared

    check_modalities(cfg, None, "the config")
    dataset = open_prepared(cfg.dataset)
    missing_modalities(cfg.modalities, dataset.modalities, cfg.dataset.name, "the config")
    return {m: tuple(dataset.modalities[m].shape) for m in cfg.modalities}, dataset.num_classes


def device_name(configured: str, device: str) -> str:
    """The LUT's device name: the config's ``hardware.device`` when it names a board (e.g. jetson-orin),
    else the torch device measured on (so ``--device cuda`` with the default config is called cuda)."""
    generic = configured == "cpu" or configured.split(":")[0] == "cuda"
    return device if generic else configured


def profile(
    cfg: ExperimentConfig,
    *,
    device: str = "cpu",
    out: Path | None = None,
    runtime: str | None = None, batch_size: int | None = None, threads: int | None = None,
    input_shapes: Shapes | None = None, num_classes: int | None = None,
    validate: int | None = None, seed: int = 0,
    protocol: TimingProtocol | None = None,
    log: Log = console.log,
) -> ProfileResult:
    """Measure every layer of the config's search space on ``device`` into the LUT ``out`` (default
    RUN_DIR/lut/<device name>.json); an interrupted profile resumes where it stopped.

    ``runtime``, ``batch_size``, ``threads`` default to the config's hardware section, the timing
    ``protocol`` to its warm-up and repeats. ``input_shapes`` and ``num_classes`` (both, or neither) spare
    a device without the dataset (a Jetson) from reading it. ``validate`` N >= 6 also measures N random
    whole models (drawn with ``seed``), fits the calibration into the LUT, and writes
    <lut>.validation.json and <lut>.validation.png beside it; by default (None) ``hardware.calibrate``
    models, and only when the table has no calibration yet or got new entries now (a resumed run keeps the
    calibration its stored costs were computed with).
    """
    from harmonic_nas.costing.catalog import search_space_specs
    from harmonic_nas.costing.profiler import ProfileSettings
    from harmonic_nas.costing.profiler import profile as measure_layers
    from harmonic_nas.costing.validate import plot, validate_lut
    from harmonic_nas.errors import UserError
    from harmonic_nas.files import write_text
    from harmonic_nas.hardware.timing import check_runtime, configure_measurement
    from harmonic_nas.runtime import resolve_device

    hardware = cfg.hardware
    runtime = runtime or hardware.runtime
    check_runtime(runtime)
    if validate and validate < MIN_CALIBRATION_MODELS:
        raise UserError(f"--validate needs at least {MIN_CALIBRATION_MODELS} models (a 5-fold cross-validation), "
                        f"found {validate}")
    if (input_shapes is None) != (num_classes is None):
        raise UserError("give both the input shapes and the class count, or neither to read them from the dataset")
    torch_device = resolve_device(device)
    if runtime == INT8_RUNTIME and torch_device.type != "cpu":
        raise UserError(f"runtime {INT8_RUNTIME} runs on the CPU (ONNX Runtime's INT8 CPU kernels), not on "
                        f"--device {device}")
    settings = ProfileSettings(
        device=torch_device,
        device_name=device_name(hardware.device, str(torch_device)),
        runtime=runtime,
        threads=threads or hardware.threads,
        batch_size=batch_size or hardware.batch_size,
        protocol=protocol or TimingProtocol.configured(hardware),
    )
    path = out or cfg.layout.lut(settings.device_name)
    with writing(cfg.run_dir if out is None else None):
        configure_measurement(settings.threads)
        if input_shapes is None or num_classes is None:
            input_shapes, num_classes = dataset_shapes(cfg)
        specs = search_space_specs(cfg, input_shapes, num_classes)
        meter = settings.meter()
        start = time.perf_counter()
        before = len(LookupTable.load(path)) if path.exists() else 0
        table = measure_layers(specs, path, settings, meter)
        result = ProfileResult(path, table, len(specs), len(table) - before, time.perf_counter() - start, meter.source)
        log(f"{path}: {len(table)} entries for {len(specs)} layers of the search space "
            f"({result.seconds:.0f} s, energy {meter.source})")
        if validate is None:
            validate = _default_calibration(cfg, out, table, result.measured, log)
        if validate:
            result.validation = validate_lut(table, cfg, input_shapes, num_classes, validate, settings, meter, seed)
            table.save(path)
            stem = path.with_suffix("")
            report_path = write_text(stem.with_name(stem.name + ".validation.json"), result.validation.to_json() + "\n")
            result.validation_files = (report_path, plot(result.validation, stem.with_name(stem.name + ".validation.png")))
            held_out = result.validation.figures["latency"]["fitted"]
            log(f"calibration on {validate} whole models stored in {path}: held out, latency MAPE "
                f"{held_out['mape']:.1f} %, {held_out['within_10']:.0%} within +-10 %, Spearman "
                f"{held_out['spearman'] or float('nan'):.3f}; report {report_path}, plot {result.validation_files[1]}")
        return result


def _default_calibration(cfg: ExperimentConfig, out: Path | None, table: LookupTable, measured: int, log: Log) -> int:
    """How many whole models to calibrate on when not asked: ``hardware.calibrate`` when layers were measured
    now or the table has no calibration yet, except when a search of this run already stored costs from the
    uncalibrated table (a calibration added now would mix two cost models in one store)."""
    if measured:
        return cfg.hardware.calibrate
    if table.calibration is not None or not cfg.hardware.calibrate:
        return 0
    from harmonic_nas.search.variants import VARIANTS, Variant

    stores = [Variant.named(name).store(cfg.layout).store for name in VARIANTS] if out is None else []
    if any(path.exists() for path in stores):
        log(f"{table.path}: no calibration, and the search in {cfg.run_dir} stored costs from the plain sum: kept "
            "so (calibrate with harmonic-nas profile --validate N, then search again with --force)")
        return 0
    return cfg.hardware.calibrate
