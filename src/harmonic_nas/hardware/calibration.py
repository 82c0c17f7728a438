"""The per-device correction of the additive cost: measured ~ scale x sum(LUT entries) + per_layer x layers
+ offset, fitted on whole-model measurements and stored in the LUT file under ``calibration``.

Why: every entry is timed as a standalone call, so it carries one call's overhead (Python dispatch or an
ONNX Runtime ``run``) that inside a whole model is paid once; tiny layers are mostly that overhead. The
per-layer term removes it, the offset puts the whole model's call back, and the scale absorbs what
chaining layers changes (cache reuse, fused kernels). The fit minimises relative errors (rows weighted by
1 / measured) because the goal is a small percentage error over models of very different sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import Field, NonNegativeInt

from harmonic_nas.config.schema import StrictModel

MIN_MODELS = 4  # three coefficients need at least one more measurement than unknowns


class LinearFit(StrictModel):
    """predicted = scale x additive + per_layer x layers + offset, with in-sample fit statistics."""

    scale: float
    per_layer: float
    offset: float
    models: NonNegativeInt = Field(description="Whole models the fit was made on.")
    mape: float = Field(description="In-sample mean absolute percentage error, %.")
    r2: float

    def predict(self, additive: float, layers: int) -> float:
        return self.scale * additive + self.per_layer * layers + self.offset


class ReferenceModel(StrictModel):
    """One of the calibration's whole models (the median by latency), kept to be measured again beside every
    later whole-model measurement: its slowdown since the calibration says how much the machine itself (other
    tenants on a shared host, a clock change) moved the measurement, apart from the cost model's error."""

    candidate: dict[str, Any]
    genotype: dict[str, Any] | None
    latency_ms: float = Field(gt=0, description="Measured when the calibration was fitted.")


class Calibration(StrictModel):
    """Latency (ms) and energy (mJ) corrections of one LUT, and how well they held out of sample."""

    latency: LinearFit
    energy: LinearFit
    runtime: str
    date: datetime
    cross_validation: dict[str, float | None] = Field(
        default_factory=dict, description="Held-out figures of the fitted latency model (mape, within_10, spearman)."
    )
    reference: ReferenceModel | None = None


def fit_linear(additive: Sequence[float], layers: Sequence[int], measured: Sequence[float]) -> LinearFit:
    """Least squares on relative errors of ``measured`` against (additive, layers, 1)."""
    y = np.asarray(measured, dtype=float)
    if len(y) < MIN_MODELS or len(additive) != len(y) or len(layers) != len(y):
        raise ValueError(f"a calibration needs at least {MIN_MODELS} models with matching lengths, found {len(y)}")
    if np.any(y <= 0):
        raise ValueError("measured costs must be positive")
    design = np.column_stack([np.asarray(additive, float), np.asarray(layers, float), np.ones_like(y)])
    coef, *_ = np.linalg.lstsq(design / y[:, None], np.ones_like(y), rcond=None)
    predicted = design @ coef
    residual = float(np.sum((y - predicted) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    return LinearFit(
        scale=float(coef[0]),
        per_layer=float(coef[1]),
        offset=float(coef[2]),
        models=len(y),
        mape=float(np.mean(np.abs(predicted - y) / y) * 100),
        r2=1.0 - residual / total if total > 0 else 1.0,
    )
