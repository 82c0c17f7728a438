"""Setting up a search run: its directory and store, what workers need, the executor; then the engine,
and the test metric of the final front (test data is read only here, after the search)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harmonic_nas.config.io import apply_override, validate_config
from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.fusion.discrete import load_fusion
from harmonic_nas.fusion.scoring import evaluate, shuffled_modality_scores
from harmonic_nas.fusion.features import candidate_features
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.layout import RunLayout, StoreLayout
from harmonic_nas.search.engine import EvaluationHook, GenerationHook, ProgressHook, SearchEngine
from harmonic_nas.search.evaluator import Evaluator, EvaluatorSpec
from harmonic_nas.search.executor_names import EXECUTORS
from harmonic_nas.search.executors import DaskExecutor, Executor, InlineExecutor, LocalPoolExecutor
from harmonic_nas.search.store import Evaluation, RunStore
from harmonic_nas.search.variants import FULL_METHOD, VARIANTS, Variant
from harmonic_nas.space.candidate import Candidate


def load_run_supernets(
    cfg: ExperimentConfig, device: torch.device | str = "cpu", config_path: str = "<config>"
) -> dict[str, nn.Module]:
    """The trained supernet of every modality of the run, or one error naming the missing file and the
    command that trains it (with ``config_path`` when the caller knows it)."""
    from harmonic_nas.supernet import load_supernet

    supernets = {}
    for modality in cfg.modalities:
        files = cfg.layout.supernet(modality)
        if not files.supernet.is_file():
            raise UserError(f"{files.supernet}: no trained supernet for modality {modality!r}; "
                            f"train it first: harmonic-nas train-supernet --config {config_path}")
        supernets[modality], _ = load_supernet(files.supernet, device)
    return supernets


def load_run_lut(cfg: ExperimentConfig) -> LookupTable:
    """The run's LUT, refused if it was measured differently from what the config's hardware section asks."""
    lut = LookupTable.load(cfg.lut_path)
    lut.require_compatible(cfg.hardware)
    return lut


def search_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """What a resumed search must share with the stored one: everything that changes results, not where
    files live or how many workers and threads run (the seed stays: it decides populations)."""
    settings = cfg.model_dump(mode="json", exclude={"output": True, "dataset": {"cache_dir"},
                                                    "hardware": {"warmup", "repeats"}})
    settings["runtime"] = {"seed": cfg.runtime.seed}
    return settings


def setting_differences(stored: dict[str, Any], given: dict[str, Any], prefix: str = "") -> list[str]:
    """'key: stored -> given' for every leaf of two :func:`search_settings` that differs."""
    out = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += setting_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def check_same_settings(store: RunStore, cfg: ExperimentConfig) -> None:
    """A UserError naming the first differing keys if ``cfg`` would change the results of ``store``'s run."""
    stored = validate_config(store.raw_config(), str(store.path))
    differences = setting_differences(search_settings(stored), search_settings(cfg))
    if differences:
        variant = Variant.named(store.meta().get("variant", FULL_METHOD.name))
        raise UserError(f"{store.path}: the run was made with another config ({_shown(differences)}); resume it "
                        f"with {variant.resume_command(cfg.run_dir)}, or start over with --force")


def override_stored(cfg: ExperimentConfig, overrides: Sequence[str], where: str) -> ExperimentConfig:
    """A stored run's config with ``--set`` overrides that keep its results (where files live, how many
    workers and threads, which device), so a command reading a finished run cannot pretend to other settings."""
    raw = cfg.model_dump(mode="json")
    for item in overrides:
        apply_override(raw, item)
    changed = validate_config(raw, where)
    differences = setting_differences(search_settings(cfg), search_settings(changed))
    if differences:
        raise UserError(f"{where}: --set may change only keys that keep the run's results (runtime.* but seed, "
                        f"output.*, dataset.cache_dir, hardware.warmup, hardware.repeats), found {_shown(differences)}")
    return changed


