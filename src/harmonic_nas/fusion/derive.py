"""Derivation of the discrete genotype from a searched network (paper eq. 8 and 10), multimodal by
construction: the cells' input pairs are the most probable ones under the network's pair masks whose live
cells read the required number of modalities.

Every cell the derived network runs reads both of its inputs (node 0 fuses them, and every later node
reads node 0 or the second input through its chain), so the modalities a genotype reads follow from the
cells' input pairs alone; the nodes' pairs and operators are free.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from harmonic_nas.fusion.search_net import FusionSearchNet, pair_distribution
from harmonic_nas.space.fusion import output_cells
from harmonic_nas.space.genotype import Cell, Genotype, Node

# Derivations explored before giving up on covering the modalities (never reached when a pair mask
# already guarantees two modalities; a cap so that a pathological request cannot hang a worker).
MAX_EXPANSIONS = 200_000


def best_pair(logits: Tensor, allowed: Tensor | None = None) -> list[int]:
    """Eq. 8: the allowed pair i < j with the highest product of identity probabilities."""
    pairs = pair_distribution(logits.detach(), allowed)
    flat = int(torch.argmax(pairs))
    return sorted(divmod(flat, pairs.shape[1]))


def modalities_read(cell_inputs: Sequence[Sequence[int]], tap_modalities: Sequence[str]) -> set[str]:
    """Modalities of the taps the live cells read (live: the output cells and every cell they read)."""
    taps = len(tap_modalities)
    live = set(output_cells(len(cell_inputs)))
    for p in reversed(range(len(cell_inputs))):
        if p in live:
            live.update(i - taps for i in cell_inputs[p] if i >= taps)
    return {tap_modalities[i] for p in live for i in cell_inputs[p] if i < taps}


def _ranked_pairs(logits: Tensor, allowed: Tensor | None) -> list[tuple[float, list[int]]]:
    """(-log probability, pair) of every allowed pair, most probable first."""
    pairs = pair_distribution(logits.detach(), allowed).double()
    n = pairs.shape[0]
    ranked = [(-math.log(float(pairs[i, j])), [i, j]) for i in range(n) for j in range(i + 1, n) if pairs[i, j] > 0]
    return sorted(ranked, key=lambda item: item[0])


def cell_input_pairs(net: FusionSearchNet) -> list[list[int]]:
    """The most probable cells' input pairs (highest product of pair probabilities over cells) whose live
    cells read ``net.min_modalities`` modalities: the per-cell argmax when it does (always, for two), else a
    uniform-cost search over the cells' ranked pairs."""
    masks = net.cell_masks
    greedy = [best_pair(a, m) for a, m in zip(net.alpha, masks)]
    if len(modalities_read(greedy, net.tap_modalities)) >= net.min_modalities:
        return greedy
    ranked = [_ranked_pairs(a, m) for a, m in zip(net.alpha, masks)]
    frontier: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    for _ in range(MAX_EXPANSIONS):
        if not frontier:
            break
        cost, chosen = heapq.heappop(frontier)
        if len(chosen) == net.num_cells:
            pairs = [ranked[p][k][1] for p, k in enumerate(chosen)]
            if len(modalities_read(pairs, net.tap_modalities)) >= net.min_modalities:
                return pairs
            continue
        for k, (step, _) in enumerate(ranked[len(chosen)]):
            heapq.heappush(frontier, (cost + step, (*chosen, k)))
    raise ValueError(f"no derivation of {net.num_cells} cell(s) reads {net.min_modalities} modalities")


def derive_genotype(net: FusionSearchNet, taps: Sequence[tuple[str, int]]) -> Genotype:
    """Each cell keeps its best allowed input pair (covering the required modalities), each node its best
    input pair and its argmax op (eq. 10).

    ``taps``: the (modality, stage) of each of the net's taps, stored in the genotype so it stands alone.
    """
    if len(taps) != net.num_taps:
        raise ValueError(f"{len(taps)} tap names for a network of {net.num_taps} taps")
    ops = torch.argmax(net.gamma.detach(), dim=-1).tolist()
    cell_inputs = cell_input_pairs(net)
    cells = []
    for p in range(net.num_cells):
        betas = net.cell_betas(p)
        nodes = [
            Node(inputs=[0, 1] if d == 0 else best_pair(betas[d - 1]), op=net.operators[ops[p][d]])
            for d in range(net.num_nodes)
        ]
        cells.append(Cell(inputs=cell_inputs[p], nodes=nodes))
    return Genotype(taps=taps, cells=cells)
