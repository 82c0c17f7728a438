"""Supernet training (sandwich rule + in-place distillation), BN recalibration, supernet files."""

from harmonic_nas.supernet.subnets import calibration_indices, evaluate_subnet, prepare_subnet, recalibrate_bn
from harmonic_nas.supernet.supernet_file import load_supernet, save_supernet
from harmonic_nas.supernet.trainer import SupernetTrainer, remove_outputs

__all__ = [
    "SupernetTrainer",
    "calibration_indices",
    "evaluate_subnet",
    "load_supernet",
    "prepare_subnet",
    "recalibrate_bn",
    "remove_outputs",
    "save_supernet",
]
