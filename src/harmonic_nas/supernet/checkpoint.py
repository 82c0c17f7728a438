"""Checkpoints written atomically (temp file + rename): a kill mid-write never leaves a corrupt file.

Every file is read with ``torch.load(weights_only=True)``: run folders and model files are meant to be
shared, and a full unpickler would run whatever code a crafted file names. What we write holds only
tensors, numbers, strings, lists and dicts, which that restricted loader accepts.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.torch_version import TorchVersion

from harmonic_nas.errors import UserError
from harmonic_nas.files import write_bytes

# Model files of earlier releases stored torch.__version__ itself, a str subclass that carries no code.
_SAFE_GLOBALS = [TorchVersion]


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` of ``obj``, atomically. Serialised in memory first: torch reports a full disk as a
    RuntimeError that names no file, Python's own write as an OSError we can name."""
    write_bytes(path, serialised(lambda buffer: torch.save(obj, buffer)))


def serialised(save: Callable[[io.BytesIO], object]) -> memoryview:
    """The bytes a torch writer (``torch.save``, ``torch.jit.save``, ``torch.onnx.export``) produces."""
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getbuffer()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The content of a file we wrote; a file that names any Python object beyond plain data is refused
    before anything in it runs."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _looks_like_torch_file(path):  # garbage or a truncated copy, not a crafted file
            raise UserError(f"{path}: unreadable checkpoint (not a torch file: neither a zip archive nor a "
                            "pickle)") from None
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", str(exc))
        if found:
            raise UserError(f"{path}: refused to load, it names the Python object {found.group(1)}; harmonic-nas "
                            "files hold only tensors and plain data (a crafted file could run code)") from None
        reason = re.search(r"WeightsUnpickler error: \s*(.+)", str(exc))
        raise UserError(f"{path}: unreadable checkpoint (not a file harmonic-nas wrote, or damaged: "
                        f"{reason.group(1).strip() if reason else 'not a torch file'})") from None
    except Exception as exc:  # torch raises many types for a damaged file
        raise UserError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive; files of old torch versions are a pickle (PROTO opcode first)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"
