"""The config reference (docs/config.md) generated from the schema, so docs and code never disagree."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from harmonic_nas.config.schema import BACKBONE_SPACES, ExperimentConfig


def _type_name(annotation: Any) -> str:
    """A readable type: constraints and discriminators dropped, unions spelt with 'or' (a '|' would
    split the markdown table)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()
    else:
        return "required"
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{value}`"


def _table(model: type[BaseModel], prefix: str) -> list[str]:
    lines = [f"### `{prefix}`" if prefix else "### top level", ""]
    if model.__doc__:
        lines += [" ".join(model.__doc__.split()), ""]
    lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    return lines + [""]


def config_reference() -> str:
    """Markdown tables of every section of an experiment config."""
    sections: list[tuple[type[BaseModel], str]] = [(ExperimentConfig, "")]
    for name, field in ExperimentConfig.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append((annotation, name))
            for sub, subfield in annotation.model_fields.items():
                if isinstance(subfield.annotation, type) and issubclass(subfield.annotation, BaseModel):
                    sections.append((subfield.annotation, f"{name}.{sub}"))
    for space in BACKBONE_SPACES:
        sections.append((space, f"modalities.<name> (type: {space.model_fields['type'].default})"))
        for sub, subfield in space.model_fields.items():
            item = get_args(subfield.annotation)[0] if get_origin(subfield.annotation) is list else None
            if isinstance(item, type) and issubclass(item, BaseModel):
                sections.append((item, f"modalities.<name>.{sub}[]"))
    out = [
        "# Config reference",
        "",
        "Generated from the schema (`harmonic-nas config reference > docs/config.md`); every key not listed",
        "is an error. Validate a file with `harmonic-nas config check FILE`; `--show` prints it with all",
        "defaults filled in; `--set key.path=value` overrides any key on any command that takes a config.",
        "",
    ]
    for model, prefix in sections:
        out += _table(model, prefix)
    return "\n".join(out).rstrip() + "\n"
