"""The one exception type a user should ever see: a single line, exit status 2, no traceback; and the
pieces of such lines (the Ctrl-C message, a value shown in a bounded length)."""

from __future__ import annotations

import reprlib
from typing import Any

INTERRUPTED = ("interrupted: finished work is kept; run the same command again to continue "
               "(train-supernet: add --resume)")


class UserError(Exception):
    """Bad input from the user (config, files, data, arguments).

    The CLI prints ``error: <message>`` on one line and exits with status 2. The message must name the
    problem (file, key, expected vs found) so that it can be fixed without reading code.
    """

    exit_code = 2


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 3, 4, 6, 60, 60


def short_repr(value: Any, width: int = 60) -> str:
    """``repr(value)`` cut to ``width`` characters, in time bounded by ``width`` whatever the value's size
    (a YAML alias bomb expands to more items than memory holds; the builtin repr would walk them all)."""
    text = _REPR.repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
