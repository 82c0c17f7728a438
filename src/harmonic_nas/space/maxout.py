"""Elastic Maxout architecture encoding {"hidden": h, "blocks": n, "factor": k} (text/vector inputs)."""

from __future__ import annotations

from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.space.base import ChoiceGenes, register_arch_space
from harmonic_nas.space.encoding import stable_hash
from harmonic_nas.space.values import BackboneArch


class MaxoutArch(BackboneArch):
    """Hidden units per block, number of blocks, pieces per maxout unit."""

    hidden: int
    blocks: int
    factor: int


@register_arch_space("maxout")
class MaxoutArchSpace(ChoiceGenes):
    """The choices of a :class:`MaxoutSpace`: three integer genes."""

    value_type = MaxoutArch

    def __init__(self, cfg: MaxoutSpace, name: str | None = None) -> None:
        self.cfg = cfg
        super().__init__(name or cfg.type, {"hidden": sorted(cfg.hidden), "blocks": sorted(cfg.blocks),
                                            "factor": sorted(cfg.factors)})

    def normalize(self, arch: MaxoutArch) -> MaxoutArch:
        """Every gene is always used, so every arch is already canonical."""
        return arch

    def arch_hash(self, arch: MaxoutArch) -> str:
        return stable_hash(arch.to_json())
