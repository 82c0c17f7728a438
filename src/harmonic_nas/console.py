"""Rich console and progress bars shared by every long-running command.

Log lines carry their time but no source location (rich's default ``file.py:NN``, a hyperlink under tmux,
is noise for the user). On a terminal a progress display is a live bar; in a log (a pipe, a file, CI) rich
would print it once when it stops, after every line logged meanwhile, so there it is plain lines instead,
in order with the others."""

from __future__ import annotations

import datetime
import threading
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
    advanced and ``interval`` seconds passed since its last line, when it finishes, and at the end if it
    advanced since. A task that has not finished and has been quiet for ``interval`` (one stage-2 evaluation
    takes 15-25 s) logs its line again from a heartbeat thread, so a log never looks hung.
    ``disable`` (set by a process that must stay quiet) silences it."""

    def __init__(self, interval: float = LINE_INTERVAL_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interval = interval
        self._last_line: dict[TaskID, tuple[float, float]] = {}  # task -> (time, completed) of its last line
        self._stopped = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def start(self) -> None:
        """No live display to start; the heartbeat that logs quiet unfinished tasks."""
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
            self._heartbeat.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with self._lock:
            for task in self.tasks:
                if self._last_line[task.id][1] != task.completed:
                    self._log(task)

    def _beat(self) -> None:
        while not self._stopped.wait(min(1.0, self.interval / 4)):
            with self._lock:
                for task in self.tasks:
                    if not task.finished and self.get_time() - self._last_line[task.id][0] >= self.interval:
                        self._log(task)

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        with self._lock:  # the heartbeat must never see a task without its last line
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
        with self._lock:
            task = self._tasks[task_id]
            when, completed = self._last_line[task_id]
            if task.completed != completed and (task.finished or self.get_time() - when >= self.interval):
                self._log(task)

    def _log(self, task: Task) -> None:
        self._last_line[task.id] = (self.get_time(), task.completed)
        if task.visible and not self.disable:
            self.console.log(progress_line(task), markup=False, highlight=False)
