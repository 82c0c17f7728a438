"""Bad input replayed as real processes (``python -m harmonic_nas ...``): every case is one ``error:``
line on stderr, exit status 2, no traceback, no hang, and nothing written (a run's lock file aside).

The cases are those of issue 18: damaged run stores, files that cannot be written, hostile configs,
options and data that escaped validation, a run directory in use, an early Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import as_a_shell_starts, conv_spec, lut_entry, lut_header, make_store, write_avmnist

from harmonic_nas.config import load_config
from harmonic_nas.errors import UserError
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.search.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
CLI = [sys.executable, "-m", "harmonic_nas"]
LOCK = ".lock"


def cli(*args: object, timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)  # type: ignore[call-overload]


def one_error(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The single ``error:`` line of a failed command, which must contain every ``expected`` text."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr[-3000:]
    for text in expected:
        assert text in proc.stderr, proc.stderr
    return proc.stderr


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (a run's lock file aside) with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK}


# --- run stores ------------------------------------------------------------------------------------------
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:3000])


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(5000))


def drop_config(path: Path) -> None:
    change_rows(path, "DELETE FROM meta WHERE key = 'config'")


def arch_not_json(path: Path) -> None:
    change_rows(path, "UPDATE evaluations SET arch = '{not json'")


def change_rows(path: Path, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(sql)
    # closed: the change is in run.sqlite itself, no -wal file left for a reader to fold in


EVERY_READER = ("status", "report", "export", "search --resume")
# damage -> (how, the error, the commands that read the damaged part: a resume reads the meta only, before
# its slow set-up; the report shows a run whose config is lost, as it shows one still running)
DAMAGES = {"truncated": (truncate, "damaged or not a harmonic-nas run store", EVERY_READER),
           "random bytes": (random_bytes, "damaged or not a harmonic-nas run store", EVERY_READER),
           "no config row": (drop_config, "holds no experiment config", ("status", "export", "search --resume")),
           "arch not JSON": (arch_not_json, "a stored row is not JSON", ("status", "report", "export"))}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_store_is_one_line_in_every_command_that_reads_it(tmp_path: Path, damage: str) -> None:
    run_dir = tmp_path / "run"
    store = make_store(run_dir)
    change, expected, commands = DAMAGES[damage]
    change(store)
    before = files_in(run_dir)
    for command in commands:
        extra = ("--format", "pt") if command == "export" else ()
        one_error(cli(*command.split(), run_dir, *extra), str(store), expected, "restore the run from a copy")
    assert files_in(run_dir) == before


# --- files that cannot be written ------------------------------------------------------------------------
def lut_file(path: Path, n: int = 200) -> Path:
    """A valid LUT of ``n`` entries (about 100 bytes each)."""
    table = LookupTable(lut_header())
    for i in range(n):
        table.add(conv_spec(i), lut_entry(1.0))
    table.save(path)
    return path


def small_file_limit(kib: int) -> object:
    """A preexec_fn: writes beyond ``kib`` KiB fail (EFBIG), as on a disk that is full."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path: Path) -> None:
    source = lut_file(tmp_path / "a.json")
    out = tmp_path / "out"
    out.mkdir()
    (out / "merged.json").write_text("the table of an earlier merge\n")
    one_error(cli("lut", "merge", source, "--out", out / "merged.json", preexec_fn=small_file_limit(4)),
              str(out / "merged.json"), "cannot write", "file too large")
    one_error(cli("lut", "import", source, "--into", out, preexec_fn=small_file_limit(4)), str(out / "cpu.json"))
    assert files_in(out) == {"merged.json": b"the table of an earlier merge\n"}  # no temporary file left


def test_a_report_that_cannot_be_written_keeps_the_last_page(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir)
    done = cli("report", run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    before = files_in(run_dir / "report")
    # 36 KiB: the store's 32 KiB shared-memory file fits, the 42 KiB page (its plots inline) does not
    one_error(cli("report", run_dir, preexec_fn=small_file_limit(36)), "cannot write", "file too large")
    assert files_in(run_dir / "report") == before  # no .index.html.partial nor any other temporary file


def test_a_file_where_a_folder_belongs_is_one_line_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    one_error(cli("run", "--config", SMOKE, "--out", blocker), str(blocker), "not a folder")
    run_dir = tmp_path / "run"
    make_store(run_dir)
    one_error(cli("report", run_dir, "--out", blocker), str(blocker), "not a folder")
    table = lut_file(tmp_path / "a.json")
    one_error(cli("lut", "merge", table, "--out", blocker / "m.json"), str(blocker), "not a folder")
    one_error(cli("lut", "merge", table, "--out", tmp_path), str(tmp_path), "is a folder")
    assert blocker.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a.json", "run"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        one_error(cli("lut", "merge", lut_file(tmp_path / "a.json"), "--out", locked / "m.json"),
                  str(locked / "m.json"), "permission denied")
        one_error(cli("run", "--config", SMOKE, "--out", locked / "run"), str(locked / "run"), "permission denied")
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o755)


