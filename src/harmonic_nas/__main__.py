"""``python -m harmonic_nas`` and the ``harmonic-nas`` command. Importing the commands takes seconds
(torch): a Ctrl-C meanwhile gets the same ``interrupted:`` line as one during a command."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from harmonic_nas.cli import main as cli

        cli()  # a Ctrl-C before click reaches the command (reading argv) lands here too
    except KeyboardInterrupt:
        from harmonic_nas.errors import INTERRUPTED

        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
