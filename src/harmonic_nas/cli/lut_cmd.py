"""``harmonic-nas lut``: inspect, import and merge latency/energy lookup tables measured anywhere."""

from __future__ import annotations

from pathlib import Path

import click

from harmonic_nas.console import console
from harmonic_nas.hardware.lut import LookupTable, import_lut


@click.group()
def lut() -> None:
    """Inspect, import and merge lookup tables (e.g. one profiled on a Jetson).

    \b
    Examples:
      harmonic-nas lut info /tmp/smoke/lut/cpu.json
    """


@lut.command("info")
@click.argument("file", type=click.Path(path_type=Path))
def info(file: Path) -> None:
    """Validate FILE and print its header and entry count.

    \b
    Examples:
      harmonic-nas lut info /tmp/smoke/lut/cpu.json
    """
    table = LookupTable.load(file)
    header = table.header
    click.echo(f"{file}: {len(table)} entries")
    for key, value in header.model_dump(mode="json", exclude_none=True).items():
        click.echo(f"  {key}: {value}")
    click.echo(f"  calibration: {'fitted' if table.calibration is not None else 'none'}")


@lut.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--into", "dest_dir", required=True, type=click.Path(path_type=Path), help="Folder, e.g. runs/demo/lut.")
@click.option("--overwrite", is_flag=True, help="Replace a table of the same device.")
def import_(file: Path, dest_dir: Path, overwrite: bool) -> None:
    """Validate a LUT measured elsewhere and store it as INTO/<device>.json.

    \b
    Examples:
      harmonic-nas lut import /tmp/lut.json --into /tmp/smoke2/lut --overwrite
    """
    table = import_lut(file, dest_dir, overwrite=overwrite)
    console.log(f"imported {len(table)} entries of device {table.header.device!r} into {dest_dir}")


@lut.command("merge")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The merged table.")
@click.option("--force", is_flag=True, help="Merge tables measured with other settings (the header says so).")
def merge(files: tuple[Path, ...], out: Path, force: bool) -> None:
    """Merge FILES (later files win on equal keys) into OUT.

    \b
    Examples:
      harmonic-nas lut merge /tmp/smoke/lut/cpu.json /tmp/lut.json --out /tmp/merged.json
    """
    merged = LookupTable.load(files[0])
    for file in files[1:]:
        merged = merged.merge(LookupTable.load(file), force=force)
    merged.save(out)
    console.log(f"wrote {out}: {len(merged)} entries")
