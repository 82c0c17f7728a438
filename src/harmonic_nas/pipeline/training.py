"""The first steps: the data, prepared once into its cache, and the supernet of every modality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harmonic_nas.config import ExperimentConfig, dump_config
from harmonic_nas.console import console
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.pipeline.common import Log, check_modalities, load_data, writing

if TYPE_CHECKING:
    from harmonic_nas.supernet.distributed import Dist


def prepare(cfg: ExperimentConfig, *, progress: bool = True) -> MultimodalDataset:
    """The config's dataset: prepared into its cache the first time (later calls open the cache), opened
    memory-mapped, with the config's limits applied; checked to have every modality of the config."""
    from harmonic_nas.data.registry import missing_modalities

    check_modalities(cfg, None, "the config")
    dataset = load_data(cfg, None, progress)
    missing_modalities(cfg.modalities, dataset.modalities, dataset.name, "the config")
    return dataset


def train_supernets(
    cfg: ExperimentConfig,
    *,
    modalities: Sequence[str] = (),
    dataset: MultimodalDataset | None = None,
    device: str | None = None,
    resume: bool = False,
    force: bool = False,
    keep_checkpoint: bool = False,
    dist: Dist | None = None,
    source: str = "the config",
    log: Log = console.log,
) -> dict[str, dict[str, Any]]:
    """Train the supernet of each of ``modalities`` (default: every modality of the config), or reuse it
    when a finished one was trained with these settings; returns each one's metrics (val metric of the
    max, min and random subnets after BN recalibration), as written to RUN_DIR/supernets/<m>.metrics.json.

    ``resume`` continues an interrupted training from its last epoch checkpoint, ``force`` retrains;
    ``device`` defaults to runtime.device. Under torchrun pass the processes' ``dist``
    (``supernet.distributed.from_env``): rank 0 owns the run directory, logs and writes the files.
    ``source`` names the config in error messages (its file).
    """
    from harmonic_nas.data.registry import missing_modalities
    from harmonic_nas.runtime import configure_threads, resolve_device
    from harmonic_nas.supernet import SupernetTrainer, remove_outputs
    from harmonic_nas.supernet.distributed import Dist

    if resume and force:
        raise UserError("resume (--resume) and force (--force) contradict each other: choose one")
    check_modalities(cfg, dataset, source)
    dist = dist or Dist(device=resolve_device(device or cfg.runtime.device))
    configure_threads(cfg.runtime.threads)
    with writing(cfg.run_dir if dist.is_main else None):
        if dist.is_main:
            dump_config(cfg, cfg.layout.config)
            if dist.enabled:
                log(f"distributed: {dist.world_size} processes on {dist.device.type}, each batch of "
                    f"{cfg.supernet.batch_size} split between them")
        # The first process of every machine prepares the data (cached, under a file lock); the others open it.
        if dist.local_rank == 0:
            dataset = load_data(cfg, dataset, progress=dist.is_main)
        dist.barrier()
        if dist.local_rank != 0:
            dataset = load_data(cfg, dataset, progress=False)
        assert dataset is not None
        wanted = list(modalities) or list(cfg.modalities)
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
                    log(f"{modality}: supernet already trained ({files.supernet}); --force retrains it")
                results[modality] = finished
                continue
            results[modality] = trainer.run(resume=resume and has_checkpoint, keep_checkpoint=keep_checkpoint)
            if dist.is_main:
                log(f"{modality}: wrote {files.supernet} and {files.metrics}")
        return results


