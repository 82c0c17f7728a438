"""Writing files: atomically (a temporary file beside the target, flushed to disk, then renamed over it),
so a kill or a full disk never leaves half a file where a whole one was; and every OS failure as one
UserError naming the path and what to do about it."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

from harmonic_nas.errors import UserError

# What to do about the failures a user can fix; any other errno is a bug to see as a traceback.
_ADVICE = {
    errno.ENOSPC: "no space left on the device: free some space, then run the same command again",
    errno.EDQUOT: "disk quota exceeded: free some space, then run the same command again",
    errno.EROFS: "read-only file system: choose a folder on a writable disk",
    errno.EACCES: "permission denied: choose a folder you may write to, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a folder you may write to, or fix its permissions",
    errno.EISDIR: "is a folder, expected a file: choose another name",
    errno.ENOTDIR: "a part of this path is a file, expected a folder: choose another path",
    errno.EEXIST: "exists already and is not a folder: choose another path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
    errno.EFBIG: "file too large for the file system or the file size limit (ulimit -f): raise the limit or "
                 "choose another disk",
    errno.ENOENT: "no such file or folder",
    errno.ELOOP: "too many symbolic links: check the path",
}


def is_user_os_error(exc: BaseException) -> bool:
    """An OS failure caused by where the user asked to read or write (full disk, read-only, a file in
    the way ...), not by a bug."""
    return isinstance(exc, OSError) and exc.errno in _ADVICE


def os_error_line(exc: OSError, path: str | Path | None = None, action: str | None = "write") -> str:
    """``PATH: cannot ACTION: what happened: what to do`` for an OS failure on ``path`` (default: the
    file the failure names)."""
    where = path if path is not None else (exc.filename or "?")
    what = _ADVICE.get(exc.errno) if exc.errno is not None else None
    doing = f"cannot {action}: " if action else ""
    return f"{where}: {doing}{what or exc.strerror or exc}"


def os_user_error(exc: OSError, path: str | Path | None = None, action: str = "write") -> UserError:
    return UserError(os_error_line(exc, path, action))


def make_dir(path: str | Path) -> Path:
    """``path`` as an existing folder (created with its parents), or a UserError saying why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_user_error(exc, path, "create the folder") from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write the whole content of ``path`` to; on leaving the block it is flushed to
    disk and renamed to ``path``. On any failure the temporary file is removed, ``path`` stays as it was,
    and an OS failure is a UserError naming ``path``."""
    path = Path(path)
    tmp = _new_file(make_dir(path.parent), path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and is_user_os_error(exc):
            raise os_user_error(exc, path) from None
        raise


def _new_file(folder: Path, path: Path) -> Path:
    """A new empty file beside ``path``: hidden, named after it, its suffix last (savefig and np.save go
    by the suffix), created with the permissions the umask gives (mkstemp's would be owner-only)."""
    while True:
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp{path.suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise os_user_error(exc, path) from None


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_with(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Atomically write ``path`` with a writer that takes a file name (``torch.save``, ``savefig`` ...)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)
