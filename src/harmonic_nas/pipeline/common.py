"""What the steps share: their narration, the run's lock, and the checks of their inputs that cost seconds,
not the minutes of preparation and training a late failure would throw away."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.runlock import run_lock

Log = Callable[[str], object]  # one line of what a step does (the console by default)


@contextlib.contextmanager
def writing(run_dir: Path | None, *, existing: bool = False) -> Iterator[None]:
    """Hold the lock of ``run_dir`` while a step writes into it: a second process writing into the run stops
    at once (runlock). None: the step writes outside any run. ``existing``: a step that reads the run first
    creates nothing; it reports a missing run itself."""
    if run_dir is None or (existing and not Path(run_dir).is_dir()):
        yield
        return
    with run_lock(run_dir):
        yield


def check_modalities(cfg: ExperimentConfig, dataset: MultimodalDataset | None, where: str) -> None:
    """The dataset has every modality of the config ``where``: the given one, else the config's (from
    what its recipe declares, without preparing it)."""
    from harmonic_nas.data.registry import missing_modalities, require_modalities

    if dataset is None:
        require_modalities(cfg.dataset, cfg.modalities, where)
    else:
        missing_modalities(cfg.modalities, dataset.modalities, dataset.name, where)


def check_given_lut(cfg: ExperimentConfig, where: str) -> None:
    """``hardware.lut`` of the config ``where``, when set, is a valid LUT measured as the config's hardware
    section asks."""
    if cfg.hardware.lut is not None:
        from harmonic_nas.search.runner import load_run_lut

        try:
            load_run_lut(cfg)
        except UserError as exc:
            raise UserError(f"{where}: hardware.lut: {exc}") from None


def load_data(cfg: ExperimentConfig, dataset: MultimodalDataset | None, progress: bool = True) -> MultimodalDataset:
    """``dataset`` if given, else the config's dataset (prepared into its cache once, limits applied)."""
    if dataset is not None:
        return dataset
    from harmonic_nas.data.registry import load_dataset

    return load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=progress)
