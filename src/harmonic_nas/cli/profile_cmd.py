"""``harmonic-nas profile``: measure the LUT of a config's whole search space on this device (resumable),
and with ``--validate N`` measure N random whole models to fit and report the cost model's accuracy."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.table import Table

from harmonic_nas.cli.checks import at_least_one, dataset_modalities, own_run
from harmonic_nas.config import load_config
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.console import console
from harmonic_nas.errors import UserError
from harmonic_nas.files import write_text


def input_shapes(
    cfg: ExperimentConfig, shapes: tuple[str, ...], classes: int | None
) -> tuple[dict[str, tuple[int, ...]], int]:
    """Input shapes and class count from ``--shape``/``--classes`` when both are complete (a device
    without the dataset, e.g. a Jetson, profiles with them), else from the dataset."""
    given: dict[str, tuple[int, ...]] = {}
    for item in shapes:
        modality, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not sep or not shape or min(shape) < 1:
            raise UserError(f"--shape {item!r}: expected MODALITY=CxHxW or MODALITY=D, e.g. image=1x28x28")
        if modality not in cfg.modalities:
            raise UserError(f"--shape {item!r}: no modality {modality!r} in the config (has {', '.join(cfg.modalities)})")
        given[modality] = shape
    at_least_one("--classes", classes)
    if classes is not None and set(given) == set(cfg.modalities):
        return given, classes
    if given or classes is not None:
        missing = [f"--shape {m}=..." for m in cfg.modalities if m not in given] + ([] if classes else ["--classes"])
        raise UserError(f"give every input shape and the class count, or none to read them from the dataset: "
                        f"missing {', '.join(missing)}")
    return dataset_shapes(cfg)


def dataset_shapes(cfg: ExperimentConfig) -> tuple[dict[str, tuple[int, ...]], int]:
    """Per-sample input shape of every modality of the config, and the number of classes (from the dataset)."""
    from harmonic_nas.data.registry import missing_modalities, open_prepared

    dataset_modalities(cfg, "the config")
    dataset = open_prepared(cfg.dataset)
    missing_modalities(cfg.modalities, dataset.modalities, cfg.dataset.name, "the config")
    return {m: tuple(dataset.modalities[m].shape) for m in cfg.modalities}, dataset.num_classes


def device_name(configured: str, device: str) -> str:
    """The LUT's device name: the config's ``hardware.device`` when it names a board (e.g. jetson-orin),
    else the torch device measured on (so ``--device cuda`` with the default config is called cuda)."""
    generic = configured == "cpu" or configured.split(":")[0] == "cuda"
    return device if generic else configured


@click.command("profile")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Experiment config (YAML).")
@click.option("--device", default="cpu", show_default=True, help="torch device to measure on: cpu, cuda, cuda:N.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="LUT file [default: runs/<name>/lut/<device>.json].")
@click.option("--runtime", default=None, help="torch or onnxruntime [default: hardware.runtime of the config].")
@click.option("--batch-size", type=int, default=None, help="Batch size of every measurement [default: hardware.batch_size].")
@click.option("--threads", type=int, default=None, help="Intra-op threads [default: hardware.threads].")
@click.option("--validate", "validate_n", type=int, default=0, help="Also measure N random whole models and fit the calibration.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random validation models.")
@click.option("--shape", "shapes", multiple=True, metavar="MODALITY=CxHxW",
              help="Input shape of a modality (repeat for each); with --classes, no dataset is needed.")
@click.option("--classes", type=int, default=None, help="Number of classes (with --shape).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. hardware.repeats=100.")
def profile_command(
    config_path: Path,
    device: str,
    out: Path | None,
    runtime: str | None,
    batch_size: int | None,
    threads: int | None,
    validate_n: int,
    seed: int,
    shapes: tuple[str, ...],
    classes: int | None,
    overrides: tuple[str, ...],
) -> None:
    """Profile every layer of the search space into a LUT (killed runs resume where they stopped)."""
    from harmonic_nas.costing.catalog import search_space_specs
    from harmonic_nas.costing.profiler import ProfileSettings, profile
    from harmonic_nas.hardware.timing import TimingProtocol, check_runtime, configure_measurement
    from harmonic_nas.costing.validate import MIN_MODELS, plot, validate_lut
    from harmonic_nas.runtime import resolve_device

    cfg = load_config(config_path, list(overrides))
    hardware = cfg.hardware
    runtime = runtime or hardware.runtime
    check_runtime(runtime)
    at_least_one("--batch-size", batch_size)
    at_least_one("--threads", threads)
    if validate_n and validate_n < MIN_MODELS:
        raise UserError(f"--validate needs at least {MIN_MODELS} models (a 5-fold cross-validation), found {validate_n}")
    torch_device = resolve_device(device)
    settings = ProfileSettings(
        device=torch_device,
        device_name=device_name(hardware.device, str(torch_device)),
        runtime=runtime,
        threads=threads or hardware.threads,
        batch_size=batch_size or hardware.batch_size,
        protocol=TimingProtocol(warmup=hardware.warmup, repeats=hardware.repeats),
    )
    if out is None:
        own_run(cfg.run_dir)
        out = cfg.layout.lut(settings.device_name)
    configure_measurement(settings.threads)
    sizes, num_classes = input_shapes(cfg, shapes, classes)
    specs = search_space_specs(cfg, sizes, num_classes)
    meter = settings.meter()
    start = time.perf_counter()
    table = profile(specs, out, settings, meter)
    console.log(f"{out}: {len(table)} entries for {len(specs)} layers of the search space "
                f"({time.perf_counter() - start:.0f} s, energy {meter.source})")
    if validate_n:
        report = validate_lut(table, cfg, sizes, num_classes, validate_n, settings, meter, seed)
        table.save(out)
        stem = out.with_suffix("")
        report_path = stem.with_name(stem.name + ".validation.json")
        write_text(report_path, report.to_json() + "\n")
        figure = plot(report, stem.with_name(stem.name + ".validation.png"))
        _print_figures(report.figures, validate_n)
        console.log(f"calibration stored in {out}; report {report_path}, plot {figure}")


def _print_figures(figures: dict[str, dict[str, dict[str, float | None]]], n: int) -> None:
    table = Table(title=f"Cost model vs {n} measured whole models (fitted: 5-fold cross-validated)")
    for column in ("metric", "model", "MAPE %", "within +-10 %", "Spearman"):
        table.add_column(column, justify="left" if column in ("metric", "model") else "right")
    for metric, kinds in figures.items():
        for kind, f in kinds.items():
            rho = "n/a" if f["spearman"] is None else f"{f['spearman']:.3f}"
            table.add_row(metric, kind, f"{f['mape']:.1f}", f"{f['within_10']:.0%}", rho)
    console.print(table)
