"""``harmonic-nas status`` on real stores, as a real process: the JSON view, the resume hint of a baseline,
and ``--watch`` ending when the process that owns the search is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

from helpers import CLI, ROOT, cli, make_store

from harmonic_nas.layout import RunLayout
from harmonic_nas.search.store import RunStore


def status(*args: object) -> subprocess.CompletedProcess[str]:
    return cli("status", *map(str, args), timeout=120)


def test_json_is_one_object_with_the_run_front_and_events(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir)
    with RunStore.open(run_dir) as store:
        store.log("generation", "generation 0 done: front 1", 0)
    proc = status(run_dir, "--json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    [line] = proc.stdout.splitlines()
    shown = json.loads(line)
    assert shown["name"] == "smoke" and shown["variant"] == "sb-sf-hw"
    assert shown["state"] == "interrupted"  # one of two generations finished, no process owns the search
    assert shown["generations"] == {"done": 1, "total": 2, "running": None, "running_since": None}
    assert shown["evaluations"] == {"backbone": 0, "multimodal": 1, "multimodal_in_running_generation": 0}
    assert shown["last_generation"] == {"front_size": 1, "best_val_metric": 0.5, "hypervolume": 0.1}
    assert shown["front"] == [{"id": "c0ffee", "val": 0.5, "test": None, "test_shuffled": {}, "latency_ms": 1.0,
                               "energy_mj": 2.0, "modalities": []}]
    assert [(e["kind"], e["message"]) for e in shown["events"]] == [("generation", "generation 0 done: front 1")]
    assert shown["resume"] == f"harmonic-nas search --resume {run_dir}"


def test_a_finished_front_shows_what_each_model_loses_with_a_modality_shuffled(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir)
    assert "shuffled" not in status(run_dir).stderr  # no test scores yet: no table claims anything
    with RunStore.open(run_dir) as store:
        store.set_test_metric("c0ffee", 0.75, {"image": 0.25, "audio": 0.745})
    text = status(run_dir)
    assert text.returncode == 0, text.stderr
    row = next(line for line in text.stderr.splitlines() if "c0ffee" in line and "-50.0" in line)
    assert row.strip(" │").split() == ["c0ffee", "│", "0.7500", "│", "-50.0", "│", "-0.5"], row
    shown = json.loads(status(run_dir, "--json").stdout)
    assert shown["front"][0]["test"] == 0.75 and shown["front"][0]["test_shuffled"] == {"image": 0.25, "audio": 0.745}


def test_a_stopped_baseline_is_resumed_with_its_variant(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir, variant="fb-ff", finish=False)
    hint = f"harmonic-nas search --resume {run_dir} --variant fb-ff"
    text = status(run_dir, "--variant", "fb-ff")
    assert text.returncode == 0, text.stderr
    assert "generation 0 stopped: 1 multimodal evaluations done" in text.stderr
    assert f"resume with: {hint}" in " ".join(text.stderr.split()), text.stderr  # joined: rich wraps at 80
    assert json.loads(status(run_dir, "--variant", "fb-ff", "--json").stdout)["resume"] == hint


def test_watch_waits_for_the_search_and_ends_when_its_process_is_gone(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    owner = subprocess.Popen(["sleep", "300"])  # the process of a `run` that has not reached its search yet
    try:
        holder = {"host": socket.gethostname(), "pid": owner.pid, "command": "harmonic-nas run", "since": "now"}
        RunLayout(run_dir).lock.write_text(json.dumps(holder) + "\n")
        watch = subprocess.Popen([*CLI, "status", str(run_dir), "--watch", "--interval", "0.2", "--json"], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "waiting for the search to start" in watch.stderr.readline()  # type: ignore[union-attr]
        make_store(run_dir, finish=False)
        assert json.loads(watch.stdout.readline())["state"] == "running"  # type: ignore[union-attr]
        with RunStore.open(run_dir) as store:
            store.set_meta("owner", {"host": socket.gethostname(), "pid": owner.pid})
        time.sleep(1.0)
        assert watch.poll() is None, "--watch ended while the search's process was alive"
    finally:
        owner.kill()
        owner.wait()
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    states = [json.loads(line)["state"] for line in out.splitlines()]
    assert states == ["interrupted"]  # one line per change: nothing changed while it ran
    assert json.loads(out.splitlines()[-1])["resume"] == f"harmonic-nas search --resume {run_dir}"


def test_watch_of_a_finished_search_prints_it_once_and_exits(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir)
    with RunStore.open(run_dir) as store:  # the second generation too: the search is over
        store.start_generation(1, {})
        store.finish_generation(1, {"hypervolume": 0.2, "front_size": 1, "best_val_metric": 0.5, "seconds": 1.0},
                                [store.evaluation("c0ffee")])
    proc = status(run_dir, "--watch", "--interval", "0.2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("2 of 2 generations finished") == 1
    assert "evaluations stored; finished" in " ".join(proc.stderr.split())
    assert "resume with" not in proc.stderr


def test_status_answers_without_torch(tmp_path: Path) -> None:
    """status reads the store and prints: it must not wait seconds for torch (a loaded machine: 10 s)."""
    run_dir = tmp_path / "run"
    make_store(run_dir)
    for view in ([], ["--json"]):
        proc = subprocess.run([*CLI[:1], "-X", "importtime", *CLI[1:], "status", str(run_dir), *view], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        assert "harmonic_nas.search.status" in imported and "torch" not in imported, view
