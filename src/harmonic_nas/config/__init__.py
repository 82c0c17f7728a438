"""Experiment configuration: pydantic schema and YAML I/O."""

from harmonic_nas.config.io import dump_config, load_config, validate_config
from harmonic_nas.config.schema import (
    DatasetConfig,
    ExperimentConfig,
    FusionConfig,
    HardwareConfig,
    MaxoutSpace,
    MBV3Space,
    MBV3Stage,
    RuntimeConfig,
    SearchConfig,
    SupernetTraining,
)

__all__ = [
    "DatasetConfig",
    "ExperimentConfig",
    "FusionConfig",
    "HardwareConfig",
    "MaxoutSpace",
    "MBV3Space",
    "MBV3Stage",
    "RuntimeConfig",
    "SearchConfig",
    "SupernetTraining",
    "dump_config",
    "load_config",
    "validate_config",
]
