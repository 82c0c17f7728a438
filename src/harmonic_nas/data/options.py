"""Recipe options (DatasetConfig.options) validated by a pydantic model per dataset, one-line errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from harmonic_nas.errors import UserError


class Options(BaseModel):
    """Base of every recipe's options: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
                problem += f", found {first.get('input')!r}"
        raise UserError(f"dataset {dataset!r}: option {key!r}: {problem}") from None


def parse_option_items(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` strings (CLI --option) into a dict; values are parsed as YAML scalars or lists."""
    import yaml

    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--option {item!r}: expected KEY=VALUE")
        result[key.strip()] = yaml.safe_load(value)
    return result
