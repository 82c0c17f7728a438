"""Architecture encodings (plain JSON-able dicts): sample, mutate, cross over, validate, hash.

Nothing here imports torch: the search and the store handle archs without building networks.
"""

from __future__ import annotations

from harmonic_nas.config.schema import MaxoutSpace, MBV3Space
from harmonic_nas.errors import UserError
from harmonic_nas.space.base import ArchSpace
from harmonic_nas.space.encoding import InvalidArchError, canonical_json, stable_hash
from harmonic_nas.space.maxout import MaxoutArchSpace
from harmonic_nas.space.mbv3 import MBV3ArchSpace


def make_space(space_cfg: MBV3Space | MaxoutSpace, name: str | None = None) -> MBV3ArchSpace | MaxoutArchSpace:
    """The arch space of a backbone config; ``name`` (e.g. the modality) prefixes error messages."""
    kind = getattr(space_cfg, "type", None)
    if kind == "mbv3":
        return MBV3ArchSpace(space_cfg, name)  # type: ignore[arg-type]
    if kind == "maxout":
        return MaxoutArchSpace(space_cfg, name)  # type: ignore[arg-type]
    raise UserError(f"unknown backbone space type {kind!r}: expected one of ['maxout', 'mbv3']")


__all__ = [
    "ArchSpace",
    "InvalidArchError",
    "MaxoutArchSpace",
    "MBV3ArchSpace",
    "canonical_json",
    "make_space",
    "stable_hash",
]
