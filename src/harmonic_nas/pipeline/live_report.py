"""The report page kept current while a search runs, so that reloading RUN_DIR/report/index.html shows the
run so far. It must never stop or slow the search much: a refresh draws no fusion diagram (Graphviz runs
once, for the final page), is skipped while the last one cost more than ``BUDGET`` of the search's time
since, and a failure is one logged line; the search goes on."""

from __future__ import annotations

import time
from pathlib import Path

from harmonic_nas.layout import RunLayout
from harmonic_nas.pipeline.common import Log

BUDGET = 0.1  # at most this share of the search's wall time goes to refreshing its page


class LiveReport:
    """Refreshes the report of ``run_dir`` after each generation and writes the final page at the end.
    Nothing while the run has no full-method store: the page shows that search (a baseline's only beside
    it)."""

    def __init__(self, run_dir: Path, log: Log) -> None:
        self.run_dir = Path(run_dir)
        self.log = log
        self._last_end = time.perf_counter()
        self._last_cost = 0.0

    def refresh(self, generation: int) -> None:
        """The quick page after ``generation``, unless the budget says to skip this one."""
        if self._last_cost > BUDGET * (time.perf_counter() - self._last_end):
            return
        start = time.perf_counter()
        self._write(f"after generation {generation}", diagrams=False)
        self._last_end = time.perf_counter()
        self._last_cost = self._last_end - start

    def finish(self) -> Path | None:
        """The full page (fusion diagrams drawn) once the search has ended; None if it was not written."""
        return self._write("at the end of the search", diagrams=True)

    def _write(self, when: str, *, diagrams: bool) -> Path | None:
        from harmonic_nas.report.writer import write_report

        if not RunLayout(self.run_dir).search().store.is_file():
            return None
        try:
            return write_report(self.run_dir, diagrams=diagrams)
        except Exception as exc:  # noqa: BLE001 -- whatever breaks the page must not break the search
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            self.log(f"report not written {when} ({type(exc).__name__}: {first})")
            return None
