"""The step-time history of `harmonic-nas run` (RUN_DIR/timings.json)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harmonic_nas.layout import RunLayout
from harmonic_nas.run_timings import StepTimer, read_runs


def test_each_run_is_kept_and_written_after_every_step(tmp_path: Path) -> None:
    first = StepTimer(tmp_path / "run")
    first.record("prepare", 12.34)
    assert read_runs(tmp_path / "run") == [{"started": first.started, "steps_s": {"prepare": 12.3}}]
    first.record("search", 60.0)  # then interrupted
    second = StepTimer(tmp_path / "run")
    second.record("prepare", 0.04)
    runs = read_runs(tmp_path / "run")
    assert [r["steps_s"] for r in runs] == [{"prepare": 12.3, "search": 60.0}, {"prepare": 0.0}]


def test_a_file_that_is_not_a_history_is_reported_then_replaced(tmp_path: Path) -> None:
    RunLayout(tmp_path).timings.write_text('{"prepare": 1.0}')  # the old flat format
    with pytest.raises(ValueError, match="expected"):
        read_runs(tmp_path)
    StepTimer(tmp_path).record("prepare", 1.0)
    assert [r["steps_s"] for r in read_runs(tmp_path)] == [{"prepare": 1.0}]
    assert read_runs(tmp_path / "missing") == []
