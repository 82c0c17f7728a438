"""A linear baseline per modality and fused (features concatenated): the check that a dataset needs
fusion. Softmax (or sigmoid, multilabel) regression in torch, L2 strength picked on validation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from harmonic_nas.data.base import MultimodalDataset, SplitData

_MAX_SIDE = 28


def features(data: SplitData, modalities: list[str]) -> torch.Tensor:
    """Flattened inputs, 2-D ones average-pooled to at most 28 x 28 (standardised later, on train)."""
    blocks = []
    for name in modalities:
        x = torch.from_numpy(np.array(data.inputs[name], dtype=np.float32))
        if x.dim() == 4 and max(x.shape[-2:]) > _MAX_SIDE:
            x = F.adaptive_avg_pool2d(x, (min(x.shape[-2], _MAX_SIDE), min(x.shape[-1], _MAX_SIDE)))
        x = x.reshape(len(x), -1)
        blocks.append(x)
    return torch.cat(blocks, dim=1)


def _fit(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, multilabel: bool) -> torch.nn.Linear:
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], classes)
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=100, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, y) if multilabel else F.cross_entropy(logits, y)
        loss = loss + l2 * model.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def score(model: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor, multilabel: bool) -> float:
    """Accuracy (multiclass) or sample-weighted F1 over labels (multilabel)."""
    with torch.no_grad():
        logits = model(x)
    if not multilabel:
        return float((logits.argmax(1) == y).float().mean())
    predicted = (logits > 0).float()
    tp = (predicted * y).sum(0)
    f1 = 2 * tp / (predicted.sum(0) + y.sum(0)).clamp(min=1)
    support = y.sum(0)
    return float((f1 * support).sum() / support.sum().clamp(min=1))


def _log_probs(logits: torch.Tensor, temperature: float, multilabel: bool) -> torch.Tensor:
    scaled = logits / temperature
    return F.logsigmoid(scaled) - F.logsigmoid(-scaled) if multilabel else F.log_softmax(scaled, dim=1)


def _temperature(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> float:
    """The softmax temperature that minimises validation loss (calibrates an over-confident modality)."""
    grid = [float(t) for t in np.logspace(-1, 2, 25)]
    losses = []
    for t in grid:
        scaled = logits / t
        loss = F.binary_cross_entropy_with_logits(scaled, y) if multilabel else F.cross_entropy(scaled, y)
        losses.append(float(loss))
    return grid[int(np.argmin(losses))]


class _Logits:
    """Scores standing in for a model: late fusion adds calibrated log-probabilities."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


def linear_baseline(
    dataset: MultimodalDataset, l2_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
) -> dict[str, dict[str, float]]:
    """Val and test scores of logistic regression on each modality alone, on all features concatenated
    ("early"), and of late fusion: the per-modality models' log-probabilities summed after a
    temperature per modality is fitted on validation (1 parameter each)."""
    multilabel = dataset.task == "multilabel"
    names = list(dataset.modalities)
    splits = {s: dataset.split(s) for s in ("train", "val", "test")}
    targets = {
        s: torch.from_numpy(np.array(d.targets, dtype=np.float32 if multilabel else np.int64)) for s, d in splits.items()
    }
    results: dict[str, dict[str, float]] = {}
    logits: dict[str, dict[str, torch.Tensor]] = {}
    for label, group in [(n, [n]) for n in names] + [("early", names)]:
        x = {s: features(d, group) for s, d in splits.items()}
        mean, std = x["train"].mean(0), x["train"].std(0) + 1e-3
        x = {s: (v - mean) / std for s, v in x.items()}
        best: tuple[float, torch.nn.Linear] | None = None
        for l2 in l2_grid:
            model = _fit(x["train"], targets["train"], dataset.num_classes, l2, multilabel)
            val = score(model, x["val"], targets["val"], multilabel)
            if best is None or val > best[0]:
                best = (val, model)
        assert best is not None
        results[label] = {"val": best[0], "test": score(best[1], x["test"], targets["test"], multilabel)}
        with torch.no_grad():
            logits[label] = {s: best[1](x[s]) for s in ("val", "test")}
    fused = {s: torch.zeros_like(logits[names[0]][s]) for s in ("val", "test")}
    for name in names:
        t = _temperature(logits[name]["val"], targets["val"], multilabel)
        for s in fused:
            fused[s] = fused[s] + _log_probs(logits[name][s], t, multilabel)
    results["late"] = {s: score(_Logits(fused[s]), fused[s], targets[s], multilabel) for s in ("val", "test")}  # type: ignore[arg-type]
    return results
