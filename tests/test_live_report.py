"""The report page a search refreshes after every generation: written without fusion diagrams, and a
failure is one logged line, never an exception into the search."""

from __future__ import annotations

from pathlib import Path

from helpers import make_store

from harmonic_nas.pipeline.live_report import LiveReport


def test_a_refresh_writes_the_page_without_diagrams(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir, finish=False)
    lines: list[str] = []
    LiveReport(run_dir, lines.append).refresh(0)
    html = (run_dir / "report" / "index.html").read_text(encoding="utf-8")
    assert lines == []
    assert "c0ffee" in html and "diagram drawn when the search ends" in html
    assert not (run_dir / "report" / "fusion").exists()  # no Graphviz run during the search


def test_a_failing_refresh_is_one_logged_line(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir)
    (run_dir / "report").write_text("a file where the report folder goes")
    lines: list[str] = []
    page = LiveReport(run_dir, lines.append)
    page.refresh(0)
    assert page.finish() is None
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[0].startswith("report not written after generation 0 (") and str(run_dir / "report") in lines[0]
    assert lines[1].startswith("report not written at the end of the search (")


def test_a_baseline_alone_gets_no_page(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir, variant="fb-ff")
    lines: list[str] = []
    assert LiveReport(run_dir, lines.append).finish() is None
    assert lines == [] and not (run_dir / "report").exists()
