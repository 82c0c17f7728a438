"""``harmonic-nas train-supernet``: train the once-for-all supernet of one or every modality."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from harmonic_nas.cli.checks import dataset_modalities, own_run
from harmonic_nas.config import ExperimentConfig, dump_config, load_config
from harmonic_nas.console import console
from harmonic_nas.errors import UserError
from harmonic_nas.runtime import configure_threads, resolve_device

if TYPE_CHECKING:
    from harmonic_nas.supernet.distributed import Dist


@click.command("train-supernet")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Experiment config (YAML).")
@click.option("--modality", "modalities", multiple=True, help="Modality to train (repeatable); default: all of the config.")
@click.option("--device", default=None, help="cpu, cuda, cuda:N (default: runtime.device of the config).")
@click.option("--resume", is_flag=True, help="Continue an interrupted training from its last epoch checkpoint.")
@click.option("--force", is_flag=True, help="Retrain even if a finished supernet exists.")
@click.option("--keep-checkpoint", is_flag=True,
              help="Keep <m>.ckpt (last epoch's weights, optimizer and schedule; 4x the supernet) after training.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config key, e.g. supernet.epochs=2.")
def train_supernet(
    config_path: Path, modalities: tuple[str, ...], device: str | None, resume: bool, force: bool,
    keep_checkpoint: bool, overrides: tuple[str, ...],
) -> None:
    """Train supernets with the sandwich rule and in-place distillation; writes runs/<name>/supernets/<m>.pt
    and <m>.metrics.json (val metric of the max, min and random subnets after BN recalibration).

    Under torchrun (WORLD_SIZE > 1) the processes share every batch (gloo on CPU, nccl on CUDA with one
    GPU per process); rank 0 owns the run directory and prints; see docs/scale-out.md."""
    from harmonic_nas.supernet.distributed import from_env

    if resume and force:
        raise UserError("--resume and --force contradict each other: choose one")
    cfg = load_config(config_path, list(overrides))
    unknown = [m for m in modalities if m not in cfg.modalities]
    if unknown:
        raise UserError(f"--modality {unknown[0]!r} is not in {config_path} (has {', '.join(cfg.modalities)})")
    dataset_modalities(cfg, str(config_path))
    if os.environ.get("RANK", "0") == "0":  # rank 0 (or the one process) owns the run directory
        own_run(cfg.run_dir)
    configure_threads(cfg.runtime.threads)
    dist = from_env(resolve_device(device or cfg.runtime.device))
    try:
        _train(cfg, modalities, dist, resume=resume, force=force, keep_checkpoint=keep_checkpoint)
    except UserError as exc:
        if dist.is_main:
            raise
        raise SystemExit(exc.exit_code) from None  # rank 0 reports it, once
    finally:
        dist.shutdown()


def _train(
    cfg: ExperimentConfig, modalities: tuple[str, ...], dist: Dist, *, resume: bool, force: bool, keep_checkpoint: bool
) -> None:
    from harmonic_nas.data.registry import load_dataset, missing_modalities
    from harmonic_nas.supernet import SupernetTrainer, remove_outputs

    if dist.is_main:
        dump_config(cfg, cfg.layout.config)
        if dist.enabled:
            console.log(f"distributed: {dist.world_size} processes on {dist.device.type}, each batch of "
                        f"{cfg.supernet.batch_size} split between them")
    # The first process of every machine prepares the data (cached, under a file lock); the others open it.
    if dist.local_rank == 0:
        dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=dist.is_main)
    dist.barrier()
    if dist.local_rank != 0:
        dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=False)
    wanted = modalities or tuple(cfg.modalities)
    missing_modalities(wanted, dataset.modalities, dataset.name)  # a plugin's: known once built, before training

    results = {}
    for modality in wanted:
        files = cfg.layout.supernet(modality)
        if force and dist.is_main:
            remove_outputs(files)
        trainer = SupernetTrainer(cfg, modality, dataset, dist.device, dist=dist)
        finished, has_checkpoint = dist.on_main(lambda: (trainer.finished_metrics(), files.checkpoint.exists()))
        if finished is not None:
            if dist.is_main:
                console.log(f"{modality}: supernet already trained ({files.supernet}); --force retrains it")
            results[modality] = finished
            continue
        results[modality] = trainer.run(resume=resume and has_checkpoint, keep_checkpoint=keep_checkpoint)
        if dist.is_main:
            console.log(f"{modality}: wrote {files.supernet} and {files.metrics}")
    if dist.is_main:
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
