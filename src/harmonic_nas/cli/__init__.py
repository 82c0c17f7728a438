"""The ``harmonic-nas`` command. Thin: parse arguments, call the pipeline, show what it returns, turn
UserError into one line.

A command's module is imported when the command runs: ``config check`` or ``status`` need not wait for
torch, and a Ctrl-C in the first second meets the handler below instead of an import."""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from harmonic_nas import __version__
from harmonic_nas.errors import INTERRUPTED, UserError
from harmonic_nas.files import is_user_os_error, os_error_line


# command name -> (module in harmonic_nas.cli, attribute)
_COMMANDS = {
    "config": ("config_cmd", "config"),
    "data": ("data_cmd", "data"),
    "train-supernet": ("train_cmd", "train_supernet"),
    "fusion-search": ("fusion_cmd", "fusion_search"),
    "profile": ("profile_cmd", "profile_command"),
    "lut": ("lut_cmd", "lut"),
    "search": ("search_cmd", "search"),
    "status": ("status_cmd", "status"),
    "run": ("run_cmd", "run"),
    "export": ("export_cmd", "export"),
    "reproduce": ("export_cmd", "reproduce"),
    "report": ("report_cmd", "report"),
}


class _Group(click.Group):
    """A click group whose commands report bad input as ``error: ...`` and exit 2, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module, attribute = _COMMANDS[name]
        command: click.Command = getattr(importlib.import_module(f"harmonic_nas.cli.{module}"), attribute)
        return command

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
        except click.UsageError as exc:  # a command's options, parsed inside invoke
            _usage_error(exc)
        except KeyboardInterrupt:
            _interrupted()

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        # Parsing the group's options comes before invoke: a Ctrl-C there would be click's "Aborted!", exit 1.
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            _usage_error(exc)
        except KeyboardInterrupt:
            _interrupted()


def _usage_error(exc: click.UsageError) -> NoReturn:
    """Click's usage errors as every other bad input: one line, exit 2 (click prints usage over 4 lines)."""
    message = exc.format_message().rstrip(".")
    path = exc.ctx.command_path if exc.ctx is not None else "harmonic-nas"
    _fail(f"{message[:1].lower()}{message[1:]} (see {path} --help)", exc.exit_code)


def _interrupted() -> NoReturn:
    click.echo(INTERRUPTED, err=True)
    sys.exit(130)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harmonic-nas")
def main() -> None:
    """Hardware-aware multimodal neural architecture search.

    \b
    Examples:
      harmonic-nas run --config configs/smoke.yaml --out /tmp/smoke
      harmonic-nas status /tmp/smoke
      harmonic-nas export /tmp/smoke --out /tmp/model
      harmonic-nas search --resume /tmp/smoke --workers 1
    """
