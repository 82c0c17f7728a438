"""``harmonic-nas data``: prepare a dataset into its cache, show what is in it, run the linear baseline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harmonic_nas.cli.params import computed, set_option
from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.errors import UserError

_OPTION_HELP = "Recipe option KEY=VALUE (repeatable), e.g. --option train_size=2000."


def _dataset_config(
    target: str | None, config: Path | None, overrides: tuple[str, ...], options: tuple[str, ...],
    cache_dir: Path | None,
) -> DatasetConfig:
    """Dataset settings from NAME|PATH, the experiment config's dataset section (with --set), then --option."""
    from harmonic_nas.config import load_config
    from harmonic_nas.data.options import parse_option_items
    from harmonic_nas.data.registry import resolve

    if overrides and config is None:
        raise UserError(f"--set {overrides[0]!r} needs --config FILE (it overrides a key of that config)")
    base = load_config(config, list(overrides)).dataset if config is not None else DatasetConfig()
    if target is None and config is None:
        raise UserError("name a dataset (e.g. av-digits) or a folder, or pass --config")
    fields = base.model_dump()
    if target is not None:
        recipe, path = resolve(target, Path(target) if Path(target).exists() and target not in _names() else base.path)
        if recipe.name != base.name:
            fields["options"] = {}
        fields["name"], fields["path"] = recipe.name, path
    fields["options"] = {**fields["options"], **parse_option_items(options)}
    if cache_dir is not None:
        fields["cache_dir"] = cache_dir
    return DatasetConfig.model_validate(fields)


def _names() -> set[str]:
    from harmonic_nas.data.registry import available

    return set(available())


def _common(function):  # type: ignore[no-untyped-def]
    function = click.option("--cache-dir", type=click.Path(path_type=Path),
                            help=computed("Cache directory.", "from dataset.cache_dir"))(function)
    function = click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help=_OPTION_HELP)(function)
    function = set_option("dataset.path=/data/avmnist")(function)
    function = click.option("--config", type=click.Path(path_type=Path),
                            help="Take dataset settings from this experiment config.")(function)
    return click.argument("target", required=False, metavar="[NAME|PATH]")(function)


@click.group()
def data() -> None:
    """Prepare and inspect datasets (builtin: av-digits, emoji, tuxpaint; adapters: avmnist, soundmnist, mmimdb,
    harmp).

    \b
    Examples:
      harmonic-nas data list
      harmonic-nas data info --config configs/smoke.yaml
    """


@data.command("list")
def list_() -> None:
    """Every dataset name the tool knows.

    \b
    Examples:
      harmonic-nas data list
    """
    from harmonic_nas.data.registry import available

    for name, recipe in available().items():
        kind = "adapter (needs a folder)" if recipe.needs_path else "builtin"
        click.echo(f"{name:12s} {kind:26s} {recipe.description}")


@data.command("prepare")
@_common
@click.option("--force", is_flag=True, help="Rebuild even if a valid cache exists.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def prepare(target: str | None, config: Path | None, overrides: tuple[str, ...], options: tuple[str, ...],
            cache_dir: Path | None, force: bool, quiet: bool) -> None:
    """Preprocess NAME|PATH (or the dataset of --config) once into the cache (memory-mapped arrays +
    manifest).

    \b
    Examples:
      harmonic-nas data prepare av-digits --option preset=small
      harmonic-nas data prepare --config configs/smoke.yaml --set dataset.cache_dir=/tmp/cache
    """
    from harmonic_nas.data.registry import prepare_dataset

    cfg = _dataset_config(target, config, overrides, options, cache_dir)
    prepared = prepare_dataset(cfg, progress=not quiet, force=force)
    if prepared.built:
        why = f" (rebuilt: {prepared.rebuilt_because})" if prepared.rebuilt_because else ""
        click.echo(f"prepared {cfg.name} in {prepared.seconds:.1f} s: {prepared.root}{why}")
    else:
        click.echo(f"{cfg.name} is already prepared: {prepared.root}")


@data.command("info")
@_common
@click.option("--verify", is_flag=True, help="Re-read every file and check its checksum.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def info(target: str | None, config: Path | None, overrides: tuple[str, ...], options: tuple[str, ...],
         cache_dir: Path | None, verify: bool, as_json: bool) -> None:
    """Modalities, shapes, class balance per split, sources and licences of NAME|PATH or of the dataset of
    --config (prepares it first if needed).

    \b
    Examples:
      harmonic-nas data info --config configs/smoke.yaml
      harmonic-nas data info av-digits --option preset=small --json
    """
    from rich.console import Console
    from rich.table import Table

    from harmonic_nas.data.cache import open_cache
    from harmonic_nas.data.registry import prepare_dataset

    cfg = _dataset_config(target, config, overrides, options, cache_dir)
    prepared = prepare_dataset(cfg, progress=True, full_verify=verify)
    dataset = open_cache(prepared.root)
    manifest = dataset.manifest
    if as_json:
        click.echo(json.dumps(manifest, indent=1))
        return
    console = Console()
    console.print(f"[bold]{dataset.name}[/bold]  {dataset.task}, {dataset.num_classes} classes  cache: {prepared.root}")
    table = Table("modality", "kind", "shape", "train mean", "train std")
    for name, m in manifest["modalities"].items():
        fmt = lambda v: ", ".join(f"{x:.3g}" for x in v[:3]) + (" ..." if len(v) > 3 else "")  # noqa: E731
        table.add_row(name, m["kind"], "x".join(map(str, m["shape"])), fmt(m["mean"]), fmt(m["std"]))
    console.print(table)
    balance = Table("split", "samples", "per class (min / median / max)", "smallest classes")
    for split, s in manifest["splits"].items():
        counts = s["class_counts"]
        order = sorted(range(len(counts)), key=lambda i: counts[i])[:3]
        smallest = ", ".join(f"{dataset.class_names[i]}={counts[i]}" for i in order)
        ordered = sorted(counts)
        balance.add_row(split, str(s["n"]), f"{ordered[0]} / {ordered[len(ordered) // 2]} / {ordered[-1]}", smallest)
    console.print(balance)
    console.print("sources: " + ", ".join(f"{k} {v}" for k, v in manifest["sources"].items()))
    for licence in manifest.get("licences", []):
        console.print(f"licence: {licence}")
    console.print("options: " + json.dumps(manifest["recipe"]["options"]))


@data.command("baseline")
@_common
@click.option("--limit-train", type=click.IntRange(min=10),
              help="Fit on a seeded subset of this many training samples.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def baseline(
    target: str | None, config: Path | None, overrides: tuple[str, ...], options: tuple[str, ...],
    cache_dir: Path | None, limit_train: int | None, as_json: bool,
) -> None:
    """Logistic regression per modality, early and late fusion: does the dataset need fusion?

    \b
    Examples:
      harmonic-nas data baseline --config configs/smoke.yaml --limit-train 500
      harmonic-nas data baseline --config configs/smoke.yaml --set dataset.limit.val=200 --json
    """
    from harmonic_nas.data.baseline import linear_baseline
    from harmonic_nas.data.registry import load_dataset

    cfg = _dataset_config(target, config, overrides, options, cache_dir)
    if limit_train is not None:
        cfg = cfg.model_copy(update={"limit": cfg.limit.model_copy(update={"train": limit_train})})
    scores = linear_baseline(load_dataset(cfg))
    if as_json:
        click.echo(json.dumps(scores, indent=1))
        return
    for label, s in scores.items():
        click.echo(f"{label:10s} val {s['val']:.3f}  test {s['test']:.3f}")