# --- configs ---------------------------------------------------------------------------------------------
# Nine levels of nine aliases each: 9**9 (387 million) strings once expanded, from 600 bytes.
ALIAS_BOMB = "\n".join([
    "name: t", "dataset:", "  options:", "    a: &a [" + ", ".join(["lol"] * 9) + "]",
    *(f"    {name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]" for prev, name in zip("abcdefgh", "bcdefghi")),
    "modalities:", "  image: {type: mbv3, stages: *i}", ""])


@pytest.mark.parametrize(("text", "expected"), [
    (ALIAS_BOMB, "more than 100000 values once YAML aliases"),
    ("name: t\n# " + "x" * (2 << 20) + "\n", "config file larger than 1024 kB"),
    (b"name: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 9)"),
    ("name: t\nmodalities: {image: {type: mbv3, stages: [{width: 16}]}}\nhardware: {device: ../../x}\n",
     "hardware.device: String should match pattern"),
    ("name: t\nmodalities: {a/b: {type: mbv3, stages: [{width: 16}]}}\n", "modalities.a/b (the name)"),
    ("name: t\nmodalities: {image: {type: mbv3, stages: [{width: 16}]}}\nsupernet: {epochs: [" +
     ", ".join(["[1, 2, 3]"] * 20000) + "]}\n", "supernet.epochs: Input should be a valid integer"),
])
def test_a_hostile_config_is_one_short_line_at_once(tmp_path: Path, text: str | bytes, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = one_error(cli("config", "check", path, timeout=60), str(path), expected)  # a hang: TimeoutExpired
    assert len(line) < 400  # a bounded repr of the value, whatever its size


def test_every_bad_set_or_option_value_is_one_line() -> None:
    one_error(cli("config", "check", SMOKE, "--set", "search.population=[1"),
              "--set 'search.population=[1': invalid YAML")
    one_error(cli("config", "check", SMOKE, "--set", "search.population"), "expected KEY.PATH=VALUE")
    one_error(cli("data", "info", "av-digits", "--option", "train_size=[1"), "--option 'train_size=[1': invalid YAML")


# --- options and what the job needs, checked before any work ----------------------------------------------
def test_counts_below_one_are_refused_before_any_set_up(tmp_path: Path) -> None:
    out = tmp_path / "run"
    one_error(cli("search", "--config", SMOKE, "--out", out, "--threads", "-3"), "--threads must be at least 1, found -3")
    one_error(cli("search", "--config", SMOKE, "--out", out, "--workers", "0"), "--workers must be at least 1, found 0")
    assert not out.exists()


def test_what_later_steps_need_is_checked_before_the_first(tmp_path: Path) -> None:
    out = tmp_path / "run"
    one_error(cli("run", "--config", SMOKE, "--out", out, "--set", "hardware.lut=" + str(tmp_path / "none.json")),
              f"{SMOKE}: hardware.lut: {tmp_path / 'none.json'}: LUT file not found")
    config = tmp_path / "c.yaml"  # the smoke config with a third modality that av-digits does not have
    three = "\n  depth: {type: mbv3, stages: [{width: 8}]}\nsupernet:"  # a third modality: 2+ cells read it
    config.write_text(SMOKE.read_text().replace("\nsupernet:", three, 1).replace("cells: [1, 2]", "cells: [2]"))
    one_error(cli("run", "--config", config, "--out", out), "modality 'depth' is not in dataset 'av-digits'")
    one_error(cli("train-supernet", "--config", config, "--set", f"output.run_dir={out}"), "'depth' is not in dataset")
    assert not out.exists()


# --- data --------------------------------------------------------------------------------------------------
def nan_image(root: Path) -> None:
    images = np.load(root / "image" / "train_data.npy")
    images[5, 3] = np.nan
    images[7, 1] = np.inf
    np.save(root / "image" / "train_data.npy", images)


def empty_test_split(root: Path) -> None:
    np.save(root / "image" / "test_data.npy", np.zeros((0, 784), np.float32))
    np.save(root / "audio" / "test_data.npy", np.zeros((0, 112, 112), np.float32))
    np.save(root / "test_labels.npy", np.zeros((0,), np.int64))


def absurd_label(root: Path) -> None:
    labels = np.load(root / "train_labels.npy")
    labels[0] = 2_000_000_000
    np.save(root / "train_labels.npy", labels)


@pytest.mark.parametrize(("spoil", "where", "expected"), [
    (nan_image, "image/train_data.npy", "2 NaN or infinite values (first in sample 5)"),
    (empty_test_split, "image/test_data.npy", "no samples"),
    (absurd_label, "train_labels.npy", "label 2000000000 implies 2000000001 classes, more than the 120 training"),
])
def test_bad_data_is_refused_at_preparation_and_never_cached(tmp_path: Path, spoil: object, where: str,
                                                              expected: str) -> None:
    root = write_avmnist(tmp_path / "avmnist")
    spoil(root)  # type: ignore[operator]
    cache = tmp_path / "cache"
    one_error(cli("data", "prepare", root, "--cache-dir", cache, "--quiet"), str(root / where), expected)
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []


# --- a run in use ------------------------------------------------------------------------------------------
HOLDER = """
import sys, time
from harmonic_nas.runlock import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def hold(run_dir: Path) -> subprocess.Popen[str]:
    """A process holding the run's lock (started when it says so)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_a_run_in_use_stops_a_second_writer_and_a_kill_9_frees_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    make_store(run_dir)
    holder = hold(run_dir)
    try:
        before = files_in(run_dir)
        expected = (str(run_dir), "in use by", f"pid {holder.pid} on host", "status and report read a run in use")
        one_error(cli("run", "--config", SMOKE, "--out", run_dir), *expected)
        one_error(cli("search", "--resume", run_dir), *expected)
        one_error(cli("export", run_dir, "--format", "pt"), *expected)
        assert files_in(run_dir) == before
        assert cli("status", run_dir).returncode == 0  # readers need no lock
        assert cli("report", run_dir).returncode == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    again = hold(run_dir)  # the kernel released the dead holder's lock
    again.kill()
    again.wait()
    record = json.loads((run_dir / LOCK).read_text())
    assert record["pid"] == again.pid and "command" in record


# --- Ctrl-C --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("moment", ["importing", "started"])
def test_an_early_ctrl_c_is_the_interrupted_line(tmp_path: Path, moment: str) -> None:
    """From the moment the entry point runs: while the CLI imports, and once the command has reached the
    job's steps. A fixed sleep after launch is not enough: on a loaded machine the interpreter itself may
    still be starting, before any of our code."""
    process = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "harmonic_nas", "run", "--config", SMOKE,
                                "--out", tmp_path / "run"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=as_a_shell_starts)
    assert process.stderr is not None
    marker = "harmonic_nas.cli" if moment == "importing" else "harmonic_nas.pipeline"
    for line in process.stderr:  # -X importtime writes a line as each module finishes importing
        if marker in line:
            break
    os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole process group
    _, rest = process.communicate(timeout=120)
    err = "\n".join(line for line in rest.splitlines() if not line.startswith("import time:"))
    # 130 or death by SIGINT itself (-2): a shell reports both as $? = 130
    assert process.returncode in (130, -signal.SIGINT), err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted: "), err[-2000:]


