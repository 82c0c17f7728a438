"""The paper's Figure 4 ablation as variants of one search engine, plus random search at equal budget.

* ``sb-sf-hw``: the full method (searched backbones, searched fusion, hardware objectives everywhere).
* ``sb-sf``: no hardware objectives (stage-1 and multimodal ranking on the metric alone, no hardware
  loss in the fusion search); latency and energy are still measured from the LUT.
* ``fb-sf``: fixed backbones (the max subnets), searched fusion for each fusion macro choice.
* ``fb-ff``: fixed backbones and the paper's dense fusion, the un-derived hypernet of the largest macro
  (every tap, input pair and operator, uniform weights; :meth:`harmonic_nas.space.genotype.Genotype.dense_over`),
  trained for the search + fine-tune epochs of stage 2, costed as all of it runs.
* ``random``: candidates drawn at random, as many stage-2 evaluations per generation as the full method.

Each variant is a set of switches the engine reads; none of it compares names.
"""

from __future__ import annotations

from dataclasses import dataclass
from harmonic_nas.errors import UserError
from harmonic_nas.layout import RunLayout, StoreLayout
from harmonic_nas.space.fusion import FusionMacroSpace, Macro


@dataclass(frozen=True)
class Variant:
    name: str
    label: str  # the paper's name (Figure 4)
    searches_backbones: bool  # stage 1 picks backbones; else the max subnet of every modality
    evolves: bool  # NSGA-II over the generations; else (with searched backbones) new random candidates each one
    searches_fusion: bool  # stage 2's DARTS search and derivation; else the dense fusion hypernet as it is
    hardware: bool  # latency and energy are objectives (ranking and the fusion search's loss)
    baseline: bool = True  # a baseline's store lives in RUN_DIR/baselines/<name>/

    @classmethod
    def named(cls, name: str) -> Variant:
        """The variant called ``name``, or a UserError listing the known ones."""
        if name not in _BY_NAME:
            raise UserError(f"variant {name!r}: expected one of {', '.join(VARIANTS)}")
        return _BY_NAME[name]

    def generations(self, configured: int) -> int:
        """Generations this variant runs: the configured number if it searches backbones (evolving or
        sampling at random each generation); one otherwise (the fixed-backbone baselines evaluate every
        macro choice once)."""
        return configured if self.searches_backbones else 1

    def macros(self, space: FusionMacroSpace) -> list[Macro]:
        """The fusion macros of the fixed-backbone candidates: every (C, D) choice when the fusion is
        searched, the largest when it is the dense hypernet."""
        return space.every() if self.searches_fusion else [space.max()]

    def store(self, run: RunLayout) -> StoreLayout:
        """Where this variant's store lives in ``run``."""
        return run.search(self.name if self.baseline else None)

    def resume_command(self, run_dir: object) -> str:
        """The command that continues this variant's search in ``run_dir`` (a baseline needs its --variant:
        without it, --resume continues the full method's search instead)."""
        return f"harmonic-nas search --resume {run_dir}" + (f" --variant {self.name}" if self.baseline else "")


FULL_METHOD = Variant("sb-sf-hw", "SB+SF+HW", searches_backbones=True, evolves=True, searches_fusion=True,
                      hardware=True, baseline=False)
# Figure 4 order, then random search.
ABLATION = (
    Variant("fb-ff", "FB+FF", searches_backbones=False, evolves=False, searches_fusion=False, hardware=False),
    Variant("fb-sf", "FB+SF", searches_backbones=False, evolves=False, searches_fusion=True, hardware=False),
    Variant("sb-sf", "SB+SF", searches_backbones=True, evolves=True, searches_fusion=True, hardware=False),
    FULL_METHOD,
    Variant("random", "random", searches_backbones=True, evolves=False, searches_fusion=True, hardware=True),
)
_BY_NAME = {v.name: v for v in ABLATION}
VARIANTS = ("sb-sf-hw", "sb-sf", "fb-sf", "fb-ff", "random")  # the full method first, as the command lists them
