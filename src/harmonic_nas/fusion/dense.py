"""The fusion of the FB+FF baseline as the paper defines it: "a dense architecture with all the fusion
possibilities". It is the search network itself with its architecture frozen at uniform weights (every
allowed input pair of every cell and node, every operator at every node, equally), trained as one network
and costed as all of it runs. A chain of one operator on the deepest taps, as this baseline once was, is
far cheaper than the paper's and flattered every ratio measured against it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from harmonic_nas.fusion.search_net import FusionSearchNet
from harmonic_nas.space.genotype import Genotype


class DenseFusionNet(FusionSearchNet):
    """FB+FF's fusion for a dense ``genotype`` (:meth:`harmonic_nas.space.genotype.Genotype.dense_over`); the
    same constructor and attributes (``genotype``, ``settings``, ``live``) as a derived ``FusionNet``."""

    def __init__(self, genotype: Genotype, tap_channels: Sequence[int], channels: int, length: int,
                 num_classes: int, dropout: float) -> None:
        dense = genotype.dense
        if dense is None:
            raise ValueError("a DenseFusionNet needs a dense genotype")
        if len(tap_channels) != len(genotype.taps):
            raise ValueError(f"{len(tap_channels)} tap channel counts for {len(genotype.taps)} taps")
        super().__init__(tap_channels, dense.cells, dense.nodes, dense.operators, channels, length,
                         num_classes, dropout, tap_modalities=[m for m, _ in genotype.taps],
                         min_modalities=dense.min_modalities)
        with torch.no_grad():
            for param in self.arch_parameters():
                param.zero_()  # identity and zero logits equal: uniform over pairs; uniform over operators
                param.requires_grad_(False)
        self.genotype = genotype
        self.settings = {"tap_channels": list(tap_channels), "channels": channels, "length": length,
                         "num_classes": num_classes, "dropout": dropout}
        self.live = genotype.live
