"""Fusion network building blocks: input projection of backbone taps and the registry of fusion operators."""

from harmonic_nas.fusion.operators import (
    OPERATORS,
    ConcatFC,
    ConcatMish,
    FusionOperator,
    LinearGLU,
    ScaledDotAttention,
    SqueezeExcitation,
    Sum,
    build_operator,
    register_operator,
)
from harmonic_nas.fusion.projection import InputProjection, pool_to_sequence

__all__ = [
    "OPERATORS",
    "ConcatFC",
    "ConcatMish",
    "FusionOperator",
    "InputProjection",
    "LinearGLU",
    "ScaledDotAttention",
    "SqueezeExcitation",
    "Sum",
    "build_operator",
    "pool_to_sequence",
    "register_operator",
]
