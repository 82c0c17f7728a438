"""Rich console and progress bars shared by every long-running command.

Log lines carry their time but no source location (rich's default ``file.py:NN``, a hyperlink under tmux,
is noise for the user). On a terminal a progress display is a live bar; in a log (a pipe, a file, CI) rich
would print it once when it stops, after every line logged meanwhile, so there it is plain lines instead,
in order with the others."""

from __future__ import annotations

import datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, log_path=False)

LINE_INTERVAL_S = 10.0  # a task's progress line in a log: at most one per interval, plus its last one


def make_progress(*extra_fields: str, transient: bool = False) -> Progress:
    """A progress bar with count, ETA and the named task fields shown as ``name=value``; when the console
    is not a terminal, a :class:`LineProgress` that logs the same as plain lines."""
    if not console.is_terminal and not console.is_jupyter:  # a notebook shows rich's live bars
        return LineProgress(console=console)
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    ]
    columns += [TextColumn(f"{name}={{task.fields[{name}]}}") for name in extra_fields]
    return Progress(*columns, console=console, transient=transient)


def _clock(seconds: float | None) -> str:
    return "-" if seconds is None else str(datetime.timedelta(seconds=max(0, int(seconds))))


def progress_line(task: Task) -> str:
    """``description done/total (pct%), elapsed H:MM:SS, eta H:MM:SS, field=value ...``"""
    done = f"{task.completed:g}"
    if task.total is not None:
        done += f"/{task.total:g} ({task.percentage:.0f}%)"
    eta = None if task.finished else task.time_remaining
    fields = "".join(f", {name}={value}" for name, value in task.fields.items())
    return f"{task.description} {done}, elapsed {_clock(task.finished_time or task.elapsed)}, eta {_clock(eta)}{fields}"


class LineProgress(Progress):
    """A rich Progress without a live display: each visible task logs :func:`progress_line` when it has
    advanced and ``LINE_INTERVAL_S`` passed since its last line, when it finishes, and at the end if it
    advanced since. ``disable`` (set by a process that must stay quiet) silences it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._last_line: dict[TaskID, tuple[float, float]] = {}  # task -> (time, completed) of its last line

    def start(self) -> None:
        """No live display to start."""

    def stop(self) -> None:
        for task in self.tasks:
            if self._last_line[task.id][1] != task.completed:
                self._log(task)

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._last_line[task_id] = (self.get_time(), self._tasks[task_id].completed)
        return task_id

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._maybe_log(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_log(task_id)

    def _maybe_log(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        when, completed = self._last_line[task_id]
        if task.completed != completed and (task.finished or self.get_time() - when >= LINE_INTERVAL_S):
            self._log(task)

    def _log(self, task: Task) -> None:
        self._last_line[task.id] = (self.get_time(), task.completed)
        if task.visible and not self.disable:
            self.console.log(progress_line(task), markup=False, highlight=False)
