"""What the cost benchmarks record around their numbers: the machine and its load before, and at the end the
load after and the JSON itself (printed, and written to --out). Timings mean little without the load."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from harmonic_nas.hardware.host import cpu_model, library_versions


def machine(benchmark: str) -> dict[str, Any]:
    """The opening keys: which benchmark, when, on what CPU and libraries, malloc tuned or not, load before."""
    return {"benchmark": benchmark, "date": time.strftime("%Y-%m-%d %H:%M"), "host_cpu": cpu_model(), "cores": os.cpu_count(), "versions": library_versions(),
            "malloc_tuned": os.environ.get("MALLOC_MMAP_MAX_") == "0", "load_average_before": os.getloadavg()}


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Add the load after, print the JSON, and write it to ``out`` when given."""
    result["load_average_after"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
