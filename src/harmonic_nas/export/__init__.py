"""Exporting found models (ONNX, TorchScript, state dict + recipe) and retraining one from its architecture.

``harmonic-nas export`` / :func:`export_front` write ``arch.json``, ``model.pt`` and ``model.onnx``,
``model.int8.onnx`` or ``model.ts`` per model, each format recorded in the folder's ``manifest.json``; :func:`load_model` rebuilds a ``model.pt``; ``harmonic-nas reproduce`` retrains the
fusion of an ``arch.json`` from scratch. See docs/export.md.
"""

from harmonic_nas.export.build import BatchModel, BuiltModel, RunContext, build_model
from harmonic_nas.export.formats import ParityError, load_model
from harmonic_nas.export.exporter import ExportResult, export_front, export_model
from harmonic_nas.export.select import select_model
from harmonic_nas.model_manifest import FORMATS

__all__ = [
    "FORMATS", "BatchModel", "BuiltModel", "ExportResult", "ParityError", "RunContext", "build_model", "export_front",
    "export_model", "load_model", "select_model",
]
