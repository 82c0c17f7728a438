"""Latency/energy lookup tables: the JSON file format, loading with one-line errors, lookups, merging.

A LUT is measured once per device and runtime and then read by every cost query, so its file carries
everything needed to judge it (device, runtime, method, batch size, threads, units, energy source,
library versions, date, CPU) and every load is validated: a table of another device or a truncated file
must fail loudly, never cost a model wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, StringConstraints, ValidationError

from harmonic_nas.config.schema import HardwareConfig, Runtime, StrictModel
from harmonic_nas.errors import UserError, short_repr
from harmonic_nas.files import write_text
from harmonic_nas.hardware.calibration import Calibration
from harmonic_nas.hardware.host import cpu_model, library_versions
from harmonic_nas.hardware.int8_recipe import layer_recipe
from harmonic_nas.hardware.specs import LayerSpec, lut_key

PROFILE_COMMAND = "harmonic-nas profile --config CONFIG --out {out}"
KEY_PATTERN = r"^[a-z][a-z0-9_]*(:[A-Za-z][A-Za-z0-9_]*=[A-Za-z0-9_.+-]+)+$"
_KEY = re.compile(KEY_PATTERN)
# Header fields that define what a measurement means; tables differing in one of them do not mix.
IDENTITY_FIELDS = ("device", "runtime", "batch_size", "threads", "energy_source", "layer_recipe")

Measure = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
LutKey = Annotated[str, StringConstraints(pattern=KEY_PATTERN)]


class Units(StrictModel):
    latency: Literal["ms"] = "ms"
    energy: Literal["mJ"] = "mJ"


class LutHeader(StrictModel):
    """Where and how the entries were measured."""

    format: Literal[1] = 1
    device: str = Field(min_length=1, description="Name of the target device (names the LUT file).")
    runtime: Runtime
    method: str = Field(min_length=1, description="How one entry was measured (warm-up, repeats, statistic).")
    batch_size: PositiveInt
    threads: PositiveInt
    units: Units = Field(default_factory=Units)
    energy_source: str = Field(pattern=r"^(measured|estimated):\S", description="measured:<meter> or estimated:<m>.")
    versions: dict[str, str] = Field(description="python, torch, numpy, onnxruntime versions.")
    date: datetime
    host_cpu: str
    layer_recipe: str | None = Field(
        None, description="onnxruntime-int8 only: how each layer was quantized and run (hardware/int8_recipe.py); "
        "left out of the file otherwise.")

    @classmethod
    def for_this_host(
        cls, *, device: str, runtime: str, method: str, batch_size: int, threads: int, energy_source: str,
        layer_recipe: str | None = None,
    ) -> LutHeader:
        """A header stamped with this machine's CPU, library versions and the current UTC time."""
        return cls(
            device=device,
            runtime=runtime,  # type: ignore[arg-type]
            method=method,
            batch_size=batch_size,
            threads=threads,
            energy_source=energy_source,
            versions=library_versions(),
            date=datetime.now(timezone.utc).replace(microsecond=0),
            host_cpu=cpu_model(),
            layer_recipe=layer_recipe,
        )

    def differences(self, other: LutHeader) -> list[str]:
        """``field (mine vs theirs)`` for each identity field that differs."""
        return [
            f"{name} ({getattr(self, name)!r} vs {getattr(other, name)!r})"
            for name in IDENTITY_FIELDS
            if getattr(self, name) != getattr(other, name)
        ]


class LutEntry(StrictModel):
    """One layer at the header's batch size: latency (statistic in the header's method), its spread and energy per inference."""

    latency_ms: Measure
    latency_std_ms: Measure
    energy_mj: Measure
    repeats: PositiveInt
    float_ops: tuple[str, ...] | None = Field(
        None, description="onnxruntime-int8 only: op types of the layer that ran in float (no INT8 kernel in ORT, "
        "or ORT failed to quantize them); left out of the file otherwise.")


class _LutFile(StrictModel):
    header: LutHeader
    entries: dict[LutKey, LutEntry]
    calibration: Calibration | None = None


