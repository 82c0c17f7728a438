"""The two-tier search engine on real (small) data with small untrained supernets and a fixture LUT:
generations, dedup, elitism, fronts, the store, variants, resume, and the executors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import evaluator_spec, search_config

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.layout import StoreLayout
from harmonic_nas.search.engine import SearchEngine
from harmonic_nas.search.evaluator import EvalResult, EvalTask, Evaluator
from harmonic_nas.search.executors import InlineExecutor
from harmonic_nas.search.indicators import pareto_mask
from harmonic_nas.search.runner import add_test_metrics
from harmonic_nas.search.store import RunStore
from harmonic_nas.search.variants import Variant
from harmonic_nas.space import Genotype

SHAPES = {"image": (1, 28, 28), "thumb": (49,)}
TAPS = {"image": 2, "thumb": 2}


class CountingEvaluator:
    """The real evaluator, counting what it is asked to evaluate."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator
        self.keys: list[str] = []

    def __call__(self, task: EvalTask) -> EvalResult:
        self.keys.append(task.key)
        return self.evaluator(task)


def engine(cfg: ExperimentConfig, lut: Any, dataset: Any, variant: str = "sb-sf-hw",
           evaluator: CountingEvaluator | None = None, **hooks: Any) -> tuple[SearchEngine, RunStore, CountingEvaluator]:
    evaluator = evaluator or CountingEvaluator(Evaluator(evaluator_spec(cfg, lut, dataset)))
    folder = cfg.run_dir / variant
    path = folder / "run.sqlite"
    store = RunStore.open(folder) if path.exists() else RunStore.create(folder, {"config": cfg.model_dump(mode="json")})
    costs = CostModel(lut, cfg, SHAPES, 10)
    return SearchEngine(cfg, store, InlineExecutor(evaluator), Variant.named(variant), costs, TAPS, **hooks), store, evaluator


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory, lut: Any, mnist_pair: Any) -> dict[str, Any]:
    cfg = search_config(tmp_path_factory.mktemp("full"))
    reported: list[Any] = []
    eng, store, evaluator = engine(cfg, lut, mnist_pair, on_evaluation=reported.append)
    front = eng.run()
    return {"cfg": cfg, "engine": eng, "store": store, "front": front, "asked": list(evaluator.keys),
            "evaluator": evaluator, "reported": reported}


def test_generations_store_every_evaluation_once(full_run: dict[str, Any]) -> None:
    store: RunStore = full_run["store"]
    asked = full_run["asked"]
    assert len(asked) == len(set(asked)), "an evaluation was repeated"
    assert {e.key for e in store.evaluations()} == set(asked)
    generations = store.generations()
    assert [g["generation"] for g in generations] == [0, 1] and all(g["summary"] for g in generations)
    backbones = store.evaluations("backbone")
    assert {e.modality for e in backbones} == {"image", "thumb"}
    assert all(0.0 <= e.val_metric <= 1.0 and e.latency_ms > 0 and e.energy_mj > 0 for e in store.evaluations())
    # stage 2 got the top half of each modality's distinct backbones, i.e. 2 tuples per generation at most
    assert all(1 <= g["summary"]["stage2_evaluations"] <= 2 for g in generations)


def test_on_evaluation_reports_each_stored_multimodal_candidate_once(full_run: dict[str, Any]) -> None:
    store: RunStore = full_run["store"]
    reported = full_run["reported"]
    def rows(evaluations: list[Any]) -> list[tuple[Any, ...]]:
        return [(e.key, e.kind, e.generation, e.val_metric, e.latency_ms, e.energy_mj) for e in evaluations]

    assert rows(reported) == rows(store.evaluations("candidate"))  # as stored, in order, no backbone
    assert {e.generation for e in reported} == {0, 1}


