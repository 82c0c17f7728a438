"""What a LUT header records about the machine and software it was measured with.

Latency depends on the CPU model and the library versions as much as on the layer, so a table must say
where it came from; none of this imports torch (reading package metadata is enough).
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

# Distributions whose version changes measured latency; the first installed name of each group is used.
_LIBRARIES = {"torch": ("torch",), "numpy": ("numpy",), "onnxruntime": ("onnxruntime", "onnxruntime-gpu")}


def library_versions() -> dict[str, str]:
    """Python and the installed versions of torch, numpy and onnxruntime (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for label, names in _LIBRARIES.items():
        for name in names:
            try:
                versions[label] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def cpu_model(root: str | Path = "/") -> str:
    """The CPU (or board) model: x86 ``model name``, else the device-tree model (Jetson), else platform."""
    root = Path(root)
    try:
        for line in (root / "proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    try:
        model = (root / "proc/device-tree/model").read_text(encoding="utf-8", errors="replace").strip("\x00\n ")
        if model:
            return model
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
