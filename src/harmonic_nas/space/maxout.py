"""Elastic Maxout architecture encoding {"hidden": h, "blocks": n, "factor": k} (text/vector inputs)."""

from __future__ import annotations

import random
from typing import Any

from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.space.base import check_keys, match_choice, register_arch_space
from harmonic_nas.space.encoding import stable_hash

_FIELDS = ("hidden", "blocks", "factor")


@register_arch_space("maxout")
class MaxoutArchSpace:
    """Three integer genes: hidden units per block, number of blocks, pieces per maxout unit."""

    def __init__(self, cfg: MaxoutSpace, name: str | None = None) -> None:
        self.cfg = cfg
        self.name = name or cfg.type
        self.choices: dict[str, list[int]] = {
            "hidden": sorted(cfg.hidden),
            "blocks": sorted(cfg.blocks),
            "factor": sorted(cfg.factors),
        }

    def min(self) -> dict[str, Any]:
        return {f: self.choices[f][0] for f in _FIELDS}

    def max(self) -> dict[str, Any]:
        return {f: self.choices[f][-1] for f in _FIELDS}

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return {f: rng.choice(self.choices[f]) for f in _FIELDS}

    def validate(self, arch: Any) -> dict[str, Any]:
        check_keys(self.name, arch, _FIELDS)
        return {f: match_choice(self.name, f, arch[f], self.choices[f]) for f in _FIELDS}

    def normalize(self, arch: Any) -> dict[str, Any]:
        """Every gene is always used, so the clean copy is already canonical."""
        return self.validate(arch)

    def arch_hash(self, arch: Any) -> str:
        return stable_hash(self.normalize(arch))

    def mutate(self, arch: Any, rng: random.Random, prob: float) -> dict[str, Any]:
        """Each gene redrawn with probability ``prob``."""
        out = self.validate(arch)
        for f in _FIELDS:
            if rng.random() < prob:
                out[f] = rng.choice(self.choices[f])
        return out

    def crossover(self, a: Any, b: Any, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
        """Uniform crossover: each gene swapped with p = 0.5."""
        x, y = self.validate(a), self.validate(b)
        for f in _FIELDS:
            if rng.random() < 0.5:
                x[f], y[f] = y[f], x[f]
        return x, y
