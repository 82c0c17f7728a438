"""The cost model: a candidate's latency and energy from the LUT, additive and (when the LUT carries a
calibration) corrected for the per-model overhead the additive sum misses (see calibration.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.costing.catalog import candidate_specs
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.space.candidate import Candidate
from harmonic_nas.space.genotype import Genotype
from harmonic_nas.space.values import BackboneArch


@dataclass(frozen=True)
class Cost:
    """Latency (ms) and energy (mJ) of one inference at the LUT's batch size, and how many layers."""

    latency_ms: float
    energy_mj: float
    layers: int


class CostModel:
    """Costs candidates of one experiment from one LUT.

    ``calibrated=False`` (or a LUT without calibration) gives the plain additive sum; a layer missing from
    the LUT raises ``MissingLutEntryError`` naming its key and the profile command.
    """

    def __init__(
        self,
        table: LookupTable,
        cfg: ExperimentConfig,
        input_shapes: Mapping[str, tuple[int, ...]],
        num_classes: int,
        calibrated: bool = True,
    ) -> None:
        self.table = table
        self.cfg = cfg
        self.input_shapes = dict(input_shapes)
        self.num_classes = num_classes
        self.calibration = table.calibration if calibrated else None

    def specs(self, candidate: Candidate, genotype: Genotype | None = None) -> list[LayerSpec]:
        """What the candidate runs: its multimodal network with ``genotype``, its standalone backbones without."""
        return candidate_specs(self.cfg, candidate.backbones, genotype, self.input_shapes, self.num_classes)

    def cost(self, candidate: Candidate, genotype: Genotype | None = None) -> Cost:
        return self.cost_of(self.specs(candidate, genotype))

    def backbone(self, modality: str, arch: BackboneArch) -> Cost:
        """One backbone as a standalone classifier (stage 1's unimodal costing)."""
        return self.cost_of(candidate_specs(self.cfg, {modality: arch}, None, self.input_shapes, self.num_classes))

    def additive(self, specs: Sequence[LayerSpec]) -> Cost:
        """Sum of the LUT entries of ``specs`` (each occurrence counts)."""
        entries = [self.table.lookup(spec) for spec in specs]
        return Cost(
            latency_ms=sum(e.latency_ms for e in entries),
            energy_mj=sum(e.energy_mj for e in entries),
            layers=len(entries),
        )

    def cost_of(self, specs: Sequence[LayerSpec]) -> Cost:
        """The additive cost, corrected by the LUT's calibration when there is one (and it is wanted)."""
        plain = self.additive(specs)
        if self.calibration is None:
            return plain
        return Cost(
            latency_ms=self.calibration.latency.predict(plain.latency_ms, plain.layers),
            energy_mj=self.calibration.energy.predict(plain.energy_mj, plain.layers),
            layers=plain.layers,
        )
