"""Load and save experiment configs as YAML, turning every failure into one clear line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from harmonic_nas.config.schema import BACKBONE_SPACES, ExperimentConfig
from harmonic_nas.errors import UserError, short_repr
from harmonic_nas.files import os_user_error, write_text


# A config is a few kB. The caps keep a hostile or broken file (a huge one, a YAML alias bomb whose
# aliases expand to billions of values) from hanging or exhausting memory before it is refused.
MAX_BYTES = 1 << 20
MAX_VALUES = 100_000
# libyaml's parser when PyYAML has it (about 10x faster than the pure-Python one), the same safe subset.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read ``path`` (YAML), apply ``key.sub=value`` overrides and validate against the schema."""
    path = Path(path)
    raw = parse_yaml(read_config_text(path), str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of keys at the top level, found {type(raw).__name__}")
    for item in overrides or []:
        apply_override(raw, item)
    return validate_config(raw, source=str(path))


def read_config_text(path: Path) -> str:
    """The text of a config file, refused in one line if missing, unreadable, too large or not UTF-8."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a config file (YAML)")
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise os_user_error(exc, path, "read the config") from None
    if len(data) > MAX_BYTES:
        raise UserError(f"{path}: config file larger than {MAX_BYTES // 1024} kB; a config is a few kB of YAML")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                        "save the config as UTF-8") from None


def parse_yaml(text: str, source: str, *, position: bool = True) -> Any:
    """``text`` as YAML (the safe subset), refused in one line naming ``source`` and, with ``position``,
    the line and column where it fails."""
    try:
        raw = yaml.load(text, Loader=_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) if position else None
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: invalid YAML: {problem}") from None
    _check_size(raw, source)
    return raw


def _check_size(raw: Any, source: str) -> None:
    """Refuse a value that expands (YAML aliases repeat what they name) to more than MAX_VALUES values;
    counted without expanding it, so a billion-value alias bomb is refused at once."""
    count, todo = 0, [raw]
    while todo:
        value = todo.pop()
        count += 1
        if count > MAX_VALUES:
            raise UserError(f"{source}: more than {MAX_VALUES} values once YAML aliases (*name) are expanded; "
                            "a config needs far fewer (an alias repeated in an alias?)")
        if isinstance(value, dict):
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)


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
    node[parts[-1]] = parse_yaml(value, f"--set {item!r}", position=False)


def format_validation_error(exc: ValidationError, source: str) -> str:
    """The first problem as ``source: key.path: what was expected, found what`` (+ how many more)."""
    # A misspelt key also shows up as a missing one: name the misspelling first, it is the cause.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"] if not _is_union_tag(p) and p != "[key]") or "<top level>"
    if first["loc"][-1:] == ("[key]",):
        loc += " (the name)"
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
        if "found" not in message and not isinstance(found, dict):  # a dict: a whole section, checked as one
            message += f", found {short_repr(found)}"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if not first["loc"]:  # a check across sections names its keys itself
        return f"{source}: {message}{more}"
    return f"{source}: {loc}: {message}{more}"


_UNION_TAGS = tuple(model.model_fields["type"].default for model in BACKBONE_SPACES)


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


def dump_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config (all defaults filled in) next to the run's results."""
    write_text(path, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
