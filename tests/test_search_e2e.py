"""The whole job on configs/smoke.yaml through the real command line: `run` end to end, then a search
killed with SIGKILL mid-run and resumed, which must end with the same front as the uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import CLI, ROOT, SMOKE, as_a_shell_starts, cli

from harmonic_nas.search.store import RunStore

# The session fixture smoke_run (conftest) runs the whole smoke job (under a minute on a quiet 2-core machine).
pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]


def front(run_dir: Path) -> list[tuple[str, float, float, float]]:
    with RunStore.open(run_dir) as store:
        return [(e.key, e.val_metric, e.latency_ms, e.energy_mj) for e in store.pareto_front()]


def test_run_leaves_supernets_lut_store_and_front(smoke_run: Path) -> None:
    for path in ("supernets/image.pt", "supernets/audio.pt", "lut/cpu.json", "run.sqlite", "timings.json",
                 "report/index.html"):
        assert (smoke_run / path).is_file(), path
    with RunStore.open(smoke_run) as store:
        assert [g["generation"] for g in store.generations() if g["summary"]] == [0, 1]
        final = store.pareto_front()
        assert final and all(e.test_metric is not None for e in final)
    lut = json.loads((smoke_run / "lut" / "cpu.json").read_text())
    assert lut["calibration"]["latency"]["models"] == 6 and lut["calibration"]["reference"]["latency_ms"] > 0
    for e in final:  # every Pareto model exported, with its architecture, timed beside the LUT's reference
        assert (smoke_run / "models" / e.key / "model.onnx").is_file()
        assert (smoke_run / "models" / e.key / "arch.json").is_file()
        (measured,) = [x["measured"] for x in json.loads((smoke_run / "models" / e.key / "manifest.json")
                                                          .read_text())["exports"]]
        assert measured["reference_ms"] > 0
        assert measured["reference_calibration_ms"] == lut["calibration"]["reference"]["latency_ms"]
    assert "x its calibration time" in (smoke_run / "report" / "index.html").read_text()  # the hover of "measured"
    status = cli("status", str(smoke_run))
    assert status.returncode == 0 and "2 of 2 generations finished" in status.stderr


def test_a_second_run_reuses_everything(smoke_run: Path) -> None:
    before = front(smoke_run)
    calibration = json.loads((smoke_run / "lut" / "cpu.json").read_text())["calibration"]
    again = cli("run", "--config", str(SMOKE), "--out", str(smoke_run))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already trained" in again.stderr and "already exported" in again.stderr
    assert "best multimodal " in again.stderr and "[image+audio] (val " in again.stderr  # text, not rich markup
    assert front(smoke_run) == before
    assert json.loads((smoke_run / "lut" / "cpu.json").read_text())["calibration"] == calibration
    first, second = json.loads((smoke_run / "timings.json").read_text())["runs"][-2:]  # the history keeps both
    assert all(first["steps_s"][step] > second["steps_s"][step] for step in ("train-supernet", "search"))


def stored_evaluations(path: Path) -> int:
    if not path.exists():
        return 0
    try:  # read-only: the poll must never create the file the search is about to create
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.OperationalError:  # tables not created yet
        return 0


def test_kill_9_then_resume_ends_with_the_same_front(smoke_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    for part in ("supernets", "lut"):
        shutil.copytree(smoke_run / part, run_dir / part)
    log = (tmp_path / "search.err").open("w")
    process = subprocess.Popen([*CLI, "search", "--config", str(SMOKE), "--out", str(run_dir)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 300
    while stored_evaluations(run_dir / "run.sqlite") < 6 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, (tmp_path / "search.err").read_text()[-2000:]
    os.kill(process.pid, signal.SIGSTOP)  # alive but paused: `status` sees it running, however long it takes
    assert "running for" in cli("status", str(run_dir)).stderr
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = stored_evaluations(run_dir / "run.sqlite")
    assert kept >= 6
    status = cli("status", str(run_dir))
    assert "interrupted" in status.stderr and "search --resume" in status.stderr, status.stderr
    resumed = cli("search", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with RunStore.open(run_dir) as store:
        assert any(e["kind"] == "resume" for e in store.events(100))
    assert front(run_dir) == front(smoke_run)


def test_ctrl_c_mid_search_is_one_line_and_stops_every_worker(smoke_run: Path, tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the whole process group: the workers leave it to the search, which
    prints the interrupted: line, kills them and keeps what is stored."""
    run_dir = tmp_path / "stopped"
    for part in ("supernets", "lut"):
        shutil.copytree(smoke_run / part, run_dir / part)
    process = subprocess.Popen([*CLI, "search", "--config", str(SMOKE), "--out", str(run_dir)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=as_a_shell_starts)
    deadline = time.time() + 300
    while stored_evaluations(run_dir / "run.sqlite") < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the search ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted: ")
    deadline = time.time() + 60
    while not group_is_gone(process.pid):  # no worker outlives the search
        assert time.time() < deadline, "a process of the search outlived it"
        time.sleep(0.1)
    assert stored_evaluations(run_dir / "run.sqlite") >= 2


def group_is_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    missing = cli("search", "--config", str(SMOKE), "--out", str(tmp_path / "empty"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "no trained supernet" in missing.stderr
    no_store = cli("status", str(tmp_path))
    assert no_store.returncode == 2 and "no search store" in no_store.stderr


def test_a_copied_run_resumes_in_its_new_place(smoke_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(smoke_run, copy)
    refused = cli("search", "--resume", str(copy), "--set", "fusion.epochs=9")  # would change results
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr[-2000:]
    assert "another config (fusion.epochs: " in refused.stderr and "-> 9)" in refused.stderr
    resumed = cli("search", "--resume", str(copy), "--workers", "1", "--set", "runtime.feature_cache_mb=256")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert front(copy) == front(smoke_run)
    with RunStore.open(smoke_run) as original, RunStore.open(copy) as moved:
        assert len(moved.events(1000)) > len(original.events(1000))  # the copy logged its resume, not the original
