"""Layer specs: the hashable description of one costed operation, and the LUT key made from it.

Everything that runs at inference (backbone layers, fusion projections, fusion operators, classifiers)
is described by a ``LayerSpec``; ``lut_key`` is the only place that turns a spec into a key, so that the
profiler, the LUT and the cost model can never disagree on how a layer is named.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_VALUE = re.compile(r"^[A-Za-z0-9_.+-]+$")  # never ':' or '=', the separators of a key

Scalar = int | float | str | bool


@dataclass(frozen=True)
class LayerSpec:
    """One operation at one input shape (per sample, without the batch dimension).

    ``input_shape`` is (C, H, W) for 2-D feature maps, (C, L) for fusion tensors and (D,) for vectors.
    The typed fields cover what backbone layers need; anything else goes into ``extra`` as (name, value)
    pairs (e.g. ``(("L", 16),)`` for a projection's pooled length, ``(("inputs", 2),)`` for a fusion op).
    Unused fields stay ``None`` and do not appear in the key. Prefer ``mid`` over ``expand`` when the
    middle width is known: layers that compute the same thing should share one key (and one measurement).
    """

    op: str
    input_shape: tuple[int, ...]
    out: int | None = None
    mid: int | None = None
    kernel: int | None = None
    stride: int | None = None
    expand: float | None = None
    se: bool | None = None
    act: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.op):
            raise ValueError(f"LayerSpec.op must match {_NAME.pattern}, found {self.op!r}")
        shape = tuple(_positive_int("input_shape", v) for v in self.input_shape)
        if not 1 <= len(shape) <= 3:
            raise ValueError(f"LayerSpec.input_shape must be (D,), (C, L) or (C, H, W), found {self.input_shape}")
        object.__setattr__(self, "input_shape", shape)
        for name in ("out", "mid", "kernel", "stride"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _positive_int(name, value))
        if self.expand is not None:
            expand = float(self.expand)
            if not math.isfinite(expand) or expand <= 0:
                raise ValueError(f"LayerSpec.expand must be a positive number, found {self.expand!r}")
            object.__setattr__(self, "expand", expand)
        if self.se is not None and not isinstance(self.se, bool):
            raise ValueError(f"LayerSpec.se must be a bool, found {self.se!r}")
        if self.act is not None and not _NAME.match(self.act):
            raise ValueError(f"LayerSpec.act must match {_NAME.pattern}, found {self.act!r}")
        object.__setattr__(self, "extra", _normalise_extra(self.extra))


_TYPED = tuple(f.name for f in fields(LayerSpec) if f.name not in ("op", "input_shape", "extra"))
# Short key labels in a fixed order; changing them invalidates every LUT ever written.
_LABELS = {"out": "out", "mid": "mid", "kernel": "k", "stride": "s", "expand": "e", "se": "se", "act": "act"}
_RESERVED = {"in", *_LABELS.values()}


def lut_key(spec: LayerSpec) -> str:
    """The stable, readable LUT key of ``spec``, e.g. ``mbconv:in=24x14x14:out=40:mid=96:k=5:s=2:se=0:act=relu``.

    Typed fields come in a fixed order, ``extra`` sorted by name; ``None`` fields are left out.
    """
    parts = [spec.op, "in=" + "x".join(str(v) for v in spec.input_shape)]
    for name in _TYPED:
        value = getattr(spec, name)
        if value is not None:
            parts.append(f"{_LABELS[name]}={_format(value)}")
    parts.extend(f"{name}={_format(value)}" for name, value in spec.extra)
    return ":".join(parts)


def _format(value: Scalar) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _positive_int(name: str, value: Any) -> int:
    try:
        ok = not isinstance(value, (bool, str)) and int(value) == value and int(value) > 0
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"LayerSpec.{name} must hold positive integers, found {value!r}")
    return int(value)


def _normalise_extra(extra: Any) -> tuple[tuple[str, Scalar], ...]:
    """Sorted (name, value) pairs, so that the same keys in any order give an equal spec and key."""
    items = tuple(extra.items()) if isinstance(extra, dict) else tuple(tuple(item) for item in extra)
    seen: set[str] = set()
    for item in items:
        if len(item) != 2:
            raise ValueError(f"LayerSpec.extra must hold (name, value) pairs, found {item!r}")
        name, value = item
        if not isinstance(name, str) or not _NAME.match(name.lower()) or name in seen or name in _RESERVED:
            raise ValueError(f"LayerSpec.extra: bad or repeated name {name!r}")
        if not isinstance(value, (int, float, str, bool)) or not _VALUE.match(_format(value)):
            raise ValueError(f"LayerSpec.extra[{name!r}] must be a number or a plain word, found {value!r}")
        seen.add(name)
    return tuple(sorted(items))
