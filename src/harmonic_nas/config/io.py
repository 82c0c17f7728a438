"""Load and save experiment configs as YAML, turning every failure into one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.errors import UserError
from harmonic_nas.files import write_text


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read ``path`` (YAML), apply ``key.sub=value`` overrides and validate against the schema."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of keys at the top level, found {type(raw).__name__}")
    for item in overrides or []:
        apply_override(raw, item)
    return validate_config(raw, source=str(path))


def validate_config(raw: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, source)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as a YAML scalar or list."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UserError(f"override {item!r}: expected KEY.PATH=VALUE")
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise UserError(f"override {item!r}: {part} is not a mapping")
        node = child
    node[parts[-1]] = yaml.safe_load(value)


def format_validation_error(exc: ValidationError, source: str) -> str:
    """The first problem as ``source: key.path: what was expected, found what`` (+ how many more)."""
    # A misspelt key also shows up as a missing one: name the misspelling first, it is the cause.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"] if not _is_union_tag(p)) or "<top level>"
    kind = first["type"]
    found = first.get("input")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(first["loc"][:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        message = f"unknown key{hint}"
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = first["msg"].removeprefix("Value error, ")
        if "found" not in message:
            message += f", found {_short(found)}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{source}: {loc}: {message}{more}"


_UNION_TAGS = ("mbv3", "maxout")


def _is_union_tag(part: Any) -> bool:
    return part in _UNION_TAGS


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc``, so that the user sees what a mistyped key should be."""
    annotation: Any = ExperimentConfig
    for part in loc:
        model = _model_of(annotation, tag=part if _is_union_tag(part) else None)
        if _is_union_tag(part) or isinstance(part, int):
            annotation = model if model is not None else _item_type(annotation)
            continue
        if model is not None and str(part) in model.model_fields:
            annotation = model.model_fields[str(part)].annotation
        else:  # a dict key such as a modality name: descend into the value type
            annotation = _item_type(annotation)
    model = _model_of(annotation)
    return sorted(model.model_fields) if model is not None else []


def _item_type(annotation: Any) -> Any:
    args = get_args(annotation)
    return args[-1] if args else None


def _model_of(annotation: Any, tag: str | None = None) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (through Annotated/Union/Optional/list/dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if tag is None or annotation.model_fields.get("type") is None or annotation.model_fields["type"].default == tag:
            return annotation
        return None
    for arg in get_args(annotation):
        found = _model_of(arg, tag)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def dump_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config (all defaults filled in) next to the run's results."""
    write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