def test_front_is_the_non_dominated_set_of_all_candidates(full_run: dict[str, Any]) -> None:
    store: RunStore = full_run["store"]
    candidates = store.evaluations("candidate")
    F = np.array([e.objectives for e in candidates])
    expected = {e.key for e, keep in zip(candidates, pareto_mask(F)) if keep}
    assert {e.key for e in full_run["front"]} == expected
    for e in candidates:  # every candidate has its derived network, genotype and whole-network cost
        assert StoreLayout(store.path.parent).fusion(e.key).is_file()
        Genotype.parse(e.genotype.to_json())
        assert e.latency_ms > sum(1 for _ in e.genotype.cells) * 0.01


def test_next_generation_keeps_the_elites_and_uses_inherited_genes(full_run: dict[str, Any]) -> None:
    store: RunStore = full_run["store"]
    space = full_run["engine"].space
    g0, g1 = store.generations()
    population = [space.parse(c) for c in g1["state"]["population"]]
    keys = [space.candidate_hash(c) for c in population]
    assert set(g0["summary"]["elites"]) <= set(keys)
    assert len(population) == 4 and len(set(keys)) == 4
    for g in (g0, g1):  # stage 2 evaluated population genomes as they are, or pairs of their backbones
        stored = [space.parse(c) for c in g["state"]["population"]]
        members = {space.candidate_hash(c) for c in stored}
        archs = {m: [c.backbones[m] for c in stored] for m in space.backbones}
        for e in store.evaluations("candidate"):
            if e.generation == g["generation"]:
                assert e.key in members or all(a in archs[m] for m, a in e.arch.backbones.items())
    assert not set(g0["summary"]["elites"]) & {e.key for e in store.evaluations("candidate") if e.generation == 1}


def test_test_metric_of_the_final_front(full_run: dict[str, Any]) -> None:
    store: RunStore = full_run["store"]
    front = store.pareto_front()
    progress: list[tuple[str, int, int]] = []
    store.set_test_metric(front[0].key, -1.0)  # as a run from before the shuffled-modality scores left it
    add_test_metrics(store, front, lambda: full_run["evaluator"].evaluator,
                     on_progress=lambda *step: progress.append(step))
    assert all(e.test_metric is not None and 0 <= e.test_metric <= 1 for e in store.pareto_front())
    for e in store.pareto_front():  # each multimodal model also scored with each modality's features shuffled
        assert set(e.test_shuffled) == set(e.candidate.backbones)
        assert all(0 <= v <= 1 for v in e.test_shuffled.values())
    tested = len(front) + len({b.modality for b in store.evaluations("backbone")})  # each measured once
    assert progress == [("test metrics", done, tested) for done in range(tested + 1)]
    backbones = store.evaluations("backbone")
    for modality in {b.modality for b in backbones}:  # the unimodal baseline: the best backbone, tested too
        best = max((b for b in backbones if b.modality == modality), key=lambda b: b.val_metric)
        assert [b.key for b in backbones if b.modality == modality and b.test_metric is not None] == [best.key]
        evaluator = full_run["evaluator"].evaluator
        assert best.test_metric == evaluator.subnet_metric(modality, best.arch, evaluator.dataset.split("test"))


def test_a_finished_run_resumes_without_evaluating_again(full_run: dict[str, Any], lut: Any, mnist_pair: Any) -> None:
    cfg = full_run["cfg"]
    eng, store, evaluator = engine(cfg, lut, mnist_pair)
    front = eng.run()
    assert evaluator.keys == []
    assert [e.key for e in front] == [e.key for e in full_run["front"]]


def test_interrupted_generation_resumes_to_the_same_front(tmp_path: Path, full_run: dict[str, Any], lut: Any,
                                                          mnist_pair: Any) -> None:
    cfg = search_config(tmp_path)
    eng, store, evaluator = engine(cfg, lut, mnist_pair)

    class Stop(Exception):
        pass

    calls = {"n": 0}
    real = evaluator.evaluator

    def dying(task: EvalTask) -> EvalResult:
        calls["n"] += 1
        if calls["n"] == 10:  # in the middle of generation 1's stage 1 or 2
            raise Stop
        return real(task)

    evaluator.evaluator = dying  # type: ignore[assignment]
    with pytest.raises(Stop):
        eng.run()
    stored = len(store.evaluations())
    assert 0 < stored < len(full_run["asked"])
    eng2, _, evaluator2 = engine(cfg, lut, mnist_pair, evaluator=CountingEvaluator(real))
    front = eng2.run()
    assert not set(evaluator2.keys) & {e.key for e in store.evaluations()[:stored]}
    assert [(e.key, e.val_metric, e.latency_ms) for e in front] == \
        [(e.key, e.val_metric, e.latency_ms) for e in full_run["front"]]


