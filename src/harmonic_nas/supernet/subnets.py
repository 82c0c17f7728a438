"""Evaluating a subnet honestly: extract it, reset and recalibrate its BatchNorm statistics on a fixed
training subset (shared supernet statistics are wrong for any single subnet), then score it in eval mode."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from harmonic_nas.data import SplitData, Task
from harmonic_nas.metrics import score
from harmonic_nas.space.values import BackboneArch
from harmonic_nas.data.batches import iterate_batches


def calibration_indices(n_train: int, samples: int, seed: int) -> np.ndarray:
    """The fixed, seeded subset of training samples used for every BN recalibration."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_train, size=min(samples, n_train), replace=False))


def calibration_inputs(train_inputs: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """The training inputs of ``calibration_indices``, in memory: what every BN recalibration reads."""
    return np.asarray(train_inputs[calibration_indices(len(train_inputs), samples, seed)])


@torch.no_grad()
def recalibrate_bn(model: nn.Module, inputs: np.ndarray, batch_size: int, device: torch.device, channels_last: bool) -> None:
    """Replace every BN layer's running statistics with their sample-weighted average over ``inputs``
    (the mean is exact; the variance is the weighted mean of per-batch variances)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
    model.train()
    for module in model.modules():  # dropout before a BN would make its statistics noisy
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.eval()
    seen = 0
    dummy = np.zeros(len(inputs), dtype=np.int64)
    for x, _ in iterate_batches(inputs, dummy, batch_size, device, channels_last=channels_last):
        for bn in bns:  # running = (1 - m) running + m batch, with m = this batch's share so far
            bn.momentum = len(x) / (seen + len(x))
        model(x)
        seen += len(x)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum
    model.eval()


@torch.no_grad()
def predict(model: nn.Module, inputs: np.ndarray, batch_size: int, device: torch.device, channels_last: bool) -> torch.Tensor:
    model.eval()
    dummy = np.zeros(len(inputs), dtype=np.int64)
    outs = [model(x).logits.float().cpu() for x, _ in iterate_batches(inputs, dummy, batch_size, device, channels_last=channels_last)]
    return torch.cat(outs)


def prepare_subnet(
    supernet: Any, arch: BackboneArch, calib: np.ndarray, *, batch_size: int, device: torch.device, channels_last: bool
) -> nn.Module:
    """The plain network of ``arch`` with BatchNorm recalibrated on ``calib``, in eval mode: the network
    that is scored, fused and exported."""
    model = supernet.extract(arch).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    recalibrate_bn(model, calib, batch_size, device, channels_last)
    return model


def evaluate_subnet(
    supernet: Any,
    arch: BackboneArch,
    modality: str,
    calib: np.ndarray,
    val: SplitData,
    task: Task,
    *,
    batch_size: int,
    device: torch.device,
    channels_last: bool,
) -> float:
    """Val metric of ``arch``: extracted plain network, BN recalibrated on ``calib``, eval mode."""
    model = prepare_subnet(supernet, arch, calib, batch_size=batch_size, device=device, channels_last=channels_last)
    logits = predict(model, val.inputs[modality], batch_size, device, channels_last)
    return score(logits, torch.from_numpy(np.array(val.targets)), task)  # a copy: the cache is read-only
