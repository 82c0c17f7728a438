"""Harmonic-NAS: hardware-aware multimodal neural architecture search.

The Python API (docs/api.md): ``load_config``, ``run`` (the whole job, with callbacks), ``open_run`` (a
``Run``: its front, evaluations, generations, a DataFrame, its models), and the job's single steps of
``harmonic_nas.pipeline``. The names load on first use, so ``import harmonic_nas`` (and the CLI's start-up)
does not import torch. The steps ``search`` and ``report`` are named ``run_search`` and ``write_report`` here,
as ``harmonic_nas.search``, ``.report`` and ``.export`` are the subpackages.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_LAZY = {
    "load_config": ("harmonic_nas.config.io", "load_config"),
    "Run": ("harmonic_nas.api", "Run"),
    "open_run": ("harmonic_nas.api", "open_run"),
    "run": ("harmonic_nas.api", "run"),
    "prepare": ("harmonic_nas.pipeline", "prepare"),
    "train_supernets": ("harmonic_nas.pipeline", "train_supernets"),
    "profile": ("harmonic_nas.pipeline", "profile"),
    "run_search": ("harmonic_nas.pipeline", "search"),
    "write_report": ("harmonic_nas.pipeline", "report"),
    "export_model": ("harmonic_nas.pipeline", "export_model"),
    "export_front": ("harmonic_nas.pipeline", "export_front"),
}

__all__ = [
    "Run", "__version__", "export_front", "export_model", "load_config", "open_run", "prepare", "profile", "run",
    "run_search", "train_supernets", "write_report",
]

if TYPE_CHECKING:
    from harmonic_nas.api import Run, open_run, run
    from harmonic_nas.config.io import load_config
    from harmonic_nas.pipeline import export_front, export_model, prepare, profile, train_supernets
    from harmonic_nas.pipeline import report as write_report
    from harmonic_nas.pipeline import search as run_search


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'harmonic_nas' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # found once; later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
