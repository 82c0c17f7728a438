"""Recipe options (DatasetConfig.options) validated by a pydantic model per dataset, one-line errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonic_nas.data.text import Encoder
from harmonic_nas.errors import UserError, short_repr


class Options(BaseModel):
    """Base of every recipe's options: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CatalogOptions(Options):
    """Options shared by the picture + text catalogues (emoji, tuxpaint): class filter, image size,
    text encoder, a cap for fast tests, stratified split fractions, seed."""

    min_items: int = Field(10, ge=3, description="Classes with fewer items are dropped.")
    image_size: int = Field(64, ge=8, le=128)
    text_encoder: Encoder = "minilm"
    text_dim: int = Field(256, ge=8, description="Size of the hashing encoder's vectors (minilm: 384).")
    max_items: int | None = Field(None, ge=30, description="Cap on items (fast tests).")
    val_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    seed: int = 0


O = TypeVar("O", bound=Options)


def parse_options(model: type[O], options: dict[str, Any], dataset: str) -> O:
    """Validate ``options`` for ``dataset``; the first problem becomes one UserError line."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "<options>"
        if first["type"] == "extra_forbidden":
            problem = f"unknown option (allowed: {', '.join(sorted(model.model_fields))})"
        else:
            problem = first["msg"].removeprefix("Value error, ")
            if "found" not in problem:
                problem += f", found {short_repr(first.get('input'))}"
        raise UserError(f"dataset {dataset!r}: option {key!r}: {problem}") from None


def parse_option_items(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` strings (CLI --option) into a dict; values are parsed as YAML scalars or lists."""
    from harmonic_nas.config.io import parse_yaml

    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {item!r}: expected KEY=VALUE")
        result[key.strip()] = parse_yaml(value, f"--option {item!r}", position=False)
    return result
