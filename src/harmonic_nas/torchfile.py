"""Our torch files: written atomically (a kill mid-write never leaves a corrupt file), read with the
restricted unpickler, and for the files that outlive a run (supernet, fusion network, exported model) tagged
with a versioned format that every load checks.

Every file is read with ``torch.load(weights_only=True)``: run folders and model files are meant to be
shared, and a full unpickler would run whatever code a crafted file names. What we write holds only
tensors, numbers, strings, lists and dicts, which that restricted loader accepts.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
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


def load_checkpoint(path: Path) -> Any:
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


@dataclass(frozen=True)
class FileFormat:
    """A versioned file of ours: a dict whose ``format`` entry is ``tag`` (e.g. harmonic-nas-supernet/1).

    A change that old readers cannot read takes a new tag; a load of any other file is one UserError line.
    """

    tag: str
    what: str  # e.g. "supernet file", for the error message

    def payload(self, content: dict[str, Any]) -> dict[str, Any]:
        """``content`` tagged with this format (first, as the file lists it)."""
        return {"format": self.tag, **content}

    def save(self, content: dict[str, Any], path: Path) -> None:
        save_atomic(self.payload(content), Path(path))

    def load(self, path: Path) -> dict[str, Any]:
        """The content of ``path`` (its ``format`` entry included), or a UserError if it is not this format."""
        data = load_checkpoint(Path(path))
        if not isinstance(data, dict) or data.get("format") != self.tag:
            raise UserError(f"{path}: not a harmonic-nas {self.what} (expected format {self.tag})")
        return data
