"""A candidate multimodal network {"backbones": {modality: arch}, "macro": {"cells": C, "nodes": D}}:
the unit stage 1 evolves and the store is keyed by (its stable hash of the canonical form)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pydantic import SerializeAsAny

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.space.base import ArchSpace, check_keys
from harmonic_nas.space.encoding import InvalidArchError, stable_hash
from harmonic_nas.space.fusion import FusionMacroSpace, Macro
from harmonic_nas.space.values import BackboneArch, Value


class Candidate(Value):
    """One backbone arch per modality (config order) and the fusion macro."""

    backbones: dict[str, SerializeAsAny[BackboneArch]]
    macro: Macro

    @property
    def modalities(self) -> list[str]:
        return list(self.backbones)


class CandidateSpace:
    """One backbone space per modality (config order) plus the fusion macro space."""

    def __init__(self, backbones: Mapping[str, ArchSpace], macro: FusionMacroSpace) -> None:
        if not backbones:
            raise InvalidArchError("a candidate space needs at least one modality")
        self.backbones = dict(backbones)
        self.macro = macro

    @classmethod
    def from_config(cls, cfg: ExperimentConfig) -> CandidateSpace:
        """The candidate space of an experiment: its modalities in config order and its fusion choices."""
        from harmonic_nas.space import make_space

        spaces = {m: make_space(space_cfg, m) for m, space_cfg in cfg.modalities.items()}
        return cls(spaces, FusionMacroSpace(cfg.fusion.cells, cfg.fusion.nodes))

    def sample(self, rng: random.Random) -> Candidate:
        return Candidate(backbones={m: space.sample(rng) for m, space in self.backbones.items()},
                         macro=self.macro.sample(rng))

    def largest(self) -> Candidate:
        """Every backbone's max subnet and the largest macro: the dearest candidate."""
        return Candidate(backbones={m: s.max() for m, s in self.backbones.items()}, macro=self.macro.max())

    def parse(self, candidate: Any) -> Candidate:
        """``candidate`` (its JSON, or a candidate) with backbones in config order, or an InvalidArchError
        naming the modality and field."""
        raw = candidate.to_json() if isinstance(candidate, Candidate) else candidate
        check_keys("candidate", raw, ("backbones", "macro"))
        archs = raw["backbones"]
        if not isinstance(archs, dict):
            raise InvalidArchError(f"candidate: backbones must map modality -> arch, found {type(archs).__name__}")
        missing = [m for m in self.backbones if m not in archs]
        unknown = [str(m) for m in archs if m not in self.backbones]
        if missing or unknown:
            problem = f"missing modality {missing[0]!r}" if missing else f"unknown modality {unknown[0]!r}"
            raise InvalidArchError(f"candidate: {problem} (expected {', '.join(self.backbones)})")
        return Candidate(backbones={m: space.parse(archs[m]) for m, space in self.backbones.items()},
                         macro=self.macro.parse(raw["macro"]))

    def normalize(self, candidate: Candidate) -> Candidate:
        """Canonical form: every backbone arch normalised by its space (inactive genes fixed)."""
        return Candidate(backbones={m: s.normalize(candidate.backbones[m]) for m, s in self.backbones.items()},
                         macro=candidate.macro)

    def candidate_hash(self, candidate: Candidate) -> str:
        return stable_hash(self.normalize(candidate).to_json())

    def backbone_key(self, modality: str, arch: BackboneArch) -> str:
        """The store key of a backbone evaluation: "<modality>:<arch hash>"."""
        return f"{modality}:{self.backbones[modality].arch_hash(arch)}"

    def mutate(self, candidate: Candidate, rng: random.Random, prob: float) -> Candidate:
        return Candidate(
            backbones={m: s.mutate(candidate.backbones[m], rng, prob) for m, s in self.backbones.items()},
            macro=self.macro.mutate(candidate.macro, rng, prob),
        )

    def crossover(self, a: Candidate, b: Candidate, rng: random.Random) -> tuple[Candidate, Candidate]:
        """Per modality the backbones of the same modality cross over; the macros cross over too."""
        x, y = dict(a.backbones), dict(b.backbones)
        for m, space in self.backbones.items():
            x[m], y[m] = space.crossover(x[m], y[m], rng)
        mx, my = self.macro.crossover(a.macro, b.macro, rng)
        return Candidate(backbones=x, macro=mx), Candidate(backbones=y, macro=my)
