"""Reading a user's JSON file (an arch, a candidate) with every problem as one line naming the file, and
writing ours atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harmonic_nas.errors import UserError
from harmonic_nas.files import write_text


def read_json(path: Path, what: str = "file") -> Any:
    """The parsed contents of ``path``, or a UserError: not found, unreadable, or not JSON (with where)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def write_json(path: Path, data: Any, indent: int = 2) -> Path:
    """``data`` as indented JSON with a final newline, written atomically (UserError if it cannot be)."""
    return write_text(path, json.dumps(data, indent=indent) + "\n")
