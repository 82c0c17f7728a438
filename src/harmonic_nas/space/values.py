"""The base of the domain's typed values (backbone archs, the fusion macro, candidates, genotypes): frozen
pydantic models built once where data enters (sampling, the store, files, derivation) and then trusted.

Their JSON form (``to_json``) is exactly the plain JSON the run store, fusion files and arch.json hold, so
canonical JSON and hashes are those of that JSON and every existing file still reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Value(BaseModel):
    """An immutable value of the search space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The plain JSON form (lists, ints, floats, strings), as stored."""
        return self.model_dump(mode="json")


class BackboneArch(Value):
    """One backbone's architecture; each family's arch space defines its own subclass."""

    def table_fields(self) -> list[tuple[str, str]]:
        """(column label, value) pairs for tables (the report, as in the paper's Tables 4-9)."""
        return [(name, value_text(value)) for name, value in self.to_json().items()]

    def short_text(self) -> str:
        """One short token for narrow tables (the `search` front)."""
        return ",".join(f"{k}={v}" for k, v in self.to_json().items())


def value_text(value: Any) -> str:
    """A number without a useless .0, a list as [a, b]."""
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
