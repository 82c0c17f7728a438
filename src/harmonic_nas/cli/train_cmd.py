"""``harmonic-nas train-supernet``: train the once-for-all supernet of one or every modality."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from harmonic_nas.config import dump_config, load_config
from harmonic_nas.console import console
from harmonic_nas.errors import UserError
from harmonic_nas.runtime import configure_threads, resolve_device


@click.command("train-supernet")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Experiment config (YAML).")
@click.option("--modality", "modalities", multiple=True, help="Modality to train (repeatable); default: all of the config.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: runtime.device of the config).")
@click.option("--resume", is_flag=True, help="Continue an interrupted training from its last epoch checkpoint.")
@click.option("--force", is_flag=True, help="Retrain even if a finished supernet exists.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. supernet.epochs=2.")
def train_supernet(
    config_path: Path, modalities: tuple[str, ...], device: str | None, resume: bool, force: bool, overrides: tuple[str, ...]
) -> None:
    """Train supernets with the sandwich rule and in-place distillation; writes runs/<name>/supernets/<m>.pt
    and <m>.metrics.json (val metric of the max, min and random subnets after BN recalibration)."""
    from harmonic_nas.data.registry import load_dataset
    from harmonic_nas.supernet import SupernetFiles, SupernetTrainer, remove_outputs

    if resume and force:
        raise UserError("--resume and --force contradict each other: choose one")
    cfg = load_config(config_path, list(overrides))
    unknown = [m for m in modalities if m not in cfg.modalities]
    if unknown:
        raise UserError(f"--modality {unknown[0]!r} is not in {config_path} (has {', '.join(cfg.modalities)})")
    configure_threads(cfg.runtime.threads)
    torch_device = resolve_device(device or cfg.runtime.device)
    dump_config(cfg, cfg.run_dir / "config.yaml")
    dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed)

    results = {}
    for modality in modalities or tuple(cfg.modalities):
        files = SupernetFiles(cfg.run_dir / "supernets", modality)
        if force:
            remove_outputs(files)
        trainer = SupernetTrainer(cfg, modality, dataset, torch_device)
        finished = trainer.finished_metrics()
        if finished is not None:
            console.log(f"{modality}: supernet already trained ({files.supernet}); --force retrains it")
            results[modality] = finished
            continue
        results[modality] = trainer.run(resume=resume and files.checkpoint.exists())
        console.log(f"{modality}: wrote {files.supernet} and {files.metrics}")
    _print_table(results)


def _print_table(results: dict[str, dict]) -> None:
    table = Table(title="Supernet validation metric per subnet (BN recalibrated)")
    table.add_column("modality")
    table.add_column("subnet")
    table.add_column("metric")
    table.add_column("val", justify="right")
    for modality, metrics in results.items():
        for sub in metrics["subnets"]:
            table.add_row(modality, sub["name"], metrics["metric"], f"{sub['val']:.4f}")
    console.print(table)
