"""What every builtin dataset and adapter provides: options, source versions, licences, a build step.

One code path for all of them: the registry fingerprints (recipe, version, options, sources), and the
cache writes, normalises, checksums and opens; a recipe only turns its sources into raw arrays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harmonic_nas.data.base import ModalitySpec, Task
from harmonic_nas.data.cache import CacheWriter, DatasetInfo
from harmonic_nas.data.options import Options
from harmonic_nas.data.progress import Reporter


@dataclass
class BuildContext:
    """Handed to ``Recipe.build``: validated options, the user's folder (adapters), where to write."""

    name: str
    options: Any
    path: Path | None
    writer: CacheWriter
    progress: Reporter
    info: DatasetInfo | None = None

    declared: tuple[str, ...] | None = None  # the recipe's ``modalities``, when it names them

    def declare(
        self, modalities: dict[str, ModalitySpec], task: Task, num_classes: int, class_names: list[str]
    ) -> DatasetInfo:
        if self.declared is not None and set(modalities) != set(self.declared):
            raise RuntimeError(f"recipe {self.name!r} declares modalities {list(self.declared)} but built "
                               f"{list(modalities)}")
        self.info = DatasetInfo(self.name, modalities, task, num_classes, class_names)
        return self.info


class Recipe:
    """Base of builtin datasets (no path) and adapters (read a user's folder)."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    needs_path: ClassVar[bool] = False
    description: ClassVar[str] = ""
    OptionsModel: ClassVar[type[Options]] = Options
    # The modality names ``build`` declares, known before any data is read: a config naming another one
    # is refused before minutes of preparation and training. None: only the built dataset tells.
    modalities: ClassVar[tuple[str, ...] | None] = None

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        """Name -> version (or content fingerprint) of every input; raises UserError if one is missing."""
        raise NotImplementedError

    def licences(self, options: Any) -> list[str]:
        return []

    def build(self, ctx: BuildContext) -> None:
        """Write raw float32 arrays for train/val/test and targets through ``ctx.writer``."""
        raise NotImplementedError

    def detect(self, path: Path) -> bool:
        """Adapters: does ``path`` look like this format (for ``data prepare PATH``)."""
        return False
