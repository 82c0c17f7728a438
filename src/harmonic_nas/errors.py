"""The one exception type a user should ever see: a single line, exit status 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (config, files, data, arguments).

    The CLI prints ``error: <message>`` on one line and exits with status 2. The message must name the
    problem (file, key, expected vs found) so that it can be fixed without reading code.
    """

    exit_code = 2
