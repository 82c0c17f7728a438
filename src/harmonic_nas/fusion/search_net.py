"""The searchable fusion network: every tap projected, every candidate input mixed, every operator run,
weighted by the architecture parameters (paper eq. 6-9).

Input selection (alpha for cells, beta for nodes) follows eq. 7: every candidate input k has two logits
(identity, zero) and w_k = softmax(...)[identity]. A cell (node) needs an ordered pair of inputs, so the
relaxation is a distribution over pairs i < j with pi_ij proportional to w_i w_j, the same product that
eq. 8 maximises at derivation. The cell's first input X is the pi-weighted mix of the earlier members of
the pairs, the second input Y of the later ones; they differ, so no operator ever fuses a tensor with
itself. Operators are mixed by softmax(gamma) (eq. 9).

Multimodal by construction: unless the config lifts it (``fusion.min_modalities: 1``), two taps of one
modality never form a cell's pair (their probability is zero in the relaxation as in the derivation). A
cell output already fuses two modalities, so every cell the derived network runs reads at least two.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.fusion.blocks import CellOutput, FusionHead
from harmonic_nas.fusion.operators import ConcatConv, build_operator
from harmonic_nas.fusion.projection import InputProjection
from harmonic_nas.space.fusion import output_cells

INIT_SCALE = 1e-3  # DARTS: start the architecture near uniform


def pair_distribution(logits: Tensor, allowed: Tensor | None = None) -> Tensor:
    """(n, 2) identity/zero logits -> (n, n) probabilities of the pairs i < j (zero elsewhere, and zero
    where the 0/1 mask ``allowed`` is 0)."""
    w = logits.softmax(dim=-1)[:, 0]
    pairs = torch.triu(w[:, None] * w[None, :], diagonal=1)
    if allowed is not None:
        pairs = pairs * allowed
    return pairs / pairs.sum()


def pair_weights(logits: Tensor, allowed: Tensor | None = None) -> Tensor:
    """(2, n): the weight of each candidate in X (row 0: first members of the pairs) and in Y (row 1)."""
    pairs = pair_distribution(logits, allowed)
    return torch.stack((pairs.sum(dim=1), pairs.sum(dim=0)))


def cell_pair_masks(tap_modalities: Sequence[str], cells: int, required: int) -> list[Tensor] | None:
    """Per cell, the (n, n) 0/1 mask of its allowed input pairs (n = taps + earlier cells): no pair of two
    taps of one modality when ``required`` >= 2 modalities must be read; None when nothing is excluded."""
    if required < 2 or len(set(tap_modalities)) < 2:
        return None
    taps = len(tap_modalities)
    same = torch.tensor([[a == b for b in tap_modalities] for a in tap_modalities])
    masks = []
    for p in range(cells):
        mask = torch.ones(taps + p, taps + p)
        mask[:taps, :taps][same] = 0.0
        masks.append(mask)
    return masks


def _mix(weights: Tensor, candidates: Sequence[Tensor], base: Tensor | None = None) -> Tensor:
    """(2, B, C, L): ``weights`` (2, n) times the n stacked candidates, plus ``base`` (2, B, C, L) if given.

    One matrix product over the stacked candidates yields X and Y together (each candidate read once).
    It runs on positions-as-rows (B, L, C) memory, the layout the operators produce, and returns that
    layout (as (B, C, L) views), so no tensor is transposed in memory on the way.
    """
    b, c, length = candidates[0].shape
    stacked = torch.stack([t.transpose(1, 2) for t in candidates]).flatten(1)  # (n, B*L*C)
    if base is None:
        mixed = torch.matmul(weights, stacked)
    else:
        mixed = torch.addmm(base.transpose(2, 3).reshape(2, -1), weights, stacked)
    return mixed.view(2, b, length, c).transpose(2, 3)


class _WeightedSum(torch.autograd.Function):
    """sum_i probs[i] * outputs[i] (eq. 9) in one accumulating pass per output, and a backward that
    computes each d/dprobs[i] as one dot product (autograd's mul + sum would write a temporary each)."""

    @staticmethod
    def forward(ctx, probs: Tensor, *outputs: Tensor) -> Tensor:  # type: ignore[override]
        total = outputs[0] * probs[0]
        for p, out in zip(probs[1:], outputs[1:]):
            total.addcmul_(out, p)
        ctx.save_for_backward(probs, *outputs)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        probs, *outputs = ctx.saved_tensors
        grad_probs = None
        if ctx.needs_input_grad[0]:
            flat = grad.reshape(-1) if grad.is_contiguous() else None
            grad_probs = torch.stack([
                torch.dot(flat, out.view(-1)) if flat is not None and out.is_contiguous() else (grad * out).sum()
                for out in outputs
            ])
        grads = [grad * p if needed else None for p, needed in zip(probs, ctx.needs_input_grad[1:])]
        return (grad_probs, *grads)


class MixedOp(nn.Module):
    """All candidate operators of one node; the output is their softmax(gamma)-weighted sum."""

    def __init__(self, operators: Sequence[str], channels: int, length: int, dropout: float) -> None:
        super().__init__()
        self.ops = nn.ModuleDict({name: build_operator(name, channels, length, dropout) for name in operators})

        self._concat = [isinstance(op, ConcatConv) for op in self.ops.values()]

    def forward(self, x: Tensor, y: Tensor, probs: Tensor) -> Tensor:
        xy = ConcatConv.concat(x, y) if sum(self._concat) > 1 else None  # one concat for all that need it
        outputs = [
            op.forward_concat(xy) if xy is not None and concat else op(x, y)  # type: ignore[operator]
            for op, concat in zip(self.ops.values(), self._concat)
        ]
        return _WeightedSum.apply(probs, *outputs)  # type: ignore[no-any-return]


class SearchCell(nn.Module):
    def __init__(self, nodes: int, operators: Sequence[str], channels: int, length: int, dropout: float) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(MixedOp(operators, channels, length, dropout) for _ in range(nodes))
        self.output = CellOutput(channels, length)

    def forward(self, xy: Tensor, betas: Sequence[Tensor], op_probs: Tensor) -> Tensor:
        """``xy``: the cell's inputs X and Y stacked, (2, B, C, L); ``betas``: input logits of nodes
        1..D-1 (node 0 always fuses X and Y)."""
        x, y = xy.unbind(0)
        weights = [pair_weights(b) for b in betas]
        from_xy: Sequence[Tensor] = ()
        if weights:  # what X and Y contribute to every later node's inputs, in one product
            n, b, c, length = len(weights), *xy.shape[1:]
            from_xy = torch.matmul(torch.cat([w[:, :2] for w in weights]), xy.transpose(2, 3).reshape(2, -1))
            # unbind, not slices: one gradient buffer, not one per node
            from_xy = from_xy.view(n, 2, b, length, c).transpose(3, 4).unbind(0)
        states: list[Tensor] = []
        for d, node in enumerate(self.nodes):
            if d == 0:
                a, b = x, y
            else:
                a, b = _mix(weights[d - 1][:, 2:], states, from_xy[d - 1]).unbind(0)
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
        tap_modalities: Sequence[str] | None = None,
        min_modalities: int = 1,
    ) -> None:
        super().__init__()
        if len(tap_channels) < 2:
            raise ValueError(f"fusion needs at least two taps to choose from, found {len(tap_channels)}")
        self.tap_modalities = list(tap_modalities) if tap_modalities is not None else ["?"] * len(tap_channels)
        if len(self.tap_modalities) != len(tap_channels):
            raise ValueError(f"{len(self.tap_modalities)} tap modalities for {len(tap_channels)} taps")
        self.min_modalities = min(min_modalities, len(set(self.tap_modalities)))
        for p, mask in enumerate(cell_pair_masks(self.tap_modalities, cells, self.min_modalities) or []):
            self.register_buffer(f"cell_mask_{p}", mask, persistent=False)
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
    def for_search(cls, taps: Sequence[tuple[str, int]], tap_channels: Sequence[int], cells: int, nodes: int,
                   cfg: FusionConfig, num_classes: int) -> FusionSearchNet:
        """The search network of a config over ``taps`` ((modality, stage) each). It runs without dropout:
        dropout only adds noise to the architecture gradient, and sampling its masks took about 40 % of a
        search step on CPU (the derived network is fine-tuned with ``cfg.dropout``). Every modality of the
        taps must be read unless ``cfg.min_modalities`` says fewer."""
        modalities = [m for m, _ in taps]
        required = cfg.min_modalities or len(set(modalities))
        return cls(tap_channels, cells, nodes, cfg.operators, cfg.channels, cfg.length, num_classes, dropout=0.0,
                   tap_modalities=modalities, min_modalities=required)

    @property
    def cell_masks(self) -> list[Tensor | None]:
        """Per cell, the 0/1 mask of its allowed input pairs (None: every pair allowed)."""
        return [getattr(self, f"cell_mask_{p}", None) for p in range(self.num_cells)]

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
        # (taps, B, L, C): the projections' positions-as-rows memory
        projected = torch.stack([proj(t).transpose(1, 2) for proj, t in zip(self.projections, taps)])
        weights = [pair_weights(a, mask) for a, mask in zip(self.alpha, self.cell_masks)]
        # What the taps contribute to every cell's X and Y, in one product over the stacked taps.
        from_taps = torch.matmul(torch.cat([w[:, : self.num_taps] for w in weights]), projected.flatten(1))
        bases = from_taps.view(self.num_cells, 2, *projected.shape[1:]).transpose(3, 4).unbind(0)
        op_probs = self.op_probs()
        cells: list[Tensor] = []
        for p, cell in enumerate(self.cells):
            xy = _mix(weights[p][:, self.num_taps :], cells, bases[p]) if cells else bases[p]
            cells.append(cell(xy, self.cell_betas(p), op_probs[p]))
        return self.head([cells[p] for p in output_cells(self.num_cells)])
