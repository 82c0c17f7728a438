"""Progress reporting for dataset preparation: the console's progress display, nothing in tests or workers."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Protocol


class Step(Protocol):
    def advance(self, n: int = 1) -> None: ...


class Reporter(Protocol):
    """What a dataset builder sees: named steps with a known total."""

    def step(self, description: str, total: int | None = None) -> Step: ...


class _NullStep:
    def advance(self, n: int = 1) -> None:
        pass


class NullReporter:
    """Reports nothing (tests, library use with progress=False)."""

    def step(self, description: str, total: int | None = None) -> Step:
        return _NullStep()


class _RichStep:
    def __init__(self, progress: Any, task_id: Any) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task_id, n)


class RichReporter:
    """One bar per step; the previous step is marked complete when the next one starts."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._last: Any = None

    def step(self, description: str, total: int | None = None) -> Step:
        self._finish_last()
        self._last = self._progress.add_task(description, total=total)
        return _RichStep(self._progress, self._last)

    def _finish_last(self) -> None:
        if self._last is not None:
            task = self._progress.tasks[-1]
            self._progress.update(self._last, completed=task.total if task.total is not None else 1, total=task.total or 1)

    def close(self) -> None:
        self._finish_last()


@contextmanager
def reporter(enabled: bool) -> Iterator[Reporter]:
    """The console's progress display (console.make_progress: bars on a terminal, lines in a log) when
    ``enabled``, else a silent reporter."""
    if not enabled:
        yield NullReporter()
        return
    from harmonic_nas.console import make_progress

    with make_progress() as progress:
        rich_reporter = RichReporter(progress)
        yield rich_reporter
        rich_reporter.close()
