"""Scoring a fusion network on cached features: eval mode (dropout off, BatchNorm running statistics)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from harmonic_nas.data import Task
from harmonic_nas.fusion.features import SplitFeatures
from harmonic_nas.metrics import score


@torch.inference_mode()
def predict(net: nn.Module, split: SplitFeatures, batch_size: int) -> Tensor:
    """Logits of every sample of ``split``, in order; leaves the network in eval mode."""
    net.eval()
    return torch.cat([net(taps) for taps, _ in split.batches(batch_size)])


def evaluate(net: nn.Module, split: SplitFeatures, batch_size: int, task: Task) -> float:
    """Accuracy (multiclass) or weighted F1 (multilabel) of ``net`` on ``split``."""
    return score(predict(net, split, batch_size), split.targets, task)


def shuffled_modality_scores(net: nn.Module, split: SplitFeatures, tap_modalities: Sequence[str], batch_size: int,
                             task: Task, seed: int = 0) -> dict[str, float]:
    """Per modality, the metric of ``net`` when that modality's features come from other samples (one random
    permutation moves all of its taps together; the other modalities stay). A fusion that reads a modality
    only in its wiring loses nothing; what it loses is how much it relies on that modality's information,
    measured on the modality's own feature distribution (not on zeros the network never saw)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=generator).to(split.targets.device)
    scores = {}
    for modality in dict.fromkeys(tap_modalities):
        taps = [t.index_select(0, order) if m == modality else t for t, m in zip(split.taps, tap_modalities)]
        scores[modality] = evaluate(net, SplitFeatures(taps, split.targets), batch_size, task)
    return scores
