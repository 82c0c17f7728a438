"""The searchable fusion network: every tap projected, every candidate input mixed, every operator run,
weighted by the architecture parameters (paper eq. 6-9).

Input selection (alpha for cells, beta for nodes) follows eq. 7: every candidate input k has two logits
(identity, zero) and w_k = softmax(...)[identity]. A cell (node) needs an ordered pair of inputs, so the
relaxation is a distribution over pairs i < j with pi_ij proportional to w_i w_j, the same product that
eq. 8 maximises at derivation. The cell's first input X is the pi-weighted mix of the earlier members of
the pairs, the second input Y of the later ones; they differ, so no operator ever fuses a tensor with
itself. Operators are mixed by softmax(gamma) (eq. 9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.fusion.blocks import CellOutput, FusionHead
from harmonic_nas.fusion.operators import build_operator
from harmonic_nas.fusion.projection import InputProjection
from harmonic_nas.space.fusion import output_cells

INIT_SCALE = 1e-3  # DARTS: start the architecture near uniform


def pair_distribution(logits: Tensor) -> Tensor:
    """(n, 2) identity/zero logits -> (n, n) probabilities of the pairs i < j (zero elsewhere)."""
    w = logits.softmax(dim=-1)[:, 0]
    pairs = torch.triu(w[:, None] * w[None, :], diagonal=1)
    return pairs / pairs.sum()


def mix_pair(logits: Tensor, candidates: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """The relaxed (X, Y) over ``candidates``: X mixes first members of the pairs, Y second members."""
    pairs = pair_distribution(logits)
    stacked = torch.stack(list(candidates))  # (n, B, C, L)
    first, second = pairs.sum(dim=1), pairs.sum(dim=0)
    return torch.tensordot(first, stacked, dims=1), torch.tensordot(second, stacked, dims=1)


class MixedOp(nn.Module):
    """All candidate operators of one node; the output is their softmax(gamma)-weighted sum."""

    def __init__(self, operators: Sequence[str], channels: int, length: int, dropout: float) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({name: build_operator(name, channels, length, dropout) for name in operators})

    def forward(self, x: Tensor, y: Tensor, probs: Tensor) -> Tensor:
        return sum(p * op(x, y) for p, op in zip(probs, self.ops.values()))  # type: ignore[return-value]


class SearchCell(nn.Module):
    def __init__(self, nodes: int, operators: Sequence[str], channels: int, length: int, dropout: float) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(MixedOp(operators, channels, length, dropout) for _ in range(nodes))
        self.output = CellOutput(channels, length)

    def forward(self, x: Tensor, y: Tensor, betas: Sequence[Tensor], op_probs: Tensor) -> Tensor:
        """``betas``: input logits of nodes 1..D-1 (node 0 always fuses X and Y)."""
        states = [x, y]
        for d, node in enumerate(self.nodes):
            a, b = (x, y) if d == 0 else mix_pair(betas[d - 1], states)
            states.append(node(a, b, op_probs[d]))
        return self.output(states[-1], x)


class FusionSearchNet(nn.Module):
    """Supernet of every fusion micro-architecture of a macro (C cells, D nodes) over given taps.

    ``forward`` takes one tensor per tap, in the order of ``tap_channels`` (all taps of all modalities,
    modality then stage order): raw maps, pooled (B, C_in, L) sequences from the feature cache, or vectors.
    """

    def __init__(
        self,
        tap_channels: Sequence[int],
        cells: int,
        nodes: int,
        operators: Sequence[str],
        channels: int,
        length: int,
        num_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if len(tap_channels) < 2:
            raise ValueError(f"fusion needs at least two taps to choose from, found {len(tap_channels)}")
        self.operators = list(operators)
        self.num_taps, self.num_cells, self.num_nodes = len(tap_channels), cells, nodes
        self.projections = nn.ModuleList(InputProjection(c, channels, length, dropout) for c in tap_channels)
        self.cells = nn.ModuleList(SearchCell(nodes, operators, channels, length, dropout) for _ in range(cells))
        self.head = FusionHead(len(output_cells(cells)), channels, length, num_classes)
        self.alpha = nn.ParameterList(
            nn.Parameter(INIT_SCALE * torch.randn(self.num_taps + p, 2)) for p in range(cells)
        )
        self.beta = nn.ParameterList(
            nn.Parameter(INIT_SCALE * torch.randn(2 + d, 2)) for _ in range(cells) for d in range(1, nodes)
        )
        self.gamma = nn.Parameter(INIT_SCALE * torch.randn(cells, nodes, len(self.operators)))

    @classmethod
    def for_search(cls, tap_channels: Sequence[int], cells: int, nodes: int, cfg: FusionConfig,
                   num_classes: int) -> FusionSearchNet:
        """The search network of a config. It runs without dropout: dropout only adds noise to the
        architecture gradient, and sampling its masks took about 40 % of a search step on CPU (the derived
        network is fine-tuned with ``cfg.dropout``)."""
        return cls(tap_channels, cells, nodes, cfg.operators, cfg.channels, cfg.length, num_classes, dropout=0.0)

    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha, beta, gamma: updated on val by the architecture optimizer."""
        return [*self.alpha, *self.beta, self.gamma]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Everything else: updated on train by the weight optimizer."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def cell_betas(self, cell: int) -> list[Tensor]:
        per_cell = self.num_nodes - 1
        return list(self.beta[cell * per_cell : (cell + 1) * per_cell])

    def op_probs(self) -> Tensor:
        """softmax(gamma) per node: (cells, nodes, operators)."""
        return self.gamma.softmax(dim=-1)

    def forward(self, taps: Sequence[Tensor]) -> Tensor:
        states = [proj(t) for proj, t in zip(self.projections, taps)]
        op_probs = self.op_probs()
        for p, cell in enumerate(self.cells):
            x, y = mix_pair(self.alpha[p], states)
            states.append(cell(x, y, self.cell_betas(p), op_probs[p]))
        return self.head([states[self.num_taps + p] for p in output_cells(self.num_cells)])
