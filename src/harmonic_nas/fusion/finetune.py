"""Training a fusion network on train with its epoch selected on the val ``select`` part (eval mode):
the fine-tune of a derived network, and the from-scratch training of a fixed one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.data import Task
from harmonic_nas.fusion.darts import EpochCallback, adam, weight_step
from harmonic_nas.fusion.scoring import evaluate
from harmonic_nas.fusion.features import SplitFeatures


@dataclass
class FinetuneResult:
    select_metric: float  # on the samples the epoch was selected on: optimistic, never the reported metric
    best_epoch: int
    history: list[dict[str, Any]] = field(default_factory=list)


def finetune(
    net: nn.Module,
    train: SplitFeatures,
    select: SplitFeatures,
    cfg: FusionConfig,
    task: Task,
    generator: torch.Generator,
    on_epoch: EpochCallback | None = None,
) -> FinetuneResult:
    """``cfg.finetune_epochs`` epochs of Adam with a cosine schedule from ``cfg.finetune_lr`` to
    ``cfg.min_lr``; ``net`` ends with the weights of the epoch with the best metric on ``select`` (epoch 0:
    the starting weights, if no epoch beats them)."""
    opt = adam(list(net.parameters()), cfg.finetune_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.finetune_epochs, eta_min=cfg.min_lr)
    best = FinetuneResult(evaluate(net, select, cfg.batch_size, task), 0)
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    for epoch in range(1, cfg.finetune_epochs + 1):
        start = time.perf_counter()
        net.train()
        total, steps = torch.zeros((), device=next(net.parameters()).device), 0
        for taps, targets in train.batches(cfg.batch_size, generator):
            total += weight_step(net, taps, targets, task, opt)
            steps += 1
        schedule.step()
        metric = evaluate(net, select, cfg.batch_size, task)
        record = {"epoch": epoch, "loss": float(total) / max(steps, 1), "select_metric": metric,
                  "seconds": time.perf_counter() - start}
        best.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if metric > best.select_metric:
            best.select_metric, best.best_epoch = metric, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    return best


def train_from_scratch(
    build: Callable[[], nn.Module],
    train: SplitFeatures,
    select: SplitFeatures,
    cfg: FusionConfig,
    task: Task,
    seed: int,
    epochs: int,
    on_epoch: EpochCallback | None = None,
) -> tuple[nn.Module, FinetuneResult]:
    """A fixed fusion network (``build()``, initialised under ``seed``) trained for ``epochs`` epochs at
    ``cfg.finetune_lr`` with its best epoch on ``select`` kept: FB+FF's dense fusion and ``reproduce``."""
    torch.manual_seed(seed)
    net = build()
    budget = cfg.model_copy(update={"finetune_epochs": epochs})
    return net, finetune(net, train, select, budget, task, torch.Generator().manual_seed(seed), on_epoch)
