"""Elastic Maxout architecture encoding {"hidden": h, "blocks": n, "pieces": k, "width_mult": m}
(text/vector inputs): block i has round(h x m^i) units of k pieces each."""

from __future__ import annotations

from harmonic_nas.config.schema import MaxoutSpace
from harmonic_nas.space.base import ChoiceGenes, register_arch_space
from harmonic_nas.space.encoding import stable_hash
from harmonic_nas.space.values import BackboneArch


def block_width(hidden: int, width_mult: float, index: int) -> int:
    """Units of block ``index``: the first block's ``hidden`` times ``width_mult`` once per block before it
    (the authors' factor_multiplier), at least one."""
    return max(1, round(hidden * width_mult**index))


class MaxoutArch(BackboneArch):
    """Units of the first block, number of blocks, pieces per maxout unit, width multiplier per block."""

    hidden: int
    blocks: int
    pieces: int
    width_mult: float

    def widths(self) -> list[int]:
        """Units of every block, first to last."""
        return [block_width(self.hidden, self.width_mult, i) for i in range(self.blocks)]

    def short_text(self) -> str:
        """``u<units of each block>p<pieces>``, e.g. ``u64-128p2``: the widths say hidden, blocks and the width
        multiplier at once, in a token that fits the front table's backbone column."""
        return "u" + "-".join(map(str, self.widths())) + f"p{self.pieces}"


@register_arch_space("maxout")
class MaxoutArchSpace(ChoiceGenes):
    """The choices of a :class:`MaxoutSpace`: four independent genes."""

    value_type = MaxoutArch

    def __init__(self, cfg: MaxoutSpace, name: str | None = None) -> None:
        self.cfg = cfg
        super().__init__(name or cfg.type, {"hidden": sorted(cfg.hidden), "blocks": sorted(cfg.blocks),
                                            "pieces": sorted(cfg.pieces),
                                            "width_mult": sorted(cfg.width_multipliers)})

    def normalize(self, arch: MaxoutArch) -> MaxoutArch:
        """One block never applies its multiplier: those archs are one network, named with the first
        multiplier."""
        if arch.blocks == 1:
            return arch.model_copy(update={"width_mult": self.choices["width_mult"][0]})
        return arch

    def arch_hash(self, arch: MaxoutArch) -> str:
        return stable_hash(self.normalize(arch).to_json())
