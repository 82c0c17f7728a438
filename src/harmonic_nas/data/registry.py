"""Names -> recipes, and the two entry points: ``prepare_dataset`` (build the cache once) and
``load_dataset`` (what the trainer calls: prepare if needed, open memory-mapped, apply the limits)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from importlib.metadata import entry_points
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable, Iterator

from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.data.base import SPLITS, limit_split
from harmonic_nas.data.cache import FORMAT, CacheError, CachedDataset, CacheWriter, finalise, open_cache
from harmonic_nas.data.options import parse_options
from harmonic_nas.data.progress import Reporter, reporter
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.errors import UserError


ENTRY_POINT_GROUP = "harmonic_nas.datasets"


def _plugin_recipes() -> dict[str, Recipe]:
    """Recipes that installed packages declare in the ``harmonic_nas.datasets`` entry-point group (a
    Recipe subclass or instance each): every process, spawned workers and other machines included, finds
    them without a launcher script."""
    plugins: dict[str, Recipe] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry.load()
            recipe = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:  # a broken plugin is named, not a traceback
            raise UserError(f"dataset plugin {entry.name!r} ({entry.value}): cannot load: {exc}") from None
        if not isinstance(recipe, Recipe):
            raise UserError(f"dataset plugin {entry.name!r} ({entry.value}): expected a Recipe subclass or "
                            f"instance, found {type(recipe).__name__}")
        plugins[recipe.name] = recipe
    return plugins


def _recipes() -> dict[str, Recipe]:
    from harmonic_nas.data.adapters import ADAPTERS
    from harmonic_nas.data.builtin import BUILTINS

    return {**BUILTINS, **ADAPTERS, **_plugin_recipes()}


def available() -> dict[str, Recipe]:
    """Every dataset name the tool knows (builtin datasets and adapters)."""
    return _recipes()


def resolve(name: str, path: Path | None = None) -> tuple[Recipe, Path | None]:
    """The recipe for a name, or for a folder whose format is detected; clear errors otherwise."""
    recipes = _recipes()
    if name in recipes:
        recipe = recipes[name]
        if recipe.needs_path and path is None:
            raise UserError(f"dataset {name!r} reads your copy of the data: set dataset.path to its folder")
        if recipe.needs_path and path is not None and not Path(path).exists():
            raise UserError(f"{path}: dataset folder not found")
        return recipe, (Path(path) if path is not None else None)
    candidate = Path(name)
    if candidate.exists():
        for recipe in recipes.values():
            if recipe.needs_path and recipe.detect(candidate):
                return recipe, candidate
        adapters = ", ".join(n for n, r in recipes.items() if r.needs_path)
        raise UserError(f"{candidate}: no known dataset layout found (adapters: {adapters}); see docs/datasets.md")
    raise UserError(f"unknown dataset {name!r} (known: {', '.join(sorted(recipes))}, or a folder path)")


def require_modalities(cfg: DatasetConfig, wanted: Iterable[str], where: str) -> None:
    """Refuse, before any work, modalities (of the config ``where``) that the dataset does not have: from
    what its recipe declares, without preparing it; a recipe that declares none is checked once built."""
    recipe, _ = resolve(cfg.name, cfg.path)
    if recipe.modalities is not None:
        missing_modalities(wanted, recipe.modalities, recipe.name, where)


def missing_modalities(wanted: Iterable[str], available: Iterable[str], dataset: str, where: str | None = None) -> None:
    """A UserError naming the first of ``wanted`` that is not ``available`` in ``dataset``."""
    have = list(available)
    missing = [m for m in wanted if m not in have]
    if missing:
        prefix = f"{where}: " if where else ""
        raise UserError(f"{prefix}modality {missing[0]!r} is not in dataset {dataset!r} (has {', '.join(have)})")


def fingerprint(recipe: Recipe, options: Any, sources: dict[str, str], path: Path | None) -> str:
    payload = {
        "format": FORMAT,
        "recipe": recipe.name,
        "version": recipe.version,
        "options": options.model_dump(mode="json"),
        "sources": sources,
        "path": str(Path(path).resolve()) if path is not None else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """One preparer at a time per cache directory (parallel workers may all call load_dataset)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Prepared:
    """Where a dataset's cache lives and whether this call built it."""

    def __init__(self, root: Path, built: bool, seconds: float, rebuilt_because: str | None) -> None:
        self.root = root
        self.built = built
        self.seconds = seconds
        self.rebuilt_because = rebuilt_because


