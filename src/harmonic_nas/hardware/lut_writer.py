"""Incremental LUT writing, so that a killed profile keeps its finished entries and a rerun resumes."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType

from harmonic_nas.errors import UserError
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader
from harmonic_nas.hardware.specs import LayerSpec


class LutWriter:
    """Adds entries to the LUT at ``path``, rewriting it atomically every ``every`` entries or ``seconds``.

    An existing file is resumed (its entries are kept and ``key in writer`` tells what to skip) if it
    was measured the same way; otherwise the writer refuses rather than mixing measurements. A hard kill
    loses at most the entries since the last flush; leaving a ``with`` block (even by an exception or
    Ctrl-C) flushes.
    """

    def __init__(self, path: str | Path, header: LutHeader, every: int = 20, seconds: float = 30.0) -> None:
        if every < 1 or seconds < 0:
            raise ValueError("LutWriter needs every >= 1 and seconds >= 0")
        self.path = Path(path)
        self.every = every
        self.seconds = seconds
        if self.path.exists():
            self.table = LookupTable.load(self.path)
            differences = self.table.header.differences(header)
            if differences:
                raise UserError(
                    f"{self.path}: cannot resume, the file was measured with a different "
                    f"{', '.join(differences)} (file vs now); resume with the same settings or choose another --out"
                )
        else:
            self.table = LookupTable(header, path=self.path)
        self._pending = 0
        self._last_flush = time.monotonic()

    def __contains__(self, spec_or_key: object) -> bool:
        return spec_or_key in self.table

    def __len__(self) -> int:
        return len(self.table)

    def add(self, spec_or_key: LayerSpec | str, entry: LutEntry) -> str:
        """Store one measured entry; flushes when enough entries or time have accumulated."""
        key = self.table.add(spec_or_key, entry)
        self._pending += 1
        if self._pending >= self.every or time.monotonic() - self._last_flush >= self.seconds:
            self.flush()
        return key

    def flush(self) -> None:
        """Write everything added so far (a no-op when nothing is new and the file exists)."""
        if self._pending or not self.path.exists():
            self.table.save(self.path)
        self._pending = 0
        self._last_flush = time.monotonic()

    def __enter__(self) -> LutWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.flush()
