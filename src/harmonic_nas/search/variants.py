"""The paper's Figure 4 ablation as variants of one search engine, plus random search at equal budget.

* ``sb-sf-hw``: the full method (searched backbones, searched fusion, hardware objectives everywhere).
* ``sb-sf``: no hardware objectives (stage-1 and multimodal ranking on the metric alone, no hardware
  loss in the fusion search); latency and energy are still measured from the LUT.
* ``fb-sf``: fixed backbones (the max subnets), searched fusion for each fusion macro choice.
* ``fb-ff``: fixed backbones and the paper's dense fusion, the un-derived hypernet of the largest macro
  (every tap, input pair and operator, uniform weights; :func:`harmonic_nas.space.fusion.dense_genotype`),
  trained for the search + fine-tune epochs of stage 2, costed as all of it runs.
* ``random``: candidates drawn at random, as many stage-2 evaluations per generation as the full method.
"""

from __future__ import annotations

from dataclasses import dataclass

VARIANTS = ("sb-sf-hw", "sb-sf", "fb-sf", "fb-ff", "random")


@dataclass(frozen=True)
class Variant:
    name: str

    def __post_init__(self) -> None:
        if self.name not in VARIANTS:
            from harmonic_nas.errors import UserError

            raise UserError(f"variant {self.name!r}: expected one of {', '.join(VARIANTS)}")

    @property
    def hardware(self) -> bool:
        """Latency and energy are objectives (ranking and fusion loss)."""
        return self.name in ("sb-sf-hw", "random")

    @property
    def evolves(self) -> bool:
        return self.name in ("sb-sf-hw", "sb-sf")

    @property
    def is_baseline(self) -> bool:
        return self.name != "sb-sf-hw"

    def generations(self, configured: int) -> int:
        """Generations this variant runs: the configured number if it evolves or samples at random each
        generation; one otherwise (the fixed-backbone baselines evaluate every macro choice once)."""
        return configured if self.evolves or self.name == "random" else 1
