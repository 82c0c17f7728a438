"""Canonical JSON and stable hashes: an architecture's identity must not depend on key order, on
3 vs 3.0, or on the Python process (``hash()`` is salted), because the evaluation store is keyed by it."""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from typing import Any

from harmonic_nas.errors import UserError


class InvalidArchError(UserError):
    """An architecture encoding that does not belong to its search space (names field, choices, value)."""


def _plain(obj: Any) -> Any:
    """Recursively convert to JSON types; integral floats become ints so 3 and 3.0 encode alike."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        value = float(obj)
        if not math.isfinite(value):
            raise ValueError(f"cannot encode non-finite number {value!r}")
        return int(value) if value.is_integer() else value
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, found {key!r}")
            out[key] = _plain(value)
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Compact JSON with sorted keys and normalised numbers: equal values give equal strings."""
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def stable_hash(obj: Any) -> str:
    """First 16 hex chars of the sha256 of :func:`canonical_json` (64 bits: collisions negligible here)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]
