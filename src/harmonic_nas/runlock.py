"""One writer per run directory: an advisory lock (``flock``) on RUN_DIR/.lock, whose content says who
holds it (host, pid, command, since when).

Two ``run``s on one ``--out`` both trained, searched and exported everything, and one's timings.json
record was lost. Now the second command that would write into a run in use stops at once with one line
naming the holder; ``status`` and ``report`` take no lock and read a run in use. The kernel releases the
lock when the holder dies, ``kill -9`` included, so a lock file left behind never blocks anyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from harmonic_nas.errors import UserError
from harmonic_nas.files import make_dir, os_user_error
from harmonic_nas.layout import RunLayout

# The locks this process holds: ``run`` takes the run's lock, then its steps (train-supernet, profile,
# search) take it again. A second flock of the same file from this process would block on itself.
_held: dict[Path, IO[str]] = {}


@contextlib.contextmanager
def run_lock(run_dir: str | Path) -> Iterator[None]:
    """Hold the lock of ``run_dir`` (created if missing) for the block, or raise a UserError naming the
    process that holds it."""
    folder = make_dir(run_dir)
    key = folder.resolve()
    if key in _held:
        yield
        return
    path = RunLayout(folder).lock
    try:
        handle = open(path, "a+", encoding="utf-8")  # "a+": opening must not wipe the holder's record
    except OSError as exc:
        raise os_user_error(exc, path, "create the lock file") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = _holder(handle.read())
        handle.close()
        raise UserError(f"{run_dir}: in use by {holder}; wait until it ends (harmonic-nas status {run_dir} shows "
                        "a search's progress) or write elsewhere (--out); status and report read a run in use")
    except OSError as exc:
        handle.close()
        raise os_user_error(exc, path, "lock") from None
    handle.truncate(0)
    handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "command": _command(),
                             "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}) + "\n")
    handle.flush()
    _held[key] = handle
    try:
        yield
    finally:
        del _held[key]
        handle.close()  # releases the lock


def holder_record(run_dir: str | Path) -> dict[str, object] | None:
    """What the lock file of ``run_dir`` says of its last holder (host, pid, command, since), read without
    taking the lock (a reader must never make a writer fail); None if there is none. The holder may be gone:
    the file outlives it."""
    try:
        record = json.loads(RunLayout(Path(run_dir)).lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _command() -> str:
    words = [os.path.basename(sys.argv[0]) if sys.argv else "?", *sys.argv[1:]]
    if words[0] == "__main__.py":
        words[0] = "harmonic-nas"
    return " ".join(words)


def _holder(text: str) -> str:
    """'harmonic-nas run ... (pid 12 on host h, since ...)' from the lock file, or what is known of it."""
    try:
        record = json.loads(text)
        return (f"{record['command']} (pid {record['pid']} on host {record['host']}, since {record['since']})")
    except (ValueError, KeyError, TypeError):
        return "another process (it has not recorded itself yet)"
