"""Start-up benchmark: prints JSON.

How long the command line takes to answer when it does no work, and whether torch (seconds to import)
got imported on the way: median wall and CPU time over N fresh processes of

* ``harmonic-nas --help``, a mistyped command (``harmonic-nas serch``), ``harmonic-nas search --help``;
* ``python -c "import harmonic_nas"``.

Whether torch was imported is read from one more run of each with ``python -X importtime`` (set through
PYTHONPROFILEIMPORTTIME, so the installed ``harmonic-nas`` script is what runs). Every process starts
like a user's: the same interpreter, the environment of this one (PYTHONPATH included).

Usage: python benchmarks/startup.py [--runs N] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchjson import emit, machine


def entry_point() -> list[str]:
    """The installed ``harmonic-nas`` script beside this interpreter, else ``python -m harmonic_nas``."""
    script = Path(sys.executable).parent / "harmonic-nas"
    if script.is_file():
        return [str(script)]
    found = shutil.which("harmonic-nas")
    return [found] if found else [sys.executable, "-m", "harmonic_nas"]


def cases() -> dict[str, list[str]]:
    cli = entry_point()
    return {
        "harmonic-nas --help": [*cli, "--help"],
        "harmonic-nas serch (typo)": [*cli, "serch"],
        "harmonic-nas search --help": [*cli, "search", "--help"],
        "import harmonic_nas": [sys.executable, "-c", "import harmonic_nas"],
    }


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system of the child) of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def imported_modules(argv: list[str]) -> set[str]:
    """Top-level packages the process imported, from its ``-X importtime`` lines on stderr."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def measure(argv: list[str], runs: int) -> dict:
    timed(argv)  # warm the file cache: the first run reads every .pyc from disk
    walls, cpus = zip(*(timed(argv) for _ in range(runs)))
    modules = imported_modules(argv)
    return {"argv": argv, "runs": runs, "wall_s_median": round(statistics.median(walls), 4),
            "cpu_s_median": round(statistics.median(cpus), 4), "torch_imported": "torch" in modules,
            "modules_imported": len(modules)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="Processes per case (median of them).")
    parser.add_argument("--out", type=Path, help="Also write the JSON here.")
    args = parser.parse_args()
    report = machine("startup")
    report.update({"platform": platform.platform(), "cases": {}})
    for name, argv in cases().items():
        report["cases"][name] = measure(argv, args.runs)
        print(f"{name}: {report['cases'][name]}", file=sys.stderr, flush=True)
    emit(report, args.out)


if __name__ == "__main__":
    main()