def stored_raw_config(store_dir: Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """The raw config of the search stored in ``store_dir`` (RUN_DIR, or RUN_DIR/baselines/<variant>) with
    ``overrides`` (key.path=value, unchecked) applied and its run directory where the run is now (it may
    have been copied or moved); and the store's path, for messages."""
    with RunStore.open(store_dir) as store:
        variant = store.meta().get("variant")
        raw = dict(store.raw_config())
    for item in overrides:
        apply_override(raw, item)
    baseline = variant if variant in VARIANTS and Variant.named(variant).baseline else None
    raw["output"] = {**raw.get("output", {}), "run_dir": str(RunLayout.of_store(store_dir, baseline).root)}
    return raw, str(StoreLayout(store_dir).store)


def run_config(store_dir: Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The config of the search stored in ``store_dir``, where the run is now, with ``overrides`` that keep
    its results."""
    raw, where = stored_raw_config(store_dir)
    return override_stored(validate_config(raw, where), overrides, where)


def _shown(differences: list[str]) -> str:
    return "; ".join(differences[:3]) + (f"; {len(differences) - 3} more" if len(differences) > 3 else "")


def open_store(cfg: ExperimentConfig, variant: Variant, *, resume: bool, force: bool) -> RunStore:
    """A new store (``force`` replaces an old one) or, with ``resume``, the existing one of the same config."""
    files = variant.store(cfg.layout)
    if resume and files.store.exists():
        store = RunStore.open(files.folder)
        try:
            check_same_settings(store, cfg)
        except UserError:
            store.close()
            raise
        return store
    if force:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{files.store}{suffix}").unlink(missing_ok=True)
    return RunStore.create(files.folder, {"config": cfg.model_dump(mode="json"), "variant": variant.name,
                                    "seed": cfg.runtime.seed})


def make_executor(kind: str, spec: EvaluatorSpec, workers: int, scheduler: str | None) -> Executor:
    if kind == "inline" or (kind == "local" and workers == 1):
        return InlineExecutor.from_spec(spec)
    if kind == "local":
        return LocalPoolExecutor(spec, workers)
    if kind == "dask":
        if not scheduler:
            raise UserError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        return DaskExecutor(spec, scheduler)
    raise UserError(f"executor {kind!r}: expected one of {', '.join(EXECUTORS)}")


@dataclass
class SearchRun:
    """Everything a search needs, loaded once in the process that owns the store."""

    cfg: ExperimentConfig
    spec: EvaluatorSpec
    costs: CostModel
    taps: dict[str, int]

    @classmethod
    def load(cls, cfg: ExperimentConfig, device: str, threads: int, dataset: MultimodalDataset | None = None) -> SearchRun:
        """Supernets, LUT and dataset of ``cfg``; ``dataset`` replaces the config's (and goes to every worker)."""
        from harmonic_nas.backbones.specs import max_tap_count
        from harmonic_nas.data.registry import load_dataset

        supernets = load_run_supernets(cfg)  # the files first: a missing one fails in a second, not after the data
        lut = load_run_lut(cfg)
        data = dataset or load_dataset(cfg.dataset, seed=cfg.runtime.seed)
        shapes = {m: tuple(s.shape) for m, s in data.modalities.items()}
        costs = CostModel(lut, cfg, shapes, data.num_classes)
        taps = {m: max_tap_count(space, shapes[m]) for m, space in cfg.modalities.items()}
        spec = EvaluatorSpec(cfg.model_dump(mode="json"), supernets, lut, device=device, threads=threads, dataset=dataset)
        return cls(cfg, spec, costs, taps)


def run_search(
    run: SearchRun,
    variant: Variant,
    executor: Executor,
    *,
    resume: bool = False,
    force: bool = False,
    on_progress: ProgressHook | None = None,
    on_generation: GenerationHook | None = None,
    on_evaluation: EvaluationHook | None = None,
) -> tuple[RunStore, list[Evaluation]]:
    """Run or resume ``variant``; returns its store and final front (with test metrics). Closes
    ``executor`` when the search is done, so that its workers' memory is free before this process loads
    an evaluator for the test metrics (the peak memory of the demo)."""
    store = open_store(run.cfg, variant, resume=resume, force=force)
    engine = SearchEngine(run.cfg, store, executor, variant, run.costs, run.taps, on_progress=on_progress,
                          on_generation=on_generation, on_evaluation=on_evaluation, log_path=variant.store(run.cfg.layout).log)
    front = engine.run()
    executor.close()
    add_test_metrics(store, front, lambda: Evaluator(run.spec), on_progress=on_progress)
    return store, store.pareto_front()


def best_backbones(store: RunStore) -> list[Evaluation]:
    """The stage-1 backbone with the best val metric of each modality (the unimodal baseline a fused
    model must beat); none for variants that do not search backbones."""
    best: dict[str, Evaluation] = {}
    for e in store.evaluations("backbone"):
        if e.modality is not None and (e.modality not in best or e.val_metric > best[e.modality].val_metric):
            best[e.modality] = e
    return list(best.values())


def add_test_metrics(store: RunStore, front: list[Evaluation], make_evaluator: Callable[[], Evaluator],
                     on_progress: ProgressHook | None = None) -> None:
    """Test metric of each final-front model (its backbones' test features through its stored derived
    fusion network, in eval mode), with its test metric when each modality's features are shuffled
    (:func:`shuffled_modality_scores`), and of the best backbone of each modality that has none yet; the
    evaluator is built only if one is missing. ``on_progress("test metrics", done, total)`` follows them
    (seconds each: the search's last silent stretch otherwise)."""
    missing = [e for e in [*front, *best_backbones(store)]
               if e.test_metric is None or (e.kind == "candidate" and not e.test_shuffled)]
    if not missing:
        return
    if on_progress is not None:
        on_progress("test metrics", 0, len(missing))
    evaluator = make_evaluator()
    for done, e in enumerate(missing, start=1):
        if e.kind == "backbone":
            assert e.modality is not None
            store.set_test_metric(e.key, evaluator.subnet_metric(e.modality, e.arch, evaluator.dataset.split("test")))
        else:
            store.set_test_metric(e.key, *score_on_test(evaluator, e.candidate, StoreLayout(store.path.parent).fusion(e.key)))
        if on_progress is not None:
            on_progress("test metrics", done, len(missing))


def score_on_test(evaluator: Evaluator, candidate: Candidate, fusion_file: Path) -> tuple[float, dict[str, float]]:
    """The test metric of a stored fusion network and, per modality, its test metric with that modality shuffled."""
    net = load_fusion(fusion_file).to(evaluator.device)
    # the taps' modality order is the features' order
    backbones = {m: candidate.backbones[m] for m in net.genotype.tap_modalities}
    features = candidate_features(evaluator.cache, backbones, evaluator.supernets, evaluator.dataset, splits=("test",))
    test = features.splits["test"].to(evaluator.device)
    batch_size, task = evaluator.cfg.fusion.batch_size, evaluator.dataset.task
    shuffled = shuffled_modality_scores(net, test, [m for m, _ in features.taps], batch_size, task, evaluator.cfg.runtime.seed)
    return evaluate(net, test, batch_size, task), shuffled
