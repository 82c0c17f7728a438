"""The derived (discrete) fusion network of a genotype, and the whole multimodal network around it.

Only what feeds the output is built (``Genotype.live``): a cell no later cell reads and no output uses, a
node the cell's last node does not depend on, or a tap no live cell reads costs nothing at inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from harmonic_nas.fusion.blocks import CellOutput, FusionHead
from harmonic_nas.fusion.dense import DenseFusionNet
from harmonic_nas.fusion.operators import build_operator
from harmonic_nas.fusion.projection import InputProjection
from harmonic_nas.fusion.search_net import FusionSearchNet
from harmonic_nas.space.genotype import Cell, Genotype
from harmonic_nas.torchfile import FileFormat, save_atomic

FUSION_FILE = FileFormat("harmonic-nas-fusion/1", "fusion file")


class DiscreteCell(nn.Module):
    def __init__(self, cell: Cell, live_nodes: Sequence[int], channels: int, length: int, dropout: float) -> None:
        super().__init__()
        self.spec = cell
        self.live = list(live_nodes)
        self.nodes = nn.ModuleDict(
            {str(d): build_operator(cell.nodes[d].op, channels, length, dropout) for d in self.live}
        )
        self.output = CellOutput(channels, length)

    def forward(self, x: Tensor, y: Tensor | None) -> Tensor:
        states: list[Tensor | None] = [x, y] + [None] * len(self.spec.nodes)
        for d in self.live:
            a, b = self.spec.nodes[d].inputs
            states[2 + d] = self.nodes[str(d)](states[a], states[b])
        return self.output(states[-1], x)  # type: ignore[arg-type]


class FusionNet(nn.Module):
    """Fusion network of one genotype. ``forward`` takes one tensor (or None for taps it does not use)
    per tap of ``genotype.taps``: raw maps, cached pooled sequences (B, C_in, L) or vectors."""

    def __init__(
        self,
        genotype: Genotype,
        tap_channels: Sequence[int],
        channels: int,
        length: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.settings = {"tap_channels": list(tap_channels), "channels": channels, "length": length,
                         "num_classes": num_classes, "dropout": dropout}
        if len(tap_channels) != len(genotype.taps):
            raise ValueError(f"{len(tap_channels)} tap channel counts for {len(genotype.taps)} taps")
        self.live = genotype.live
        self.num_taps = len(tap_channels)
        self.projections = nn.ModuleDict(
            {str(t): InputProjection(tap_channels[t], channels, length, dropout) for t in self.live.taps}
        )
        self.cells = nn.ModuleDict(
            {
                str(p): DiscreteCell(genotype.cells[p], self.live.nodes[p], channels, length, dropout)
                for p in self.live.cells
            }
        )
        self.outputs = genotype.outputs
        self.head = FusionHead(len(self.outputs), channels, length, num_classes)

    @classmethod
    def from_search(cls, search: FusionSearchNet, genotype: Genotype, tap_channels: Sequence[int],
                    channels: int, length: int, num_classes: int, dropout: float) -> FusionNet:
        """The derived network warm-started with the searched weights of the parts it keeps."""
        net = cls(genotype, tap_channels, channels, length, num_classes, dropout)
        for t, proj in net.projections.items():
            proj.load_state_dict(search.projections[int(t)].state_dict())
        for p, cell in net.cells.items():
            source = search.cells[int(p)]
            cell.output.load_state_dict(source.output.state_dict())
            for d, op in cell.nodes.items():
                op.load_state_dict(source.nodes[int(d)].ops[cell.spec.nodes[int(d)].op].state_dict())
        net.head.load_state_dict(search.head.state_dict())
        return net

    def forward(self, taps: Sequence[Tensor | None]) -> Tensor:
        states: list[Tensor | None] = [None] * (self.num_taps + len(self.genotype.cells))
        for t, proj in self.projections.items():
            states[int(t)] = proj(taps[int(t)])
        for p, cell in self.cells.items():
            i, j = cell.spec.inputs
            states[self.num_taps + int(p)] = cell(states[i], states[j])
        return self.head([states[self.num_taps + p] for p in self.outputs])  # type: ignore[misc]


def build_fusion(genotype: Genotype, tap_channels: Sequence[int], channels: int, length: int,
                 num_classes: int, dropout: float) -> nn.Module:
    """The fusion network of ``genotype``: a derived ``FusionNet``, or FB+FF's ``DenseFusionNet``."""
    kind = DenseFusionNet if genotype.is_dense else FusionNet
    return kind(genotype, tap_channels, channels, length, num_classes, dropout)


def fusion_payload(net: nn.Module) -> dict[str, Any]:
    """Genotype, construction settings and weights (on the CPU): what a fusion file holds, and what a
    search worker sends back so that the process owning the run writes the file."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return FUSION_FILE.payload({"genotype": net.genotype.to_json(), **net.settings, "state_dict": state})


def save_fusion(net: nn.Module, path: Path) -> None:
    """One file from which the network rebuilds without the run (see :func:`load_fusion`)."""
    save_atomic(fusion_payload(net), path)


def load_fusion(path: Path) -> nn.Module:
    """The fusion network saved by :func:`save_fusion` (a ``FusionNet``, or FB+FF's ``DenseFusionNet``), in
    eval mode; a wrong file is one UserError line."""
    data = FUSION_FILE.load(path)
    settings = {k: data[k] for k in ("tap_channels", "channels", "length", "num_classes", "dropout")}
    net = build_fusion(Genotype.parse(data["genotype"]), **settings)
    net.load_state_dict(data["state_dict"])
    return net.eval()


class MultimodalNet(nn.Module):
    """Extracted backbones plus the fusion network, end to end on raw inputs: what is exported and timed.

    ``forward(*inputs)`` takes one raw input batch per modality in ``modalities`` order (the genotype's
    ``tap_modalities``). Of each backbone only its trunk up to the last tap a live cell reads is kept
    (``backbone.trunk(last_tap)``, modules shared with ``backbones``): no backbone head or classifier,
    no later stage, and no backbone at all for a modality whose taps the fusion never reads. Torch eager
    therefore runs exactly what an exported graph keeps.
    """

    def __init__(self, backbones: Mapping[str, nn.Module], fusion: nn.Module) -> None:
        super().__init__()
        self.modalities = fusion.genotype.tap_modalities
        missing = [m for m in self.modalities if m not in backbones]
        if missing:
            raise ValueError(f"no backbone for modality {missing[0]!r} (have {sorted(backbones)})")
        last_tap = fusion.genotype.last_taps
        self.backbones = nn.ModuleDict(
            {m: _trunk(backbones[m], last_tap[m]) for m in self.modalities if m in last_tap}
        )
        self.fusion = fusion

    def forward(self, *inputs: Tensor) -> Tensor:
        taps = {m: self.backbones[m](x) for m, x in zip(self.modalities, inputs) if m in self.backbones}
        features = [taps[m][s] if m in taps and s < len(taps[m]) else None for m, s in self.fusion.genotype.taps]
        return self.fusion(features)


class _TapsOf(nn.Module):
    """Fallback for a backbone without ``trunk``: its full forward, taps 0..last_tap of the output."""

    def __init__(self, backbone: nn.Module, last_tap: int) -> None:
        super().__init__()
        self.backbone, self.last_tap = backbone, last_tap

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.backbone(x).taps[: self.last_tap + 1])


def _trunk(backbone: nn.Module, last_tap: int) -> nn.Module:
    trunk = getattr(backbone, "trunk", None)
    return trunk(last_tap) if callable(trunk) else _TapsOf(backbone, last_tap)
