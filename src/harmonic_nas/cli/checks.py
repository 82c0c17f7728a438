"""What a command checks before it starts any work, so that bad input costs seconds, not the minutes of
preparation and training a late failure would throw away."""

from __future__ import annotations

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.errors import UserError


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