# --- resume hints ------------------------------------------------------------------------------------------
def test_a_baselines_resume_hints_carry_its_variant(tmp_path: Path) -> None:
    """`search --resume RUN_DIR` without --variant continues the full method: a baseline's hint names it."""
    from harmonic_nas.search.runner import check_same_settings
    from harmonic_nas.search.variants import Variant

    cfg = load_config(SMOKE, [f"output.run_dir={tmp_path}"])
    folder = Variant.named("fb-sf").store(cfg.layout).folder
    meta = {"config": cfg.model_dump(mode="json"), "variant": "fb-sf", "seed": 0}
    RunStore.create(folder, meta).close()
    with pytest.raises(UserError, match=rf"continue it with harmonic-nas search --resume {tmp_path} --variant fb-sf "
                                        "or start over with --force"):
        RunStore.create(folder, meta)
    changed = load_config(SMOKE, [f"output.run_dir={tmp_path}", "fusion.epochs=4"])
    with RunStore.open(folder) as store, pytest.raises(
            UserError, match=rf"resume it with harmonic-nas search --resume {tmp_path} --variant fb-sf, or start over"):
        check_same_settings(store, changed)
    make_store(tmp_path / "main")  # the full method's hint has no --variant
    with pytest.raises(UserError, match=rf"continue it with harmonic-nas search --resume {tmp_path / 'main'} or"):
        RunStore.create(tmp_path / "main", meta | {"variant": "sb-sf-hw"})
