"""Elastic MobileNetV3 architecture encoding {"ks": [...], "e": [...], "d": [...]} (OFA's layout)."""

from __future__ import annotations

import random
from typing import Any

from harmonic_nas.config.schema import MBV3Space
from harmonic_nas.space.base import check_keys, match_choice, register_arch_space
from harmonic_nas.space.encoding import InvalidArchError, stable_hash
from harmonic_nas.space.values import BackboneArch, value_text

_KEYS = ("ks", "e", "d")


class MBV3Arch(BackboneArch):
    """One ks and one e per block slot (stages x max depth, stage-major), one d per stage: block ``i`` of
    stage ``s`` (slot ``s * max_depth + i``) is active when ``i < d[s]``."""

    ks: tuple[int, ...]
    e: tuple[float, ...]
    d: tuple[int, ...]

    def table_fields(self) -> list[tuple[str, str]]:
        """K (kernel sizes), E (expand ratios) of the active blocks only, stage after stage, and D (depth per
        stage), so the lists read like the paper's Table 7."""
        per_stage = len(self.ks) // max(len(self.d), 1)
        active = [s * per_stage + i for s, d in enumerate(self.d) for i in range(min(d, per_stage))]
        return [("K", value_text([self.ks[i] for i in active])), ("E", value_text([self.e[i] for i in active])),
                ("D", value_text(list(self.d)))]

    def short_text(self) -> str:
        return "d" + "".join(map(str, self.d))


@register_arch_space("mbv3")
class MBV3ArchSpace:
    """The choices of an :class:`MBV3Space`: ``num_stages * max_depth`` block slots, one depth per stage."""

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

    def _uniform(self, k: int, e: float, d: int) -> MBV3Arch:
        return MBV3Arch(ks=[k] * self.num_slots, e=[e] * self.num_slots, d=[d] * self.num_stages)

    def min(self) -> MBV3Arch:
        return self._uniform(self.kernels[0], self.expands[0], self.depths[0])

    def max(self) -> MBV3Arch:
        return self._uniform(self.kernels[-1], self.expands[-1], self.depths[-1])

    def sample(self, rng: random.Random) -> MBV3Arch:
        return MBV3Arch(
            ks=[rng.choice(self.kernels) for _ in range(self.num_slots)],
            e=[rng.choice(self.expands) for _ in range(self.num_slots)],
            d=[rng.choice(self.depths) for _ in range(self.num_stages)],
        )

    def parse(self, arch: Any) -> MBV3Arch:
        """``arch`` (its JSON, or an arch) as an arch of this space (ks/d ints, e floats of the space), or an
        InvalidArchError naming the field."""
        raw = arch.to_json() if isinstance(arch, MBV3Arch) else arch
        check_keys(self.name, raw, _KEYS)
        out: dict[str, Any] = {}
        slots = f"block slot: {self.num_stages} stages x {self.max_depth} blocks"
        for key, length, choices, unit in (
            ("ks", self.num_slots, self.kernels, slots),
            ("e", self.num_slots, self.expands, slots),
            ("d", self.num_stages, self.depths, "stage"),
        ):
            values = raw[key]
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
        return MBV3Arch(**out)

    def normalize(self, arch: MBV3Arch) -> MBV3Arch:
        """Inactive slots set to the smallest choices, so archs building the same network are equal."""
        ks, e = list(arch.ks), list(arch.e)
        for s, depth in enumerate(arch.d):
            for i in range(depth, self.max_depth):
                ks[self.slot(s, i)] = self.kernels[0]
                e[self.slot(s, i)] = self.expands[0]
        return MBV3Arch(ks=ks, e=e, d=arch.d)

    def arch_hash(self, arch: MBV3Arch) -> str:
        return stable_hash(self.normalize(arch).to_json())

    def mutate(self, arch: MBV3Arch, rng: random.Random, prob: float) -> MBV3Arch:
        """Per block slot with probability ``prob`` a new (k, e); per stage with probability ``prob`` a new d."""
        ks, e, d = list(arch.ks), list(arch.e), list(arch.d)
        for j in range(self.num_slots):
            if rng.random() < prob:
                ks[j] = rng.choice(self.kernels)
                e[j] = rng.choice(self.expands)
        for s in range(self.num_stages):
            if rng.random() < prob:
                d[s] = rng.choice(self.depths)
        return MBV3Arch(ks=ks, e=e, d=d)

    def crossover(self, a: MBV3Arch, b: MBV3Arch, rng: random.Random) -> tuple[MBV3Arch, MBV3Arch]:
        """Uniform crossover: each block slot (k and e together) and each stage depth swapped with p = 0.5."""
        x, y = a.to_json(), b.to_json()
        for j in range(self.num_slots):
            if rng.random() < 0.5:
                x["ks"][j], y["ks"][j] = y["ks"][j], x["ks"][j]
                x["e"][j], y["e"][j] = y["e"][j], x["e"][j]
        for s in range(self.num_stages):
            if rng.random() < 0.5:
                x["d"][s], y["d"][s] = y["d"][s], x["d"][s]
        return MBV3Arch(**x), MBV3Arch(**y)