class MissingLutEntryError(UserError):
    """A layer the cost model needs was never profiled on this device."""

    def __init__(self, key: str, table: LookupTable) -> None:
        where = str(table.path) if table.path else "the lookup table"
        out = table.path or "LUT"
        super().__init__(
            f"no LUT entry for {key} in {where} (device {table.header.device}); "
            f"measure it with: {PROFILE_COMMAND.format(out=out)}"
        )
        self.key = key


class LookupTable:
    """A validated LUT in memory: a header and entries keyed by ``lut_key``."""

    def __init__(
        self,
        header: LutHeader,
        entries: Mapping[str, LutEntry] | None = None,
        path: Path | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.header = header
        self._entries: dict[str, LutEntry] = {}
        self.path = path  # where it was loaded from or last saved to; named in error messages
        self.calibration = calibration  # whole-model correction of the additive cost (costing/cost.py)
        for key, entry in (entries or {}).items():
            self.add(key, entry)

    @classmethod
    def load(cls, path: str | Path) -> LookupTable:
        """Read and validate ``path``; any problem is one ``UserError`` line naming the file and field."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(f"{path}: LUT file not found; create it with: {PROFILE_COMMAND.format(out=path)}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: cannot read LUT file: {exc}") from None
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        try:
            parsed = _LutFile.model_validate(raw)
        except ValidationError as exc:
            raise UserError(_describe(exc, path)) from None
        return cls(parsed.header, parsed.entries, path=path, calibration=parsed.calibration)

    def save(self, path: str | Path | None = None) -> Path:
        """Write atomically (temporary file, then rename): a crash never leaves a half-written table."""
        target = Path(path) if path is not None else self.path
        if target is None:
            raise ValueError("LookupTable.save needs a path: the table was neither loaded nor saved before")
        write_text(target, self._to_text())
        self.path = target
        return target

    @property
    def entries(self) -> Mapping[str, LutEntry]:
        return MappingProxyType(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, spec_or_key: object) -> bool:
        return isinstance(spec_or_key, (str, LayerSpec)) and _key(spec_or_key) in self._entries

    def add(self, spec_or_key: LayerSpec | str, entry: LutEntry) -> str:
        """Store (or replace) one entry; returns its key."""
        key = _key(spec_or_key)
        if not _KEY.match(key):
            raise ValueError(f"not a LUT key (op:name=value:...): {key!r}")
        self._entries[key] = entry
        return key

    def lookup(self, spec_or_key: LayerSpec | str) -> LutEntry:
        key = _key(spec_or_key)
        try:
            return self._entries[key]
        except KeyError:
            raise MissingLutEntryError(key, self) from None

    def missing(self, specs: Iterable[LayerSpec | str]) -> list[str]:
        """Keys of ``specs`` without an entry, each once, in first-seen order (completeness check)."""
        return list(dict.fromkeys(key for key in map(_key, specs) if key not in self._entries))

    def latency_range(self, specs: Iterable[LayerSpec | str]) -> tuple[float, float]:
        """(min, max) latency over ``specs``: this device's own scale for normalising the hardware loss."""
        return _range([self.lookup(s).latency_ms for s in specs])

    def energy_range(self, specs: Iterable[LayerSpec | str]) -> tuple[float, float]:
        return _range([self.lookup(s).energy_mj for s in specs])

    def merge(self, other: LookupTable, force: bool = False) -> LookupTable:
        """A new table with the entries of both; ``other``'s entries replace equal keys of this one.

        Tables measured on another device, runtime, batch size, thread count or energy source are
        refused unless ``force``; a forced merge says so in the header's method, and its energy source
        becomes ``estimated:mixed(...)`` if either side was estimated, so the mix stays visible.
        The merged table has no calibration: it was fitted against the entries of one table.
        """
        differences = self.header.differences(other.header)
        header = self.header
        if differences:
            if not force:
                raise UserError(
                    f"cannot merge {other.path or 'the other table'} into {self.path or 'this table'}: different "
                    f"{', '.join(differences)}; tables measured differently do not mix "
                    "(--force to merge them anyway)"
                )
            sources = (self.header.energy_source, other.header.energy_source)
            source = self.header.energy_source
            if sources[0] != sources[1]:
                kind = "estimated" if any(s.startswith("estimated:") for s in sources) else "measured"
                source = f"{kind}:mixed({sources[0]};{sources[1]})"
            method = f"{header.method}; forced merge with a table of different {', '.join(differences)}"
            header = header.model_copy(update={"method": method, "energy_source": source})
        return LookupTable(header, {**self._entries, **other._entries})

    def require_compatible(self, hardware: HardwareConfig) -> None:
        """Refuse a table measured differently from what the config's ``hardware`` section asks for."""
        wrong = [
            f"{name}={getattr(self.header, name)!r} (config: {getattr(hardware, name)!r})"
            for name in ("device", "runtime", "threads", "batch_size")
            if getattr(self.header, name) != getattr(hardware, name)
        ]
        if wrong:
            raise UserError(
                f"{self.path or 'LUT'}: measured with {', '.join(wrong)}; profile this setting with "
                f"{PROFILE_COMMAND.format(out='LUT')} or change hardware.* in the config"
            )
        expected, found = layer_recipe(self.header.runtime), self.header.layer_recipe
        if found != expected:
            raise UserError(
                f"{self.path or 'LUT'}: its {self.header.runtime} layers were profiled with layer_recipe {found!r} "
                f"(an earlier release), this release prices {expected!r}; profile again with "
                f"{PROFILE_COMMAND.format(out='NEW_LUT')}"
            )

    def _to_text(self) -> str:
        """Header indented, one entry per line, keys sorted: stable diffs and readable by eye."""
        header = json.dumps(self.header.model_dump(mode="json", exclude_none=True), indent=2).replace("\n", "\n  ")
        lines = [f"    {json.dumps(k)}: {json.dumps(self._entries[k].model_dump(exclude_none=True))}" for k in sorted(self._entries)]
        body = "{\n" + ",\n".join(lines) + "\n  }" if lines else "{}"
        calibration = ""
        if self.calibration is not None:
            fitted = json.dumps(self.calibration.model_dump(mode="json"), indent=2).replace("\n", "\n  ")
            calibration = f',\n  "calibration": {fitted}'
        return f'{{\n  "header": {header},\n  "entries": {body}{calibration}\n}}\n'


def import_lut(source: str | Path, dest_dir: str | Path, overwrite: bool = False) -> LookupTable:
    """Validate a LUT measured elsewhere (e.g. on a user's Jetson) and store it as ``dest_dir/<device>.json``."""
    table = LookupTable.load(source)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", table.header.device).lstrip(".") or "device"
    dest = Path(dest_dir) / f"{name}.json"
    if dest.exists() and not overwrite:
        raise UserError(
            f"{dest}: a LUT for device {table.header.device!r} exists already (--overwrite to replace it, or harmonic-nas lut merge to combine the two)"
        )
    table.save(dest)
    return table


def _key(spec_or_key: LayerSpec | str) -> str:
    return spec_or_key if isinstance(spec_or_key, str) else lut_key(spec_or_key)


def _range(values: list[float]) -> tuple[float, float]:
    if not values:
        raise ValueError("a LUT range needs at least one key")
    return min(values), max(values)


_PATTERN_HINTS = {
    "[key]": "not a LUT key, expected op:name=value:... (e.g. conv:in=3x32x32:out=16:k=3:s=2)",
    "energy_source": "expected measured:<meter> or estimated:<model>",
}


def _describe(exc: ValidationError, path: Path) -> str:
    """``file: where: what, found what`` for the first problem, e.g. ``entries['conv:in=3x8x8'].latency_ms``."""
    # A misspelt field also shows up as a missing one: name the misspelling first, it is the cause.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    where = ""
    loc = first["loc"]
    for i, part in enumerate(loc):
        if part == "[key]":
            where += " (key)"
        elif i > 0 and loc[i - 1] == "entries":
            where += f"[{str(part)!r}]"
        else:
            where += ("." if where else "") + str(part)
    message = first["msg"]
    if first["type"] == "string_pattern_mismatch" and loc:
        message = _PATTERN_HINTS.get(str(loc[-1]), message)
    if first["type"] not in ("missing", "extra_forbidden"):
        message += f", found {short_repr(first.get('input'))}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {where or '<top level>'}: {message}{more}"
