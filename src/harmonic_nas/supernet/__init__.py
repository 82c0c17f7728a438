"""Supernet training (sandwich rule + in-place distillation), BN recalibration, supernet files."""

from harmonic_nas.supernet.evaluate import calibration_indices, evaluate_subnet, prepare_subnet, recalibrate_bn
from harmonic_nas.supernet.store import SupernetFiles, load_supernet, save_supernet
from harmonic_nas.supernet.trainer import SupernetTrainer, remove_outputs

__all__ = [
    "SupernetFiles",
    "SupernetTrainer",
    "calibration_indices",
    "evaluate_subnet",
    "load_supernet",
    "prepare_subnet",
    "recalibrate_bn",
    "remove_outputs",
    "save_supernet",
]