def prepare_dataset(
    cfg: DatasetConfig, *, progress: bool | Reporter = True, force: bool = False, full_verify: bool = False
) -> Prepared:
    """Build the cache of ``cfg`` unless a valid one exists (stale or corrupt caches are rebuilt)."""
    recipe, path = resolve(cfg.name, cfg.path)
    options = parse_options(recipe.OptionsModel, cfg.options, recipe.name)
    sources = recipe.sources(options, path)
    digest = fingerprint(recipe, options, sources, path)
    slug = recipe.name if path is None else f"{recipe.name}-{path.resolve().name}"
    cache_dir = Path(cfg.cache_dir)
    root = cache_dir / f"{slug}-{digest[:12]}"
    with _locked(cache_dir / f".{root.name}.lock"):
        reason = None
        if not force:
            try:
                open_cache(root, digest, full_verify=full_verify)
                return Prepared(root, built=False, seconds=0.0, rebuilt_because=None)
            except CacheError as exc:
                reason = str(exc) if root.exists() else None
        start = time.perf_counter()
        tmp = cache_dir / f".{root.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with _reporter(progress) as report:
                ctx = BuildContext(recipe.name, options, path, CacheWriter(tmp), report, declared=recipe.modalities)
                recipe.build(ctx)
                if ctx.info is None:
                    raise RuntimeError(f"recipe {recipe.name!r} did not declare its modalities")
                header = {
                    "fingerprint": digest,
                    "recipe": {"name": recipe.name, "version": recipe.version, "options": options.model_dump(mode="json")},
                    "source_path": str(path.resolve()) if path is not None else None,
                    "sources": sources,
                    "licences": recipe.licences(options),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                finalise(ctx.writer, ctx.info, header, report)
            shutil.rmtree(root, ignore_errors=True)
            os.replace(tmp, root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return Prepared(root, built=True, seconds=time.perf_counter() - start, rebuilt_because=reason)


@contextlib.contextmanager
def _reporter(progress: bool | Reporter) -> Iterator[Reporter]:
    if isinstance(progress, bool):
        with reporter(progress) as report:
            yield report
    else:
        yield progress


def open_prepared(cfg: DatasetConfig, *, progress: bool | Reporter = True) -> CachedDataset:
    """Prepare if needed and open the full cached dataset (no limits applied)."""
    prepared = prepare_dataset(cfg, progress=progress)
    try:
        return open_cache(prepared.root)
    except CacheError as exc:  # changed between prepare and open (another process): one more try
        prepared = prepare_dataset(cfg, progress=progress, force=True)
        try:
            return open_cache(prepared.root)
        except CacheError:
            raise UserError(f"dataset cache {prepared.root} keeps failing its checks: {exc}") from None


def load_dataset(cfg: DatasetConfig, *, seed: int = 0, progress: bool = True) -> CachedDataset:
    """The dataset of an experiment: prepared once into ``cfg.cache_dir``, opened memory-mapped, with
    ``cfg.limit`` applied per split as a seeded random subset (``seed`` only picks the subset; the
    recipe's own randomness is its ``seed`` option, so changing the run seed never rebuilds the cache)."""
    dataset = open_prepared(cfg, progress=progress)
    limits = {split: getattr(cfg.limit, split) for split in SPLITS}
    if any(v is not None for v in limits.values()):
        splits = {
            split: limit_split(dataset.splits[split], limits[split], seed + index)
            for index, split in enumerate(SPLITS)
        }
        dataset = replace(dataset, splits=splits)
    return dataset
