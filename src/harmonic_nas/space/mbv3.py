"""Elastic MobileNetV3 architecture encoding {"ks": [...], "e": [...], "d": [...]} (OFA's layout)."""

from __future__ import annotations

import random
from typing import Any

from harmonic_nas.config.schema import MBV3Space
from harmonic_nas.space.base import check_keys, match_choice, register_arch_space
from harmonic_nas.space.encoding import InvalidArchError, stable_hash

_KEYS = ("ks", "e", "d")


@register_arch_space("mbv3")
class MBV3ArchSpace:
    """One ks and one e per block slot (``num_stages * max_depth`` slots, stage-major), one d per stage.

    Block ``i`` of stage ``s`` (slot ``s * max_depth + i``) is active when ``i < d[s]``.
    """

    def __init__(self, cfg: MBV3Space, name: str | None = None) -> None:
        self.cfg = cfg
        self.name = name or cfg.type
        self.kernels: list[int] = sorted(cfg.kernels)
        self.expands: list[float] = sorted(float(e) for e in cfg.expands)
        self.depths: list[int] = sorted(cfg.depths)
        self.num_stages = len(cfg.stages)
        self.max_depth = self.depths[-1]
        self.num_slots = self.num_stages * self.max_depth

    def slot(self, stage: int, block: int) -> int:
        """Index of block ``block`` of stage ``stage`` in ``ks`` / ``e``."""
        return stage * self.max_depth + block

    def _uniform(self, k: int, e: float, d: int) -> dict[str, Any]:
        return {"ks": [k] * self.num_slots, "e": [e] * self.num_slots, "d": [d] * self.num_stages}

    def min(self) -> dict[str, Any]:
        return self._uniform(self.kernels[0], self.expands[0], self.depths[0])

    def max(self) -> dict[str, Any]:
        return self._uniform(self.kernels[-1], self.expands[-1], self.depths[-1])

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return {
            "ks": [rng.choice(self.kernels) for _ in range(self.num_slots)],
            "e": [rng.choice(self.expands) for _ in range(self.num_slots)],
            "d": [rng.choice(self.depths) for _ in range(self.num_stages)],
        }

    def validate(self, arch: Any) -> dict[str, Any]:
        """Clean copy (ks/d as ints, e as floats of the space) or InvalidArchError naming the field."""
        check_keys(self.name, arch, _KEYS)
        out: dict[str, Any] = {}
        slots = f"block slot: {self.num_stages} stages x {self.max_depth} blocks"
        for key, length, choices, unit in (
            ("ks", self.num_slots, self.kernels, slots),
            ("e", self.num_slots, self.expands, slots),
            ("d", self.num_stages, self.depths, "stage"),
        ):
            values = arch[key]
            if not isinstance(values, (list, tuple)):
                raise InvalidArchError(
                    f"arch {self.name!r}: {key} must be a list of {length} values (one per {unit}), "
                    f"found {type(values).__name__}"
                )
            if len(values) != length:
                raise InvalidArchError(
                    f"arch {self.name!r}: {key} has {len(values)} values, expected {length} (one per {unit})"
                )
            out[key] = [match_choice(self.name, f"{key}[{i}]", v, choices) for i, v in enumerate(values)]
        return out

    def normalize(self, arch: Any) -> dict[str, Any]:
        """Inactive slots set to the smallest choices, so archs building the same network are equal."""
        clean = self.validate(arch)
        for s, depth in enumerate(clean["d"]):
            for i in range(depth, self.max_depth):
                clean["ks"][self.slot(s, i)] = self.kernels[0]
                clean["e"][self.slot(s, i)] = self.expands[0]
        return clean

    def arch_hash(self, arch: Any) -> str:
        return stable_hash(self.normalize(arch))

    def mutate(self, arch: Any, rng: random.Random, prob: float) -> dict[str, Any]:
        """Per block slot with probability ``prob`` a new (k, e); per stage with probability ``prob`` a new d."""
        out = self.validate(arch)
        for j in range(self.num_slots):
            if rng.random() < prob:
                out["ks"][j] = rng.choice(self.kernels)
                out["e"][j] = rng.choice(self.expands)
        for s in range(self.num_stages):
            if rng.random() < prob:
                out["d"][s] = rng.choice(self.depths)
        return out

    def crossover(self, a: Any, b: Any, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
        """Uniform crossover: each block slot (k and e together) and each stage depth swapped with p = 0.5."""
        x, y = self.validate(a), self.validate(b)
        for j in range(self.num_slots):
            if rng.random() < 0.5:
                x["ks"][j], y["ks"][j] = y["ks"][j], x["ks"][j]
                x["e"][j], y["e"][j] = y["e"][j], x["e"][j]
        for s in range(self.num_stages):
            if rng.random() < 0.5:
                x["d"][s], y["d"][s] = y["d"][s], x["d"][s]
        return x, y
