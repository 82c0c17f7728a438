"""The search space's typed values (backbone archs, fusion macro, candidates, genotypes) and their spaces:
sample, mutate, cross over, parse (validate), hash.

Nothing here imports torch: the search and the store handle archs without building networks. Each backbone
family's arch space registers under its config ``type`` (``register_arch_space``); mbv3 and maxout are built in.
"""

from __future__ import annotations

from typing import Any

from harmonic_nas.space.base import ArchSpace, arch_space_class, register_arch_space
from harmonic_nas.space.candidate import Candidate, CandidateSpace
from harmonic_nas.space.encoding import InvalidArchError, canonical_json, stable_hash
from harmonic_nas.space.fusion import FusionMacroSpace, Macro
from harmonic_nas.space.genotype import Genotype, LiveParts
from harmonic_nas.space.maxout import MaxoutArch, MaxoutArchSpace
from harmonic_nas.space.mbv3 import MBV3Arch, MBV3ArchSpace
from harmonic_nas.space.values import BackboneArch


def make_space(space_cfg: Any, name: str | None = None) -> ArchSpace:
    """The arch space of a backbone config; ``name`` (e.g. the modality) prefixes error messages."""
    return arch_space_class(getattr(space_cfg, "type", None))(space_cfg, name)  # type: ignore[call-arg]


__all__ = [
    "ArchSpace",
    "BackboneArch",
    "Candidate",
    "CandidateSpace",
    "FusionMacroSpace",
    "Genotype",
    "InvalidArchError",
    "LiveParts",
    "Macro",
    "MaxoutArch",
    "MaxoutArchSpace",
    "MBV3Arch",
    "MBV3ArchSpace",
    "arch_space_class",
    "canonical_json",
    "make_space",
    "register_arch_space",
    "stable_hash",
]
