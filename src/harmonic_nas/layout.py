"""Where everything of a run lives: the one place that spells a path inside a run directory.

::

    RUN_DIR/config.yaml                  the resolved config (train-supernet writes it)
    RUN_DIR/supernets/<m>.pt             trained supernet; <m>.metrics.json, <m>.ckpt (training state)
    RUN_DIR/lut/<device>.json            the LUT profile writes (unless hardware.lut names another)
    RUN_DIR/run.sqlite                   the full method's search store; fusion/<key>.pt, search.log beside it
    RUN_DIR/baselines/<variant>/         a baseline's store, laid out the same way
    RUN_DIR/report/index.html            the report (plots and fusion diagrams beside it)
    RUN_DIR/models/<key>/                an exported Pareto model (arch.json, manifest.json, model.pt, model.onnx)
    RUN_DIR/fusion-search/<id>.json      a `fusion-search` result (weights .pt and diagram .dot beside it)
    RUN_DIR/reproduce/<id>.json          a `reproduce` result (weights .pt beside it)
    RUN_DIR/timings.json                 wall time of each step of every `run`
    RUN_DIR/.lock                        who holds the run (runlock)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SupernetFiles:
    """The files of one modality's supernet."""

    folder: Path
    modality: str

    @property
    def supernet(self) -> Path:
        return self.folder / f"{self.modality}.pt"

    @property
    def metrics(self) -> Path:
        return self.folder / f"{self.modality}.metrics.json"

    @property
    def checkpoint(self) -> Path:
        return self.folder / f"{self.modality}.ckpt"


@dataclass(frozen=True)
class StoreLayout:
    """The files of one search variant: its store, the derived fusion network of every evaluated
    candidate, and its log."""

    folder: Path

    @property
    def store(self) -> Path:
        return self.folder / "run.sqlite"

    @property
    def log(self) -> Path:
        return self.folder / "search.log"

    def fusion(self, key: str) -> Path:
        """The derived fusion network of candidate ``key``."""
        return self.folder / "fusion" / f"{key}.pt"


@dataclass(frozen=True)
class RunLayout:
    """The paths of the run directory ``root`` (see the module docstring)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of_store(cls, folder: Path, baseline: str | None) -> RunLayout:
        """The run a store folder belongs to: the folder itself for the full method, RUN_DIR for a
        baseline's store in RUN_DIR/baselines/<baseline>/."""
        folder = Path(folder)
        if baseline is not None and folder.parent.name == "baselines":
            return cls(folder.parent.parent)
        return cls(folder)

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def supernet(self, modality: str) -> SupernetFiles:
        return SupernetFiles(self.root / "supernets", modality)

    @property
    def report(self) -> Path:
        return self.root / "report"

    def lut(self, device: str, given: Path | None = None) -> Path:
        """The LUT of ``device``: ``given`` (hardware.lut; a relative path that does not exist from here
        but does inside the run is taken there, so a copied run finds its table), else lut/<device>.json."""
        if given is None:
            return self.root / "lut" / f"{device}.json"
        given = Path(given)
        if not given.is_absolute() and not given.exists() and (self.root / given).exists():
            return self.root / given
        return given

    @property
    def models(self) -> Path:
        return self.root / "models"

    def search(self, baseline: str | None = None) -> StoreLayout:
        """The store of the full method (``baseline`` None) or of the baseline variant ``baseline``."""
        return StoreLayout(self.root if baseline is None else self.root / "baselines" / baseline)

    @property
    def timings(self) -> Path:
        return self.root / "timings.json"

    def fusion_search_result(self, candidate_id: str) -> Path:
        """Where `fusion-search` writes its result JSON (weights and diagram beside it)."""
        return self.root / "fusion-search" / f"{candidate_id}.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def reproduction(self, candidate_id: str) -> Path:
        """Where `reproduce` writes its result JSON (weights beside it)."""
        return self.root / "reproduce" / f"{candidate_id}.json"
