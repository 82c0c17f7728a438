"""The option types commands share, built from the registries they choose from (never a hand-written list
that can drift) and torch-free, so that every ``--help`` answers without loading torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harmonic_nas.config.schema import RUNTIMES
from harmonic_nas.model_manifest import FORMATS
from harmonic_nas.runtime import DEVICE_CHOICES, is_device_name
from harmonic_nas.search.executor_names import EXECUTORS
from harmonic_nas.search.variants import VARIANTS


class DeviceType(click.ParamType):
    """A torch device the code accepts: one of DEVICE_CHOICES, ``cuda:N`` with any index."""

    name = "device"

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        return "[" + "|".join(DEVICE_CHOICES) + "]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not is_device_name(str(value)):
            self.fail(f"{value!r} is not one of {', '.join(DEVICE_CHOICES)}.", param, ctx)
        return str(value)


DEVICE = DeviceType()
RUNTIME = click.Choice(RUNTIMES)
EXECUTOR = click.Choice(EXECUTORS)
VARIANT = click.Choice(VARIANTS)
EXPORT_FORMAT = click.Choice(FORMATS)


def config_option(**kwargs: Any) -> Any:
    """``--config FILE``: the experiment config a command reads."""
    return click.option("--config", "config_path", type=click.Path(path_type=Path), help="Experiment config (YAML).",
                        **kwargs)


def set_option(example: str = "supernet.epochs=2", stored: bool = False) -> Any:
    """``--set KEY=VALUE`` (repeatable); on a run's stored config only keys that keep its results."""
    what = ("Override a key of the run's stored config that keeps its results (runtime.* but seed, output.*, "
            f"dataset.cache_dir), e.g. {example}." if stored else f"Override a config key, e.g. {example}.")
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=what + " Repeatable.")


def computed(text: str, default: str) -> str:
    """Help text of an option whose default is computed (from a config key, a path in the run), shown as
    click shows a fixed one (``show_default=True``)."""
    return f"{text}  [default: {default}]"
