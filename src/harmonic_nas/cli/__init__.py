"""The ``harmonic-nas`` command. Thin: parse arguments, call the packages, turn UserError into one line."""

from __future__ import annotations

import sys
from typing import Any

import click

from harmonic_nas import __version__
from harmonic_nas.errors import UserError
from harmonic_nas.files import is_user_os_error, os_error_line


class _Group(click.Group):
    """A click group whose commands report bad input as ``error: ...`` and exit 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            if not is_user_os_error(exc):
                raise
            # A file the user named or a disk that is full or read-only, met where no UserError said so.
            _fail(os_error_line(exc, action=None), UserError.exit_code)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: finished work is kept; run the same command again to continue "
                "(train-supernet, search: add --resume)",
                err=True,
            )
            sys.exit(130)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harmonic-nas")
def main() -> None:
    """Hardware-aware multimodal neural architecture search."""


def _register() -> None:
    from harmonic_nas.cli import (
        config_cmd, data_cmd, export_cmd, fusion_cmd, lut_cmd, profile_cmd, report_cmd, run_cmd, search_cmd, train_cmd,
    )

    main.add_command(config_cmd.config)
    main.add_command(data_cmd.data)
    main.add_command(train_cmd.train_supernet)
    main.add_command(fusion_cmd.fusion_search)
    main.add_command(profile_cmd.profile_command)
    main.add_command(lut_cmd.lut)
    main.add_command(search_cmd.search)
    main.add_command(search_cmd.status)
    main.add_command(run_cmd.run)
    main.add_command(export_cmd.export)
    main.add_command(export_cmd.reproduce)
    main.add_command(report_cmd.report)


_register()
