"""``harmonic-nas train-supernet``: train the once-for-all supernet of one or every modality."""

from __future__ import annotations

import os
from pathlib import Path

import click

from harmonic_nas.cli.params import DEVICE, computed, config_option, set_option
from harmonic_nas.config import load_config
from harmonic_nas.console import console
from harmonic_nas.errors import UserError


@click.command("train-supernet")
@config_option(required=True)
@click.option("--modality", "modalities", multiple=True,
              help=computed("Modality to train (repeatable).", "every modality of the config"))
@click.option("--device", type=DEVICE, help=computed("Device to train on.", "from runtime.device"))
@click.option("--resume", is_flag=True, help="Continue an interrupted training from its last epoch checkpoint.")
@click.option("--force", is_flag=True, help="Retrain even if a finished supernet exists.")
@click.option("--keep-checkpoint", is_flag=True,
              help="Keep <m>.ckpt (last epoch's weights, optimizer and schedule; 4x the supernet) after training.")
@set_option()
def train_supernet(
    config_path: Path, modalities: tuple[str, ...], device: str | None, resume: bool, force: bool,
    keep_checkpoint: bool, overrides: tuple[str, ...],
) -> None:
    """Train supernets with the sandwich rule and in-place distillation; writes runs/<name>/supernets/<m>.pt
    and <m>.metrics.json (val metric of the max, min and random subnets after BN recalibration).

    Under torchrun (WORLD_SIZE > 1) the processes share every batch (gloo on CPU, nccl on CUDA with one
    GPU per process); rank 0 owns the run directory and prints; see docs/scale-out.md.

    \b
    Examples:
      harmonic-nas train-supernet --config configs/smoke.yaml --set output.run_dir=/tmp/smoke
      harmonic-nas train-supernet --config configs/smoke.yaml --modality image --resume --set supernet.epochs=2
      harmonic-nas train-supernet --config configs/demo.yaml --device cpu --force
    """
    from harmonic_nas.cli.views import supernet_table
    from harmonic_nas.pipeline import train_supernets
    from harmonic_nas.runtime import configure_threads, resolve_device
    from harmonic_nas.supernet.distributed import from_env

    cfg = load_config(config_path, list(overrides))
    unknown = [m for m in modalities if m not in cfg.modalities]
    if unknown:
        raise UserError(f"--modality {unknown[0]!r} is not in {config_path} (has {', '.join(cfg.modalities)})")
    configure_threads(cfg.runtime.threads)
    dist = from_env(resolve_device(device or cfg.runtime.device))
    try:
        results = train_supernets(cfg, modalities=modalities, resume=resume, force=force,
                                  keep_checkpoint=keep_checkpoint, dist=dist, source=str(config_path))
    except UserError as exc:
        if os.environ.get("RANK", "0") == "0":
            raise
        raise SystemExit(exc.exit_code) from None  # rank 0 reports it, once
    finally:
        dist.shutdown()
    if dist.is_main:
        console.print(supernet_table(results))
