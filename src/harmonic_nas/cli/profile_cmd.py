"""``harmonic-nas profile``: measure the LUT of a config's whole search space on this device (resumable),
and with ``--validate N`` measure N random whole models to fit and report the cost model's accuracy."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from harmonic_nas.cli.checks import at_least_one
from harmonic_nas.cli.params import DEVICE, RUNTIME, computed, config_option, set_option
from harmonic_nas.config import load_config
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.console import console
from harmonic_nas.errors import UserError


def given_shapes(
    cfg: ExperimentConfig, shapes: tuple[str, ...], classes: int | None
) -> tuple[dict[str, tuple[int, ...]] | None, int | None]:
    """Input shapes and class count from ``--shape``/``--classes`` when both are complete (a device
    without the dataset, e.g. a Jetson, profiles with them); (None, None) to read them from the dataset."""
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
    return None, None


@click.command("profile")
@config_option(required=True)
@click.option("--device", type=DEVICE, default="cpu", show_default=True, help="torch device to measure on.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help=computed("LUT file.", "RUN_DIR/lut/<hardware.device>.json"))
@click.option("--runtime", type=RUNTIME, default=None,
              help=computed("Runtime the layers run in.", "from hardware.runtime"))
@click.option("--batch-size", type=int, default=None,
              help=computed("Batch size of every measurement.", "from hardware.batch_size"))
@click.option("--threads", type=int, default=None, help=computed("Intra-op threads.", "from hardware.threads"))
@click.option("--validate", "validate_n", type=int, default=None,
              help=computed("Also measure N random whole models and fit the calibration (0: none).",
                            "hardware.calibrate, when the LUT has no calibration yet or got new entries"))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random validation models.")
@click.option("--shape", "shapes", multiple=True, metavar="MODALITY=CxHxW",
              help="Input shape of a modality (repeat for each); with --classes, no dataset is needed.")
@click.option("--classes", type=int, default=None, help="Number of classes (with --shape).")
@set_option("hardware.repeats=100")
def profile_command(
    config_path: Path,
    device: str,
    out: Path | None,
    runtime: str | None,
    batch_size: int | None,
    threads: int | None,
    validate_n: int | None,
    seed: int,
    shapes: tuple[str, ...],
    classes: int | None,
    overrides: tuple[str, ...],
) -> None:
    """Profile every layer of the search space into a LUT (killed runs resume where they stopped).

    \b
    Examples:
      harmonic-nas profile --config configs/smoke.yaml --set output.run_dir=/tmp/smoke
      harmonic-nas profile --config configs/smoke.yaml --out /tmp/lut.json --validate 20
      harmonic-nas profile --config configs/smoke.yaml --out /tmp/lut-ort.json --runtime onnxruntime \\
          --shape image=1x28x28 --shape audio=1x32x32 --classes 10
    """
    from harmonic_nas.pipeline import profile

    cfg = load_config(config_path, list(overrides))
    at_least_one("--batch-size", batch_size)
    at_least_one("--threads", threads)
    sizes, num_classes = given_shapes(cfg, shapes, classes)
    result = profile(cfg, device=device, out=out, runtime=runtime, batch_size=batch_size, threads=threads,
                     input_shapes=sizes, num_classes=num_classes, validate=validate_n, seed=seed)
    if result.validation is not None:
        console.print(validation_table(result.validation.figures, len(result.validation.rows)))


def validation_table(figures: dict[str, dict[str, dict[str, float | None]]], n: int) -> Table:
    table = Table(title=f"Cost model vs {n} measured whole models (fitted: 5-fold cross-validated)")
    for column in ("metric", "model", "MAPE %", "within +-10 %", "Spearman"):
        table.add_column(column, justify="left" if column in ("metric", "model") else "right")
    for metric, kinds in figures.items():
        for kind, f in kinds.items():
            rho = "n/a" if f["spearman"] is None else f"{f['spearman']:.3f}"
            table.add_row(metric, kind, f"{f['mape']:.1f}", f"{f['within_10']:.0%}", rho)
    return table
