"""Bilevel first-order DARTS for the fusion search: per step, the architecture (alpha, beta, gamma) takes
one Adam step on a val batch with L_task^a + lambda (H_lat^b + H_energy^c) (hardware_loss.py), then the
weights take one Adam step on a train batch with L_task. Test data never enters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.data import Task
from harmonic_nas.errors import UserError
from harmonic_nas.fusion.scoring import evaluate
from harmonic_nas.fusion.features import SplitFeatures
from harmonic_nas.fusion.hardware_loss import HardwareCost, HardwareLoss
from harmonic_nas.fusion.search_net import FusionSearchNet
from harmonic_nas.metrics import task_loss

EpochCallback = Callable[[dict[str, Any]], None]


def _endless(split: SplitFeatures, batch_size: int, generator: torch.Generator) -> Iterator[tuple[list[Tensor], Tensor]]:
    """Val batches for the architecture steps, reshuffled at every pass (val is smaller than train)."""
    while True:
        yield from split.batches(batch_size, generator)


class _FrozenRunningStats:
    """BatchNorm still normalises with batch statistics, but val batches must not move the running
    statistics (the weights, running statistics included, are learnt on train only)."""

    def __init__(self, net: nn.Module) -> None:
        self.bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.saved = [bn.momentum for bn in self.bns]

    def __enter__(self) -> None:
        for bn in self.bns:
            bn.momentum = 0.0

    def __exit__(self, *exc: object) -> None:
        for bn, momentum in zip(self.bns, self.saved):
            bn.momentum = momentum


def weight_step(net: nn.Module, taps: Any, targets: Tensor, task: Task, opt: torch.optim.Optimizer,
                params: Sequence[Tensor] | None = None) -> Tensor:
    """One optimiser step of the network weights on the task loss; returns the detached loss (on the
    network's device: summing it there costs no device sync per step).

    ``params``: the only tensors to compute gradients for (e.g. the weights but not the architecture
    parameters of a search network); all that require grad if None.
    """
    opt.zero_grad(set_to_none=True)
    loss = task_loss(net(taps), targets, task)
    loss.backward(inputs=list(params) if params is not None else None)
    opt.step()
    return loss.detach()


def adam(params: Sequence[Tensor], lr: float) -> torch.optim.Adam:
    """Adam, with the fused kernel where torch has one for the parameters' device (same update rule,
    one pass over all parameters instead of a loop of small ops per tensor)."""
    params = list(params)
    fused = bool(params) and all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


def _architecture_step(net: FusionSearchNet, batch: tuple[list[Tensor], Tensor], task: Task, power: float,
                       hardware: HardwareLoss, frozen_stats: _FrozenRunningStats) -> None:
    """Set the gradients of alpha, beta, gamma for L_task^a (on a val batch) + the hardware term.

    Only the architecture gradients: autograd skips the weight gradients it would throw away. The
    hardware term reaches gamma alone; its scale is balanced against the task's gradient on gamma.
    """
    arch_params = net.arch_parameters()
    grads: list[Tensor | None] = [None] * len(arch_params)
    if power != 0:
        val_taps, val_targets = batch
        with frozen_stats:
            task_term = task_loss(net(val_taps), val_targets, task) ** power
        grads = list(torch.autograd.grad(task_term, arch_params, allow_unused=True))
    if hardware.active:
        on_gamma = hardware.gradient(net.gamma, grads[-1])  # gamma is the last architecture parameter
        grads[-1] = on_gamma if grads[-1] is None else grads[-1] + on_gamma
    for param, grad in zip(arch_params, grads):
        param.grad = grad


def search(
    net: FusionSearchNet,
    train: SplitFeatures,
    val: SplitFeatures,
    cost: HardwareCost,
    cfg: FusionConfig,
    task: Task,
    generator: torch.Generator,
    on_epoch: EpochCallback | None = None,
) -> list[dict[str, Any]]:
    """Run ``cfg.epochs`` search epochs, the architecture steps on ``val`` (the val select part); returns one
    record per epoch (loss, metric on ``val``, expected cost, the hardware scale lambda)."""
    if len(train) == 0 or len(val) == 0:
        raise UserError(f"the fusion search needs train and val samples, found {len(train)} and {len(val)}")
    arch_params, weight_params = net.arch_parameters(), net.weight_parameters()
    w_opt = adam(weight_params, cfg.lr)
    a_opt = adam(arch_params, cfg.arch_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=cfg.epochs, eta_min=cfg.min_lr)
    val_batches = _endless(val, cfg.batch_size, generator)
    frozen_stats = _FrozenRunningStats(net)
    hardware = HardwareLoss(cost, cfg.exponents)
    learns_arch = cfg.exponents.task != 0 or hardware.active  # else nothing to follow
    history = []
    device = net.gamma.device
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        net.train()
        total, steps = torch.zeros((), device=device), 0
        for taps, targets in train.batches(cfg.batch_size, generator):
            if learns_arch:
                _architecture_step(net, next(val_batches), task, cfg.exponents.task, hardware, frozen_stats)
                a_opt.step()
            # Only the weight gradients: the architecture ones of a train batch would be thrown away.
            total += weight_step(net, taps, targets, task, w_opt, weight_params)
            steps += 1
        schedule.step()
        latency, energy = cost.expected(net.op_probs())
        record = {
            "epoch": epoch,
            "loss": float(total) / max(steps, 1),
            "select_metric": evaluate(net, val, cfg.batch_size, task),
            "expected_latency_ms": latency,
            "expected_energy_mj": energy,
            "hardware_scale": hardware.scale,
            "seconds": time.perf_counter() - start,
        }
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history
