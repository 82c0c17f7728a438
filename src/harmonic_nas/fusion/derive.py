"""Derivation of the discrete genotype from a searched network (paper eq. 8 and 10)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from harmonic_nas.fusion.search_net import FusionSearchNet, pair_distribution


def best_pair(logits: Tensor) -> list[int]:
    """Eq. 8: the pair i < j with the highest product of identity probabilities."""
    pairs = pair_distribution(logits.detach())
    flat = int(torch.argmax(pairs))
    return sorted(divmod(flat, pairs.shape[1]))


def derive_genotype(net: FusionSearchNet, taps: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """Each cell keeps its best input pair, each node its best input pair and its argmax op (eq. 10).

    ``taps``: the (modality, stage) of each of the net's taps, stored in the genotype so it stands alone.
    """
    if len(taps) != net.num_taps:
        raise ValueError(f"{len(taps)} tap names for a network of {net.num_taps} taps")
    ops = torch.argmax(net.gamma.detach(), dim=-1).tolist()
    cells = []
    for p in range(net.num_cells):
        betas = net.cell_betas(p)
        nodes = [
            {"inputs": [0, 1] if d == 0 else best_pair(betas[d - 1]), "op": net.operators[ops[p][d]]}
            for d in range(net.num_nodes)
        ]
        cells.append({"inputs": best_pair(net.alpha[p]), "nodes": nodes})
    return {"taps": [[m, s] for m, s in taps], "cells": cells}
