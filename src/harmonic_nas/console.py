"""Rich console and progress bars shared by every long-running command."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def make_progress(*extra_fields: str, transient: bool = False) -> Progress:
    """A progress bar with count, ETA and the named task fields shown as ``name=value``."""
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
