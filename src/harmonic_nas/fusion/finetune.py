"""Fine-tuning the derived fusion network on train and selecting its epoch on val (eval mode)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.data import Task
from harmonic_nas.fusion.darts import EpochCallback, adam, weight_step
from harmonic_nas.fusion.discrete import FusionNet
from harmonic_nas.fusion.evaluation import evaluate
from harmonic_nas.fusion.features import SplitFeatures


@dataclass
class FinetuneResult:
    val_metric: float
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


def finetune(
    net: FusionNet,
    train: SplitFeatures,
    val: SplitFeatures,
    cfg: FusionConfig,
    task: Task,
    generator: torch.Generator,
    on_epoch: EpochCallback | None = None,
) -> FinetuneResult:
    """``cfg.finetune_epochs`` epochs of Adam with a cosine schedule from ``cfg.finetune_lr`` to
    ``cfg.min_lr``; ``net`` ends with the weights of the epoch with the best val metric (epoch 0: the warm
    start, if no epoch beats it)."""
    opt = adam(list(net.parameters()), cfg.finetune_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.finetune_epochs, eta_min=cfg.min_lr)
    best = FinetuneResult(evaluate(net, val, cfg.batch_size, task), 0)
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    for epoch in range(1, cfg.finetune_epochs + 1):
        start = time.perf_counter()
        net.train()
        total, steps = torch.zeros((), device=next(net.parameters()).device), 0
        for taps, targets in train.batches(cfg.batch_size, generator):
            total += weight_step(net, taps, targets, task, opt)
            steps += 1
        schedule.step()
        metric = evaluate(net, val, cfg.batch_size, task)
        record = {"epoch": epoch, "loss": float(total) / max(steps, 1), "val_metric": metric,
                  "seconds": time.perf_counter() - start}
        best.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if metric > best.val_metric:
            best.val_metric, best.best_epoch = metric, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    return best
