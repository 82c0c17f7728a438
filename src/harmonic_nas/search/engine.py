"""The two-tier search loop (stage 1 evolution over backbones and the fusion macro gene, stage 2 fusion
search per selected tuple), driven generation by generation from the run store so that it resumes.

One generation of the full method:

1. The population: P multimodal candidates. Generation 0 samples them; later generations keep the elites
   and fill up with their children (binary tournament on rank and crowding, crossover with probability
   ``crossover_prob`` swapping same-modality blocks and macro genes, mutation with ``mutation_prob`` per
   block and per macro gene). Candidates already in the population are not added twice.
2. Stage 1: every distinct backbone of each modality is scored (BN-recalibrated metric on the val score
   part, LUT latency and energy as a standalone classifier); NSGA-II ranks each modality's backbones and
   keeps the top ``top_fraction``.
3. k candidates go to stage 2 (search/pairing.py): the population's own candidates whose backbones all
   survived, as they are with their own (C, D); free slots filled by pairing the unused survivors rank by
   rank. Candidates evaluated before (the elites) take no slot and keep their pairing. Each goes through
   stage 2 (fusion search, derivation, fine-tune) and is costed as a whole network.
4. NSGA-II on (1 - val metric, latency, energy) with constraint domination on the optional budgets keeps
   the elites (``elite_fraction`` of k, at least 2) among the previous elites and the new tuples.

Every evaluation is stored the moment it finishes; everything else is a deterministic function of the
stored state and the seed (each generation has its own RNG), so a resumed run ends with the same front.
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.layout import StoreLayout
from harmonic_nas.runtime import step_rng
from harmonic_nas.errors import UserError
from harmonic_nas.search.evaluator import EvalResult, EvalTask, WorkerSetupError
from harmonic_nas.search.executors import Executor
from harmonic_nas.search.indicators import hypervolume, pareto_mask
from harmonic_nas.search.nsga2 import binary_tournament, crowding_distance, non_dominated_ranks, select_survivors
from harmonic_nas.search.pairing import stage2_candidates
from harmonic_nas.search.store import Evaluation, RunStore
from harmonic_nas.search.variants import Variant
from harmonic_nas.space.candidate import Candidate, CandidateSpace
from harmonic_nas.space.genotype import Genotype
from harmonic_nas.torchfile import save_atomic

# (stage label, done, total) after every finished evaluation; (generation, summary) after a generation;
# the stored Evaluation after every multimodal candidate stored.
ProgressHook = Callable[[str, int, int], None]
GenerationHook = Callable[[int, dict[str, Any]], None]
EvaluationHook = Callable[[Evaluation], None]


def objectives(evaluations: Sequence[Evaluation], hardware: bool) -> np.ndarray:
    """Minimised objectives: (1 - metric, latency, energy), or the error alone without hardware."""
    F = np.array([e.objectives for e in evaluations], dtype=float).reshape(len(evaluations), 3)
    return F if hardware else F[:, :1]


class SearchEngine:
    """Runs (or resumes) one search variant into ``store``; see the module docstring."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        store: RunStore,
        executor: Executor,
        variant: Variant,
        costs: CostModel,
        taps_per_modality: dict[str, int],
        *,
        on_progress: ProgressHook | None = None,
        on_generation: GenerationHook | None = None,
        on_evaluation: EvaluationHook | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.search = cfg.search
        self.store = store
        self.files = StoreLayout(store.path.parent)
        self.executor = executor
        self.variant = variant
        self.costs = costs
        self.taps = taps_per_modality
        self.space = CandidateSpace.from_config(cfg)
        self.on_progress = on_progress
        self.on_generation = on_generation
        self.on_evaluation = on_evaluation
        self.log_path = log_path
        self.population_size = self.search.population
        self.tuples = max(1, round(self.population_size * self.search.top_fraction))
        self.elites = max(2, math.ceil(self.search.elite_fraction * self.tuples))
        self.reference = self._reference()

    # the loop ---------------------------------------------------------------------------------------
    def run(self) -> list[Evaluation]:
        """All generations (finished ones are skipped); returns the final Pareto front."""
        generations = self.variant.generations(self.search.generations)
        elites: list[str] = []
        self.store.set_meta("owner", {"host": socket.gethostname(), "pid": os.getpid()})  # for `status`
        self._log("start", f"search {self.variant.name}: {generations} generation(s), store {self.store.path}", None)
        for g in range(generations):
            done = self._finished(g)
            if done is not None:
                elites = done["elites"]
                continue
            state = self.store.generation_state(g)
            if state is None:
                population = self._population(g, elites)
                self.store.start_generation(g, {"population": [c.to_json() for c in population]})
                self._log("generation", f"generation {g}: population of {len(population)}", g)
            else:
                population = [self.space.parse(c) for c in state["population"]]
                self._log("resume", f"generation {g}: resumed", g)
            elites = self._generation(g, population, elites)
        self.store.set_meta("owner", None)
        return self.store.pareto_front()

    def _finished(self, g: int) -> dict[str, Any] | None:
        for row in self.store.generations():
            if row["generation"] == g:
                return row["summary"]
        return None

    def _generation(self, g: int, population: list[Candidate], elites: list[str]) -> list[str]:
        started = time.time()
        if self.variant.evolves:
            tuples = self._stage1(g, population)
        else:
            tuples = population
        keys = self._stage2(g, tuples)
        members = [self.space.candidate_hash(c) for c in population]  # evaluated before: no new slot, a rival
        known = self.store.known_keys(members)
        pool = list(dict.fromkeys(elites + keys + [k for k in members if k in known]))
        pool_evals = [self._get(k) for k in pool]
        chosen = select_survivors(objectives(pool_evals, self.variant.hardware), self.elites,
                                  self._violation(pool_evals))
        new_elites = [pool[i] for i in chosen]
        front = self._front()
        summary = {
            "elites": new_elites,
            "front_size": len(front),
            "best_val_metric": max((e.val_metric for e in front), default=None),
            "hypervolume": self.hypervolume(front),
            "stage2_evaluations": len(keys),
            "seconds": time.time() - started,
        }
        self.store.finish_generation(g, summary, front)
        best = summary["best_val_metric"]
        self._log("generation", f"generation {g} done: front {len(front)}, best val "
                  f"{'-' if best is None else f'{best:.4f}'}, hypervolume {summary['hypervolume']:.4f}", g)
        if self.on_generation is not None:
            self.on_generation(g, summary)
        return new_elites

    # populations ------------------------------------------------------------------------------------
    def _population(self, g: int, elites: list[str]) -> list[Candidate]:
        rng = step_rng(self.cfg.runtime.seed, "search", self.variant.name, g)
        if not self.variant.searches_backbones:
            return self._fixed_backbone_candidates()
        if not self.variant.evolves:  # random search: new candidates, as many as the full method's stage 2
            return self._unique(lambda: self.space.sample(rng), self.tuples, self._evaluated_candidates())
        if g == 0 or not elites:
            return self._unique(lambda: self.space.sample(rng), self.population_size, set())
        parents = [self._get(k) for k in elites]
        F = objectives(parents, self.variant.hardware)
        ranks = non_dominated_ranks(F, self._violation(parents))
        crowding = crowding_distance(F, ranks)
        children = [p.candidate for p in parents]
        seen = {self.space.candidate_hash(c) for c in children}
        for _ in range(20 * self.population_size):
            if len(children) >= self.population_size:
                break
            a, b = (parents[i].candidate for i in binary_tournament(rng, ranks, crowding, 2))
            if rng.random() < self.search.crossover_prob:
                a, b = self.space.crossover(a, b, rng)
            for child in (a, b):
                child = self.space.normalize(self.space.mutate(child, rng, self.search.mutation_prob))
                key = self.space.candidate_hash(child)
                if key not in seen and len(children) < self.population_size:
                    seen.add(key)
                    children.append(child)
        fill = self._unique(lambda: self.space.sample(rng), self.population_size - len(children), seen)
        return children + fill

    def _unique(self, draw: Callable[[], Candidate], count: int, exclude: set[str]) -> list[Candidate]:
        out: list[Candidate] = []
        seen = set(exclude)
        for _ in range(50 * max(count, 1)):
            if len(out) >= count:
                break
            candidate = self.space.normalize(draw())
            key = self.space.candidate_hash(candidate)
            if key not in seen:
                seen.add(key)
                out.append(candidate)
        return out

    def _fixed_backbone_candidates(self) -> list[Candidate]:
        backbones = {m: space.max() for m, space in self.space.backbones.items()}
        macros = self.variant.macros(self.space.macro)
        return [self.space.normalize(Candidate(backbones=backbones, macro=m)) for m in macros[: self.population_size]]

    def _evaluated_candidates(self, before: int | None = None) -> set[str]:
        """Keys of the stored candidates (of the generations before ``before``, if given)."""
        return {e.key for e in self.store.evaluations("candidate") if before is None or e.generation < before}

    # stage 1 ----------------------------------------------------------------------------------------
    def _stage1(self, g: int, population: list[Candidate]) -> list[Candidate]:
        """Score every distinct backbone, keep each modality's top ones, and choose the candidates for
        stage 2 from them (search/pairing.py: the population's own candidates first)."""
        tasks: list[EvalTask] = []
        per_modality: dict[str, list[str]] = {}
        for m, space in self.space.backbones.items():
            archs = {self.space.backbone_key(m, c.backbones[m]): c.backbones[m] for c in population}
            per_modality[m] = list(archs)
            known = self.store.known_keys(archs)
            tasks += [EvalTask(key, "backbone", arch, modality=m) for key, arch in archs.items() if key not in known]
        self._run(g, "stage 1", tasks)
        survivors = {}
        for m, keys in per_modality.items():
            evals = [self._get(key) for key in keys]
            survivors[m] = [keys[i] for i in select_survivors(objectives(evals, self.variant.hardware), self.tuples)]
        # earlier generations' candidates (the elites) take no slot; this generation's own stored ones (a
        # resume inside stage 2) keep theirs, or other candidates would go to stage 2 in their place
        evaluated = {self.space.candidate_hash(c) for c in population} & self._evaluated_candidates(before=g)
        chosen = stage2_candidates(population, survivors, self.space.backbone_key, self.space.candidate_hash,
                                   self.tuples, evaluated)
        own = sum(1 for c in chosen if c in population)
        self._log("stage", f"stage 1: {own} candidate(s) of the population go to stage 2 as they are, "
                  f"{len(chosen) - own} paired from survivors", g)
        return [self.space.normalize(c) for c in chosen]

    # stage 2 ----------------------------------------------------------------------------------------
    def _stage2(self, g: int, candidates: list[Candidate]) -> list[str]:
        keys = [self.space.candidate_hash(c) for c in candidates]
        known = self.store.known_keys(keys)
        genotype = None if self.variant.searches_fusion else self._dense_fusion()
        tasks = [
            EvalTask(key, "candidate", c, genotype=genotype, hardware=self.variant.hardware)
            for key, c in dict(zip(keys, candidates)).items() if key not in known
        ]
        self._run(g, "stage 2", tasks)
        return list(dict.fromkeys(keys))

    # evaluation -------------------------------------------------------------------------------------
    def _run(self, g: int, label: str, tasks: list[EvalTask]) -> None:
        if self.on_progress is not None:
            self.on_progress(label, 0, len(tasks))
        if not tasks:
            return
        self._log("stage", f"{label}: {len(tasks)} evaluations", g)
        try:
            for done, result in enumerate(self.executor.run(tasks), start=1):
                self._store(g, result)
                if self.on_progress is not None:
                    self.on_progress(label, done, len(tasks))
        except WorkerSetupError as exc:
            raise UserError(str(exc)) from None

    def _store(self, g: int, result: EvalResult) -> None:
        task = result.task
        if result.fusion_state is not None:  # the weights first: a stored evaluation always has its network
            save_atomic(result.fusion_state, self.files.fusion(task.key))
        self.store.add_evaluation(task.key, task.kind, task.modality, g, task.arch, result.record, worker=result.worker)
        if self.on_evaluation is not None and task.kind == "candidate":
            self.on_evaluation(self._get(task.key))  # as stored: what Run.evaluations() will read

    def _get(self, key: str) -> Evaluation:
        evaluation = self.store.evaluation(key)
        if evaluation is None:
            raise RuntimeError(f"evaluation {key} is missing from {self.store.path}")
        return evaluation

    # ranking ----------------------------------------------------------------------------------------
    def _violation(self, evaluations: Sequence[Evaluation]) -> np.ndarray | None:
        limits = (self.search.max_latency_ms, self.search.max_energy_mj)
        if limits == (None, None):
            return None
        v = np.zeros(len(evaluations))
        for i, e in enumerate(evaluations):
            for value, limit in ((e.latency_ms, limits[0]), (e.energy_mj, limits[1])):
                if limit is not None:
                    v[i] += max(0.0, value / limit - 1.0)
        return v

    def _front(self) -> list[Evaluation]:
        """Non-dominated candidates on (error, latency, energy) among the feasible ones evaluated so far."""
        evaluations = self.store.evaluations("candidate")
        violation = self._violation(evaluations)
        if violation is not None and (violation == 0).any():
            evaluations = [e for e, v in zip(evaluations, violation) if v == 0]
        if not evaluations:
            return []
        mask = pareto_mask(objectives(evaluations, hardware=True))
        return [e for e, keep in zip(evaluations, mask) if keep]

    def _dense_fusion(self) -> Genotype:
        """FB+FF's fusion: the dense hypernet of the largest macro over every tap."""
        macro = self.space.macro.max()
        return Genotype.dense_over(self.taps, macro.cells, macro.nodes, self.cfg.fusion.operators,
                                   self.cfg.required_modalities)

    def _reference(self) -> list[float]:
        """Hypervolume reference point (error 1, and 1.5x the latency/energy of FB+FF: the max backbones with
        the dense fusion hypernet, the dearest network any variant evaluates): fixed per config, so runs and
        variants compare."""
        stored = self.store.meta().get("hv_reference")
        if stored is not None:
            return stored
        cost = self.costs.cost(self.space.largest(), self._dense_fusion())
        reference = [1.0, 1.5 * cost.latency_ms, 1.5 * cost.energy_mj]
        self.store.set_meta("hv_reference", reference)
        return reference

    def hypervolume(self, front: Sequence[Evaluation]) -> float:
        """Hypervolume of ``front`` in objectives scaled by the reference point (so within [0, 1])."""
        if not front:
            return 0.0
        reference = np.asarray(self.reference)
        return hypervolume(objectives(front, hardware=True) / reference, np.ones(3))

    def _log(self, kind: str, message: str, generation: int | None) -> None:
        self.store.log(kind, message, generation)
        if self.log_path is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"{stamp} [{self.variant.name}] {message}\n")
