"""``harmonic-nas config``: validate and show experiment configs."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from harmonic_nas.cli.params import set_option
from harmonic_nas.config import load_config
from harmonic_nas.config.reference import config_reference


@click.group()
def config() -> None:
    """Validate and inspect experiment configs.

    \b
    Examples:
      harmonic-nas config check configs/smoke.yaml --show
    """


@config.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@set_option()
@click.option("--show", is_flag=True, help="Print the resolved config with all defaults.")
def check(file: Path, overrides: tuple[str, ...], show: bool) -> None:
    """Validate FILE against the schema; exit 2 with one line naming the problem.

    \b
    Examples:
      harmonic-nas config check configs/smoke.yaml
      harmonic-nas config check configs/demo.yaml --set supernet.epochs=2 --show
    """
    cfg = load_config(file, list(overrides))
    if show:
        click.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), nl=False)
    else:
        mods = ", ".join(f"{name} ({space.type})" for name, space in cfg.modalities.items())
        click.echo(f"{file}: ok: experiment {cfg.name!r}, dataset {cfg.dataset.name!r}, modalities {mods}")


@config.command("reference")
def reference() -> None:
    """Print the config reference (markdown) generated from the schema.

    \b
    Examples:
      harmonic-nas config reference > /tmp/config.md
    """
    click.echo(config_reference(), nl=False)
