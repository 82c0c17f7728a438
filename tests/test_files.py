"""Atomic writes (files), the one-line form of OS failures, and the run directory lock (runlock), in
this process; test_reliability.py replays the same failures through the command line."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from harmonic_nas.errors import UserError
from harmonic_nas.files import atomic_path, is_user_os_error, os_error_line, write_text
from harmonic_nas.layout import RunLayout
from harmonic_nas.runlock import run_lock


def test_a_write_replaces_the_file_whole_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "a.json"
    write_text(path, "one\n")
    write_text(path, "two\n")
    assert path.read_text() == "two\n" and os.listdir(path.parent) == ["a.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # as a plain write makes it, not owner-only


def test_a_failed_write_keeps_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="the writer failed"):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the ne")
            raise RuntimeError("the writer failed")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["a.txt"]


def test_writing_over_a_folder_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match=r"taken: cannot write: is a folder, expected a file") as info:
        write_text(tmp_path / "taken", "x")
    assert "\n" not in str(info.value) and os.listdir(tmp_path) == ["taken"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=r"file: cannot create the folder: exists already and is not a folder"):
        write_text(tmp_path / "file" / "a.txt", "x")


@pytest.mark.parametrize(("code", "advice"), [
    (errno.ENOSPC, "no space left on the device"), (errno.EROFS, "read-only file system"),
    (errno.EACCES, "permission denied"), (errno.EFBIG, "ulimit -f"),
])
def test_failures_a_user_can_fix_say_what_to_do(code: int, advice: str) -> None:
    exc = OSError(code, os.strerror(code), "/x/y")
    assert is_user_os_error(exc)
    assert os_error_line(exc, action=None).startswith("/x/y: ") and advice in os_error_line(exc)
    assert os_error_line(exc, "/x", "write").startswith("/x: cannot write: ")
    assert not is_user_os_error(OSError(errno.EBADF, "bad file descriptor"))  # a bug, not the user's


def test_the_run_lock_is_reentrant_in_a_process_and_records_its_holder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with run_lock(run_dir):
        with run_lock(run_dir / "."):  # run takes it, then its steps: the same directory
            assert f'"pid": {os.getpid()}' in RunLayout(run_dir).lock.read_text()
    with run_lock(run_dir):  # released: free again
        pass
