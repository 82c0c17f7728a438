"""What every backbone architecture space offers the search, and the shared value check."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, Sequence, TypeVar, runtime_checkable

from harmonic_nas.errors import UserError, short_repr
from harmonic_nas.space.encoding import InvalidArchError
from harmonic_nas.space.values import Value

Choice = TypeVar("Choice", int, float)


@runtime_checkable
class ArchSpace(Protocol):
    """A backbone search space: its archs are typed values (a ``BackboneArch`` subclass) with a JSON form
    that is stored and hashed; ``parse`` is the one place raw JSON becomes an arch."""

    kind: str
    name: str

    def sample(self, rng: random.Random) -> Any: ...

    def min(self) -> Any: ...

    def max(self) -> Any: ...

    def parse(self, arch: Any) -> Any: ...

    def normalize(self, arch: Any) -> Any: ...

    def arch_hash(self, arch: Any) -> str: ...

    def mutate(self, arch: Any, rng: random.Random, prob: float) -> Any: ...

    def crossover(self, a: Any, b: Any, rng: random.Random) -> tuple[Any, Any]: ...


_SPACES: dict[str, type[ArchSpace]] = {}
SpaceT = TypeVar("SpaceT", bound=type)


def register_arch_space(kind: str) -> Callable[[SpaceT], SpaceT]:
    """Class decorator registering the arch space of the backbone family ``kind`` (the ``type`` of its
    config model); built as ``cls(space_cfg, name)``. The family's networks register in backbones."""

    def decorate(cls: SpaceT) -> SpaceT:
        if kind in _SPACES:
            raise UserError(f"arch space '{kind}' is already registered by {_SPACES[kind].__qualname__}")
        cls.kind = kind  # type: ignore[attr-defined]
        _SPACES[kind] = cls  # type: ignore[assignment]
        return cls

    return decorate


def arch_space_class(kind: Any) -> type[ArchSpace]:
    """The registered arch space of backbone family ``kind``; one UserError line if there is none."""
    if kind not in _SPACES:
        raise UserError(f"unknown backbone space type {kind!r}: expected one of {sorted(_SPACES)}")
    return _SPACES[kind]


def match_choice(space_name: str, field: str, value: Any, choices: Sequence[Choice]) -> Choice:
    """Return the choice equal to ``value`` (so 3 matches 3.0 and comes back in the choice's type)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        for choice in choices:
            if math.isclose(value, choice, rel_tol=1e-9, abs_tol=1e-12):
                return choice
    raise InvalidArchError(f"arch {space_name!r}: {field} = {short_repr(value)} is not one of {list(choices)}")


def check_keys(space_name: str, arch: Any, keys: Sequence[str]) -> dict[str, Any]:
    """An arch must be a dict with exactly ``keys``: a typo in a stored arch is an error, not a default."""
    expected = sorted(keys)
    if not isinstance(arch, dict):
        raise InvalidArchError(
            f"arch {space_name!r}: expected a dict with keys {expected}, found {type(arch).__name__}"
        )
    missing = [k for k in expected if k not in arch]
    if missing:
        raise InvalidArchError(f"arch {space_name!r}: missing key {missing[0]!r} (expected keys {expected})")
    unknown = sorted(str(k) for k in arch if k not in keys)
    if unknown:
        raise InvalidArchError(f"arch {space_name!r}: unknown key {unknown[0]!r} (expected keys {expected})")
    return arch


class ChoiceGenes:
    """A space of independent genes, each one of its sorted choices (maxout's three genes, the fusion
    macro's two): sampled, parsed, mutated (each gene redrawn with the mutation probability) and crossed
    over (each gene swapped with p = 0.5). ``value_type`` holds one point of the space."""

    value_type: ClassVar[type[Value]]

    def __init__(self, name: str, choices: dict[str, list[int] | list[float]]) -> None:
        self.name = name
        self.choices = choices

    def min(self) -> Any:
        return self.value_type(**{k: c[0] for k, c in self.choices.items()})

    def max(self) -> Any:
        return self.value_type(**{k: c[-1] for k, c in self.choices.items()})

    def sample(self, rng: random.Random) -> Any:
        return self.value_type(**{k: rng.choice(c) for k, c in self.choices.items()})

    def parse(self, value: Any) -> Any:
        """``value`` (its JSON, or a value) as one of this space's, or an InvalidArchError naming the gene."""
        raw = value.to_json() if isinstance(value, self.value_type) else value
        check_keys(self.name, raw, tuple(self.choices))
        return self.value_type(**{k: match_choice(self.name, k, raw[k], c) for k, c in self.choices.items()})

    def mutate(self, value: Any, rng: random.Random, prob: float) -> Any:
        """Each gene redrawn with probability ``prob``."""
        out = value.to_json()
        for k, c in self.choices.items():
            if rng.random() < prob:
                out[k] = rng.choice(c)
        return self.value_type(**out)

    def crossover(self, a: Any, b: Any, rng: random.Random) -> tuple[Any, Any]:
        """Uniform crossover: each gene swapped with p = 0.5."""
        x, y = a.to_json(), b.to_json()
        for k in self.choices:
            if rng.random() < 0.5:
                x[k], y[k] = y[k], x[k]
        return self.value_type(**x), self.value_type(**y)