def test_a_generation_stopped_inside_stage_2_resumes_to_the_same_candidates(tmp_path: Path, full_run: dict[str, Any],
                                                                            lut: Any, mnist_pair: Any) -> None:
    """A candidate the stopped generation already stored keeps its stage-2 slot on resume: it is not taken
    for an elite of an earlier generation, which would send other candidates to stage 2 in its place."""
    cfg = search_config(tmp_path)
    eng, store, evaluator = engine(cfg, lut, mnist_pair)
    uninterrupted = {(e.key, e.generation) for e in full_run["store"].evaluations("candidate")}
    first = [key for key, g in uninterrupted if g == 0]
    assert len(first) >= 2, "the config must send two candidates to stage 2 in generation 0"

    class Stop(Exception):
        pass

    real = evaluator.evaluator
    stored: list[str] = []

    def dying(task: EvalTask) -> EvalResult:
        if task.key in first:
            if stored:  # one of generation 0's stage-2 candidates is stored: stop at the next
                raise Stop
            stored.append(task.key)
        return real(task)

    evaluator.evaluator = dying  # type: ignore[assignment]
    with pytest.raises(Stop):
        eng.run()
    assert stored and store.known_keys(stored) == set(stored)
    eng2, _, evaluator2 = engine(cfg, lut, mnist_pair, evaluator=CountingEvaluator(real))
    eng2.run()
    assert {(e.key, e.generation) for e in store.evaluations("candidate")} == uninterrupted
    assert stored[0] not in evaluator2.keys


@pytest.mark.parametrize("variant", ["fb-ff", "fb-sf", "random", "sb-sf"])
def test_baseline_variants(variant: str, tmp_path: Path, lut: Any, mnist_pair: Any) -> None:
    cfg = search_config(tmp_path, generations=1)
    eng, store, evaluator = engine(cfg, lut, mnist_pair, variant)
    front = eng.run()
    candidates = store.evaluations("candidate")
    assert front and candidates
    if variant.startswith("fb"):
        assert not store.evaluations("backbone")
        maxed = {m: s.max() for m, s in eng.space.backbones.items()}
        assert all(c.arch.backbones == {m: eng.space.backbones[m].normalize(a) for m, a in maxed.items()}
                   for c in candidates)
    if variant == "fb-ff":
        macro = eng.space.macro.max()
        assert len(candidates) == 1
        assert candidates[0].genotype == Genotype.dense_over(TAPS, macro.cells, macro.nodes, cfg.fusion.operators, 2)
    if variant == "fb-sf":
        assert len(candidates) == 4  # every (cells, nodes) choice: 2 x 2
    if variant == "random":
        assert len(candidates) == eng.tuples and not store.evaluations("backbone")


def test_latency_budget_keeps_only_feasible_models_on_the_front(full_run: dict[str, Any], lut: Any,
                                                                 mnist_pair: Any) -> None:
    store: RunStore = full_run["store"]
    latencies = sorted(e.latency_ms for e in store.evaluations("candidate"))
    assert latencies[0] < latencies[-1]
    budget = latencies[0] + (latencies[-1] - latencies[0]) / 2  # between the cheapest and the dearest
    cfg = full_run["cfg"].model_copy(update={"search": full_run["cfg"].search.model_copy(
        update={"max_latency_ms": budget})})
    eng = SearchEngine(cfg, store, InlineExecutor(full_run["evaluator"]), Variant.named("sb-sf-hw"),
                       CostModel(lut, cfg, SHAPES, 10), TAPS)
    front = eng._front()
    assert front and all(e.latency_ms <= budget for e in front)
    violation = eng._violation(store.evaluations("candidate"))
    assert violation is not None and (violation > 0).any() and (violation == 0).any()
