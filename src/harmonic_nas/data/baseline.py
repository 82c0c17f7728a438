"""A linear baseline per modality and fused, early (features concatenated) and late (the modalities'
logits weighted on validation): the check that a dataset needs fusion. Softmax (or sigmoid,
multilabel) regression in torch, L2 strength picked on validation."""

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
        loss = _loss(logits, y, multilabel) + l2 * model.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return model


def score(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> float:
    """Accuracy (multiclass) or sample-weighted F1 over labels (multilabel)."""
    if not multilabel:
        return float((logits.argmax(1) == y).float().mean())
    predicted = (logits > 0).float()
    tp = (predicted * y).sum(0)
    f1 = 2 * tp / (predicted.sum(0) + y.sum(0)).clamp(min=1)
    support = y.sum(0)
    return float((f1 * support).sum() / support.sum().clamp(min=1))


def _loss(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, y) if multilabel else F.cross_entropy(logits, y)


def fusion_weights(logits: list[torch.Tensor], y: torch.Tensor, multilabel: bool) -> np.ndarray:
    """One weight >= 0 per modality, fitted jointly by validation log-loss of the weighted sum of the
    modalities' logits (an inverse temperature each, with no upper bound): an over-confident strong
    modality is scaled down as far as it needs, never left flat beside a weaker one. Convex in the
    weights, so L-BFGS-B finds the optimum; logits are first scaled to unit RMS so weights are O(1)."""
    from scipy.optimize import minimize

    rms = [float(z.double().square().mean().sqrt()) or 1.0 for z in logits]
    stacked = torch.stack([z.double() / r for z, r in zip(logits, rms)])  # (M, N, K)
    target = y.double() if multilabel else y

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        weights = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        loss = _loss(torch.einsum("m,mnk->nk", weights, stacked), target, multilabel)
        loss.backward()
        assert weights.grad is not None
        return float(loss.detach()), weights.grad.numpy()

    result = minimize(objective, np.ones(len(logits)), jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(logits))
    return result.x / np.array(rms)


def linear_baseline(
    dataset: MultimodalDataset, l2_grid: tuple[float, ...] = (1e-6, 1e-4, 1e-2)
) -> dict[str, dict[str, float]]:
    """Val and test scores of logistic regression on each modality alone, on all features concatenated
    ("early"), and of late fusion: the per-modality models' logits summed with one weight per modality
    fitted on validation (``fusion_weights``)."""
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
            with torch.no_grad():
                val = score(model(x["val"]), targets["val"], multilabel)
            if best is None or val > best[0]:
                best = (val, model)
        assert best is not None
        with torch.no_grad():
            logits[label] = {s: best[1](x[s]) for s in ("val", "test")}
        results[label] = {s: score(logits[label][s], targets[s], multilabel) for s in ("val", "test")}
    results["late"] = late_fusion([logits[n] for n in names], targets, multilabel)
    return results


def late_fusion(logits: list[dict[str, torch.Tensor]], targets: dict[str, torch.Tensor], multilabel: bool) -> dict[str, float]:
    """Val and test scores of the modalities' logits summed with the weights of ``fusion_weights``. The
    least log-loss is not the best accuracy: when those weights score below a modality alone on
    validation, that modality alone (weight 0 for the others) is the late fusion kept."""
    fitted = fusion_weights([z["val"] for z in logits], targets["val"], multilabel)
    stacked = {s: torch.stack([z[s] for z in logits]) for s in ("val", "test")}

    def scores(weights: np.ndarray) -> dict[str, float]:
        w = torch.from_numpy(weights).float()
        return {s: score(torch.einsum("m,mnk->nk", w, stacked[s]), targets[s], multilabel) for s in stacked}

    candidates = [scores(w) for w in (fitted, *np.eye(len(logits)))]
    return max(candidates, key=lambda c: c["val"])
