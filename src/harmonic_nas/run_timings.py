"""RUN_DIR/timings.json: the wall time of each step of every ``harmonic-nas run`` on that directory.

A history, not one record: a second run skips the finished steps in a second or so, and must not
overwrite the times of the run that did the work. Written after every step, so an interrupted run keeps
the times of the steps it finished.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harmonic_nas.jsonfile import write_json
from harmonic_nas.layout import RunLayout


def read_runs(run_dir: Path) -> list[dict[str, Any]]:
    """Every recorded run, oldest first: {"started": ISO time, "steps_s": {step: seconds}}. Raises
    ValueError if the file exists but is not such a history."""
    path = RunLayout(run_dir).timings
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) and isinstance(r.get("steps_s"), dict) for r in runs):
        raise ValueError(f"{path}: expected {{'runs': [{{'started': ..., 'steps_s': {{...}}}}]}}")
    return runs


class StepTimer:
    """Times the steps of one run and appends them to the run directory's history after each step."""

    def __init__(self, run_dir: Path) -> None:
        self.path = RunLayout(run_dir).timings
        self.steps: dict[str, float] = {}
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            self.earlier = read_runs(run_dir)
        except ValueError:  # an unreadable old history is replaced, not a reason to stop the run
            self.earlier = []

    def record(self, step: str, seconds: float) -> None:
        self.steps[step] = round(seconds, 1)
        write_json(self.path, {"runs": [*self.earlier, {"started": self.started, "steps_s": self.steps}]})
