"""Task metrics shared by supernet evaluation and fusion search: accuracy (multiclass) and
weighted F1 (multilabel, as the paper reports for MM-IMDB)."""

from __future__ import annotations

import torch

from harmonic_nas.data import Task


def metric_name(task: Task) -> str:
    return "accuracy" if task == "multiclass" else "f1_weighted"


def task_loss(logits: torch.Tensor, targets: torch.Tensor, task: Task, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy (multiclass, optionally label-smoothed) or binary cross-entropy (multilabel)."""
    if task == "multiclass":
        return torch.nn.functional.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / 2
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, task: Task) -> torch.Tensor:
    """In-place distillation: the student matches the (detached) max subnet's soft predictions."""
    teacher = teacher.detach()
    if task == "multiclass":
        return -(teacher.softmax(-1) * student.log_softmax(-1)).sum(-1).mean()
    return torch.nn.functional.binary_cross_entropy_with_logits(student, teacher.sigmoid())


def score(logits: torch.Tensor, targets: torch.Tensor, task: Task) -> float:
    """Accuracy, or support-weighted F1 over labels with a 0.5 threshold on sigmoid outputs."""
    if task == "multiclass":
        return (logits.argmax(-1) == targets).float().mean().item()
    pred = (logits > 0).float()
    tp = (pred * targets).sum(0)
    fp = (pred * (1 - targets)).sum(0)
    fn = ((1 - pred) * targets).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn).clamp_min(1e-12)
    support = targets.sum(0)
    if support.sum() == 0:
        return 0.0
    return (f1 * support).sum().item() / support.sum().item()
