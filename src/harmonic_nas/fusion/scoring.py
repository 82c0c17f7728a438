"""Scoring a fusion network on cached features: eval mode (dropout off, BatchNorm running statistics)."""

from __future__ import annotations

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
