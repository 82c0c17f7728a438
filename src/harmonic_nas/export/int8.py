"""The INT8 export (``--format onnx-int8``): model.onnx quantized by ``hardware.quantize`` (the recipe the
INT8 LUT was measured with), calibrated on a fixed seeded subset of the training split, and scored on
the val score part (``exporter.onnx_val_metric``). An INT8 model cannot match the float network to 1e-4,
so instead of a parity check the manifest records what quantization cost: the INT8 model's val metric
beside the float one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.data import SplitData
from harmonic_nas.files import write_bytes
from harmonic_nas.hardware.int8_recipe import RECIPE
from harmonic_nas.hardware.quantize import Quantized, quantize
from harmonic_nas.supernet.subnets import calibration_indices

CALIBRATION_SAMPLES = 64
CALIBRATION_BATCH = 16


def calibration_feeds(train: SplitData, names: Sequence[str], seed: int,
                      samples: int = CALIBRATION_SAMPLES) -> list[dict[str, np.ndarray]]:
    """``samples`` training samples drawn with ``seed`` (as BN recalibration draws them), in batches, fed
    by graph input name."""
    indices = calibration_indices(len(train), samples, seed)
    return [{m: np.ascontiguousarray(train.inputs[m][indices[i : i + CALIBRATION_BATCH]], dtype=np.float32)
             for m in names}
            for i in range(0, len(indices), CALIBRATION_BATCH)]


def write_int8(float_onnx: Path, train: SplitData, names: Sequence[str], seed: int, path: Path) -> Quantized:
    """Quantize ``float_onnx`` (graph inputs ``names``) calibrated on the training subset; write ``path``."""
    quantized = quantize(float_onnx.read_bytes(), calibration_feeds(train, names, seed), str(float_onnx.name))
    write_bytes(path, quantized.model)
    return quantized


def int8_checks(quantized: Quantized, val_float: float, val_int8: float, max_abs_diff: float, train: SplitData,
                seed: int) -> dict[str, Any]:
    """The manifest's record of an INT8 export: its val metric, the drop from float, how it was made."""
    return {
        "val_int8": val_int8,
        "val_drop": val_float - val_int8,
        "max_abs_diff_vs_float": max_abs_diff,  # informative only: no tolerance holds for INT8
        "float_ops": list(quantized.float_ops),
        "recipe": RECIPE,
        "calibration": {"split": "train", "samples": min(CALIBRATION_SAMPLES, len(train)), "seed": seed},
    }
