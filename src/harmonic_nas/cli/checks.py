"""Checks of command-line arguments that the pipeline does not see (counts given as options)."""

from __future__ import annotations

from harmonic_nas.errors import UserError


def at_least_one(option: str, value: int | None) -> None:
    """A count option (threads, workers, batch size ...) given on the command line is positive."""
    if value is not None and value < 1:
        raise UserError(f"{option} must be at least 1, found {value}")
