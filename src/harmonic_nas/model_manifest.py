"""manifest.json of an exported model's folder: every format exported into it (its file, the checks it
passed, its measured latency with the protocol, when).

One file per folder, updated rather than replaced: exporting ``--format torchscript`` into a folder that
holds ``model.onnx`` adds an entry and keeps the ONNX one, so the earlier file stays described. Torch-free
and below ``export`` and ``report``: the exporter writes it, the report reads the measured latency from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harmonic_nas.jsonfile import write_json

MANIFEST_NAME = "manifest.json"
# The formats a model folder can hold and the file of each (the command line lists them without torch);
# onnx-int8 is model.onnx statically quantized to INT8 (export/int8.py).
FORMATS = ("onnx", "onnx-int8", "torchscript", "pt")
FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "torchscript": "model.ts", "pt": "model.pt"}
# A reference model at most 5 % slower than at calibration: the machine runs as fast as when the LUT was fitted.
STEADY = 0.05


class MeasuredLatency(BaseModel):
    """Latency of an exported model on this machine, measured as its LUT was (runtime, threads, batch size
    and ``method``: the timing protocol)."""

    model_config = ConfigDict(frozen=True)

    runtime: str
    threads: int
    batch_size: int
    latency_ms: float
    latency_std_ms: float
    energy_mj: float
    energy_source: str
    repeats: int
    lut_device: str
    method: str
    # The LUT calibration's reference model measured in the same rounds now, and when it was calibrated: their
    # ratio is how much slower the machine ran than when the LUT was fitted (None: a LUT without one).
    reference_ms: float | None = None
    reference_calibration_ms: float | None = None
    # Measurements taken (export/latency.py): more than one when the reference ran slower than at calibration.
    attempts: int = Field(default=1, ge=1)

    @property
    def machine_factor(self) -> float | None:
        """Reference model now / at calibration: > 1 when the machine ran slower than when the LUT was fitted."""
        if self.reference_ms is None or not self.reference_calibration_ms:
            return None
        return self.reference_ms / self.reference_calibration_ms

    @property
    def drift_corrected_ms(self) -> float | None:
        """The latency on the machine as it ran when the LUT was fitted (None without a reference)."""
        factor = self.machine_factor
        return None if factor is None else self.latency_ms / factor

    def versus(self, predicted_ms: float) -> str:
        """``measured/predicted R`` and, with a reference, the ratio with the machine's slowdown taken out."""
        text = f"measured/predicted {self.latency_ms / predicted_ms:.2f}"
        factor = self.machine_factor
        if factor is not None:
            text += (f"; reference model {factor:.2f}x its calibration time, so "
                     f"{self.drift_corrected_ms / predicted_ms:.2f} on the machine the LUT was fitted on")
            earlier = self.attempts - 1
            if earlier and factor <= 1 + STEADY:
                text += f" (after {earlier} measurement{'s' * (earlier > 1)} with the machine slower than then)"
            elif earlier:
                text += f" ({self.attempts} measurements, the machine more than {STEADY:.0%} slower in all)"
        return text


def agreement(measured: Collection[tuple[MeasuredLatency, float]], tolerance: float = 0.10) -> str:
    """One line over (measured, predicted ms) pairs: how many within ``tolerance`` of their prediction as
    measured and, with the calibration's reference, with the machine's drift taken out; when the reference
    ran off its calibration time by more than ``tolerance`` for every model, which way the machine moved (on a
    shared host a whole profile step can fall in a slow period: BENCHMARKS.md, LUT fidelity)."""
    raw = sum(abs(m.latency_ms / p - 1) <= tolerance for m, p in measured)
    text = f"latency: {raw} of {len(measured)} measured within +-{tolerance:.0%} of their prediction"
    factors = [m.machine_factor for m, _ in measured if m.machine_factor is not None]
    if len(factors) == len(measured):
        steady = sum(abs(m.drift_corrected_ms / p - 1) <= tolerance for m, p in measured)
        text += (f", {steady} of {len(measured)} with the machine's drift taken out (reference model "
                 f"{min(factors):.2f}-{max(factors):.2f}x its calibration time)")
        if max(factors) < 1 - tolerance:
            text += ("; the LUT was measured while this machine ran slower than now, so its predictions read "
                     "high (all alike: the search's ranking holds)")
        elif min(factors) > 1 + tolerance:
            text += "; this machine runs slower now than when the LUT was measured: export again when it is steady"
    return text


class ExportEntry(BaseModel):
    """One format exported into the folder; ``file`` is the format's own file (model.onnx, model.int8.onnx,
    model.ts, model.pt). ``checks``: the parity check (samples, tolerance, max abs diff of every file
    written, model.pt included) and the exported network's val metric; for onnx-int8 also ``int8``: the INT8
    model's val metric, its drop from float, the ops left in float and the calibration."""

    model_config = ConfigDict(frozen=True)

    format: str
    file: str
    measured: MeasuredLatency | None
    checks: dict[str, Any]
    onnx_inputs: list[str] | None = None  # the ONNX graph's inputs (a modality the fusion never reads is dropped)
    date: str

    @classmethod
    def now(cls, **fields: Any) -> ExportEntry:
        return cls(date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields)


class Manifest(BaseModel):
    """The formats of one model (``id`` with the search's ``val`` metric: a re-searched model with the same
    id is another network), oldest export first."""

    format: Literal["harmonic-nas-manifest/1"] = "harmonic-nas-manifest/1"
    id: str
    val: float
    exports: list[ExportEntry] = []

    def entry(self, fmt: str) -> ExportEntry | None:
        """The entry of format ``fmt``, if exported."""
        return next((e for e in self.exports if e.format == fmt), None)

    def describes(self, model_id: str, val: float) -> bool:
        return self.id == model_id and self.val == val


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest with only the entries whose file is still there; None when there is none or
    it is not a manifest (an export replaces it, the report shows no measurement)."""
    folder = Path(folder)
    try:
        manifest = Manifest.model_validate(json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8")))
    except (OSError, ValueError, ValidationError):
        return None
    manifest.exports = [e for e in manifest.exports if (folder / e.file).is_file()]
    return manifest


def record_export(folder: Path, model_id: str, val: float, entry: ExportEntry, written: Collection[str]) -> Manifest:
    """Add ``entry`` to the folder's manifest (replacing the entry of its format), drop the entries whose
    file is gone, and write it. A manifest of another model (or of the same id with another val metric)
    starts afresh, and the files its entries named that this export did not rewrite (``written``) are
    removed: they hold another network."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or not manifest.describes(model_id, val):
        for old in manifest.exports if manifest is not None else []:
            if old.file not in written:
                (folder / old.file).unlink(missing_ok=True)
        manifest = Manifest(id=model_id, val=val)
    manifest.exports = [e for e in manifest.exports if e.format != entry.format] + [entry]
    write_json(folder / MANIFEST_NAME, manifest.model_dump(mode="json"))
    return manifest
