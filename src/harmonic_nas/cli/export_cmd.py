"""``harmonic-nas export`` (a Pareto model as ONNX, TorchScript or a state dict, checked and timed) and
``harmonic-nas reproduce`` (retrain a found model's fusion from its architecture)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from harmonic_nas.cli.checks import at_least_one
from harmonic_nas.cli.params import DEVICE, EXPORT_FORMAT, computed, set_option
from harmonic_nas.config import load_config
from harmonic_nas.cli.views import progress_on_demand
from harmonic_nas.console import console


def _diff(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--model", "which", default="best-acc", show_default=True, metavar="ID|best-acc|fastest",
              help="Pareto model: its id (or a unique prefix), the best val metric, or the lowest LUT latency.")
@click.option("--format", "fmt", type=EXPORT_FORMAT, default="onnx", show_default=True,
              help="model.onnx (ONNX Runtime), model.int8.onnx (INT8, ONNX Runtime), model.ts (torch.jit.load) or "
                   "model.pt only.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help=computed("Folder.", "RUN_DIR/models/<id>"))
@click.option("--samples", type=int, default=32, show_default=True, help="Val samples of the parity check.")
@click.option("--no-latency", is_flag=True, help="Skip the latency measurement.")
@set_option("dataset.cache_dir=/data/cache", stored=True)
def export(run_dir: Path, which: str, fmt: str, out: Path | None, samples: int, no_latency: bool,
           overrides: tuple[str, ...]) -> None:
    """Export one Pareto model of the search run in RUN_DIR as a standalone network (its extracted,
    BN-recalibrated backbones and derived fusion): arch.json, model.pt (load_model) and model.onnx,
    model.int8.onnx or model.ts. Every file is checked against the PyTorch model on real val inputs (max
    abs diff <= 1e-4, else exit 2; the INT8 model instead has its val metric and drop from float recorded),
    then the model is timed at batch 1 like the LUT (INT8: with onnxruntime-int8) and compared with its
    prediction.
    A baseline's models: RUN_DIR/baselines/<variant> as RUN_DIR.

    \b
    Examples:
      harmonic-nas export /tmp/smoke
      harmonic-nas export /tmp/smoke --model fastest --format torchscript --out /tmp/model
      harmonic-nas export /tmp/smoke --format onnx-int8
      harmonic-nas export /tmp/smoke --format pt --no-latency --set dataset.cache_dir=/tmp/cache
    """
    from harmonic_nas.pipeline import export_model

    at_least_one("--samples", samples)
    print_export(export_model(run_dir, model=which, fmt=fmt, out=out, samples=samples, measure=not no_latency,
                              overrides=overrides))


def print_export(result: Any) -> None:
    arch = result.arch
    parity = ", ".join(f"{name} {_diff(v)}" for name, v in result.parity.items())
    metrics = arch["metrics"]
    test = "-" if metrics["test"] is None else f"{metrics['test']:.4f}"
    console.print(f"wrote {', '.join(str(f) for f in result.files)}")
    console.print(f"parity on {result.samples} val samples, max abs diff vs PyTorch: {parity} "
                  f"(tolerance {result.entry.checks['tolerance']:g})")
    console.print(f"{metrics['metric']}: val {metrics['val_exported']:.4f} for the exported model "
                  f"(search: val {metrics['val']:.4f}, test {test})")
    int8 = result.entry.checks.get("int8")
    if int8 is not None:
        left = ", ".join(int8["float_ops"]) or "none"
        console.print(f"INT8 ({int8['calibration']['samples']} train samples calibrated, seed "
                      f"{int8['calibration']['seed']}): val {int8['val_int8']:.4f}, drop {int8['val_drop']:+.4f} from "
                      f"float; max abs diff of the logits {int8['max_abs_diff_vs_float']:.2g}; ops left in float: {left}")
    lat = result.latency
    if lat is not None:
        lut = arch["lut"]["latency_ms"]
        lut_runtime = arch["lut"].get("runtime", lat.runtime)
        other = "" if lut_runtime == lat.runtime else f" (a {lut_runtime} LUT)"
        console.print(f"latency at batch {lat.batch_size}, {lat.threads} thread{'s' if lat.threads > 1 else ''}, "
                      f"{lat.runtime}: measured {lat.latency_ms:.3f} ms, predicted {lut:.3f} ms{other}, "
                      f"{lat.versus(lut)}")
        console.print(f"timing protocol (the LUT's): {lat.method}")


@click.command("reproduce")
@click.argument("arch_path", metavar="ARCH.json", type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Experiment config (YAML) instead of the stored config of the run ARCH.json came from.")
@click.option("--epochs", type=int, default=None,
              help=computed("Training epochs.", "from fusion.epochs + fusion.finetune_epochs"))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help=computed("Result JSON; the weights go next to it (.pt).", "RUN_DIR/reproduce/<candidate id>.json"))
@click.option("--device", type=DEVICE, default=None, help=computed("Device to train on.", "from runtime.device"))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (without --config: only keys that keep the run's results, runtime.* "
                   "but seed, output.*, dataset.cache_dir). Repeatable.")
def reproduce(arch_path: Path, config_path: Path | None, epochs: int | None, out: Path | None, device: str | None,
              overrides: tuple[str, ...]) -> None:
    """Retrain a found model from ARCH.json (the arch.json of export, or {"candidate", "genotype"}): its
    backbones from the trained supernets of the run it came from (BN recalibrated), its fusion network
    trained from scratch on their features, the best epoch on the val select part kept; prints and writes
    the metrics on the val score part (as the search measured them) and on test. The run and its config
    are the ones arch.json names (or the run whose RUN_DIR/models/<id>/ holds it); --config replaces them.

    \b
    Examples (/tmp/model/arch.json from harmonic-nas export /tmp/smoke --out /tmp/model):
      harmonic-nas reproduce /tmp/model/arch.json
      harmonic-nas reproduce /tmp/model/arch.json --epochs 2 --out /tmp/reproduced.json
      harmonic-nas reproduce /tmp/model/arch.json --config configs/smoke.yaml --set output.run_dir=/tmp/smoke
    """
    from harmonic_nas.export.reproduce import read_arch
    from harmonic_nas.search.runner import run_config
    from harmonic_nas.pipeline import reproduce as retrain

    arch = read_arch(arch_path)
    if config_path is not None:
        cfg = load_config(config_path, list(overrides))
    else:
        cfg = run_config(arch.find_run(), overrides)
    with progress_on_demand("loss", "select") as display:
        task: list[Any] = []

        def on_start(total: int) -> None:
            task.append(display().add_task("training the fusion", total=total, loss="-", select="-"))

        def on_epoch(record: dict[str, Any]) -> None:
            display().update(task[0], advance=1, loss=f"{record['loss']:.4f}", select=f"{record['select_metric']:.4f}")

        result = retrain(cfg, arch, epochs=epochs, out=out, device=device, on_start=on_start, on_epoch=on_epoch)
    console.print(reproduce_table(result.record))


def reproduce_table(record: dict[str, Any]) -> Table:
    table = Table(title=f"Reproduced {record['candidate_id']} ({record['epochs']} epochs, best epoch "
                        f"{record['best_epoch']}, {record['timings']['total_s']:.0f} s)")
    for column in ("", f"val {record['metric']}", f"test {record['metric']}", "LUT latency ms", "LUT energy mJ"):
        table.add_column(column, justify="left" if not column else "right")
    lut = record["lut"] or {}
    cost = [f"{lut['latency_ms']:.3f}", f"{lut['energy_mj']:.3f}"] if lut else ["-", "-"]
    table.add_row("retrained", f"{record['val_metric']:.4f}", f"{record['test_metric']:.4f}", *cost)
    searched = record["searched"]
    if searched:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        table.add_row("search", fmt(searched.get("val")), fmt(searched.get("test")), "", "")
    return table
