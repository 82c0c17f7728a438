"""A candidate multimodal network {"backbones": {modality: arch}, "macro": {"cells": C, "nodes": D}}:
the unit stage 1 evolves and the store is keyed by (its stable hash of the canonical form)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.space.base import ArchSpace, check_keys
from harmonic_nas.space.encoding import InvalidArchError, stable_hash
from harmonic_nas.space.fusion import FusionMacroSpace


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

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return {
            "backbones": {m: space.sample(rng) for m, space in self.backbones.items()},
            "macro": self.macro.sample(rng),
        }

    def validate(self, candidate: Any) -> dict[str, Any]:
        """Clean copy with backbones in config order, or InvalidArchError naming the modality and field."""
        check_keys("candidate", candidate, ("backbones", "macro"))
        archs = candidate["backbones"]
        if not isinstance(archs, dict):
            raise InvalidArchError(f"candidate: backbones must map modality -> arch, found {type(archs).__name__}")
        missing = [m for m in self.backbones if m not in archs]
        unknown = [str(m) for m in archs if m not in self.backbones]
        if missing or unknown:
            problem = f"missing modality {missing[0]!r}" if missing else f"unknown modality {unknown[0]!r}"
            raise InvalidArchError(f"candidate: {problem} (expected {', '.join(self.backbones)})")
        return {
            "backbones": {m: space.validate(archs[m]) for m, space in self.backbones.items()},
            "macro": self.macro.validate(candidate["macro"]),
        }

    def normalize(self, candidate: Any) -> dict[str, Any]:
        """Canonical form: every backbone arch normalised by its space (inactive genes fixed)."""
        clean = self.validate(candidate)
        return {
            "backbones": {m: space.normalize(clean["backbones"][m]) for m, space in self.backbones.items()},
            "macro": clean["macro"],
        }

    def candidate_hash(self, candidate: Any) -> str:
        return stable_hash(self.normalize(candidate))

    def mutate(self, candidate: Any, rng: random.Random, prob: float) -> dict[str, Any]:
        clean = self.validate(candidate)
        return {
            "backbones": {m: s.mutate(clean["backbones"][m], rng, prob) for m, s in self.backbones.items()},
            "macro": self.macro.mutate(clean["macro"], rng, prob),
        }

    def crossover(self, a: Any, b: Any, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
        """Per modality the backbones of the same modality cross over; the macros cross over too."""
        x, y = self.validate(a), self.validate(b)
        for m, space in self.backbones.items():
            x["backbones"][m], y["backbones"][m] = space.crossover(x["backbones"][m], y["backbones"][m], rng)
        x["macro"], y["macro"] = self.macro.crossover(x["macro"], y["macro"], rng)
        return x, y
