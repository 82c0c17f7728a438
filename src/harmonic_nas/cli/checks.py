"""What a command checks before it starts any work, so that bad input costs seconds, not the minutes of
preparation and training a late failure would throw away."""

from __future__ import annotations

from pathlib import Path

import click

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import UserError
from harmonic_nas.runlock import run_lock


def at_least_one(option: str, value: int | None) -> None:
    """A count option (threads, workers, batch size ...) given on the command line is positive."""
    if value is not None and value < 1:
        raise UserError(f"{option} must be at least 1, found {value}")


def dataset_modalities(cfg: ExperimentConfig, where: str) -> None:
    """The dataset has every modality of the config ``where`` (without preparing it when its recipe
    names its modalities)."""
    from harmonic_nas.data.registry import require_modalities

    require_modalities(cfg.dataset, cfg.modalities, where)


def given_lut(cfg: ExperimentConfig, where: str) -> None:
    """``hardware.lut`` of the config ``where``, when set, is a valid LUT measured as the config's hardware
    section asks."""
    if cfg.hardware.lut is not None:
        from harmonic_nas.search.runner import load_run_lut

        try:
            load_run_lut(cfg)
        except UserError as exc:
            raise UserError(f"{where}: hardware.lut: {exc}") from None


def own_run(run_dir: Path, *, existing: bool = False) -> None:
    """Hold the lock of ``run_dir`` until the command ends: a second command writing into the run stops
    now, not after it has trained and searched everything again (see runlock). ``existing``: a command
    that reads the run first creates nothing; it reports a missing run itself."""
    if existing and not Path(run_dir).is_dir():
        return
    click.get_current_context().with_resource(run_lock(run_dir))
