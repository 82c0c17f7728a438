"""The packages form layers (docs/architecture.md): a module imports its own package and the layers below
it, never one above (and never a package beside it in its own layer), so each layer can be read, tested
and reused without what is built on it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "harmonic_nas"
# Bottom to top; the names are harmonic_nas's packages and top-level modules.
LAYERS = [
    {"errors"},
    {"files", "layout", "console"},
    {"jsonfile", "runlock", "runtime", "torchfile"},
    {"config", "run_timings", "model_manifest"},
    {"space", "data"},
    {"hardware", "metrics"},
    {"backbones"},
    {"supernet"},
    {"fusion"},
    {"costing"},
    {"search"},
    {"export", "report"},
    {"pipeline"},
    {"api"},
    {"cli"},
    {"__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _unit(path: Path) -> str:
    """The package (or top-level module) a source file belongs to."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    """The harmonic_nas packages ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "harmonic_nas" and len(parts) > 1:
                found.add(parts[1])
            elif parts == ["harmonic_nas"] and isinstance(node, ast.ImportFrom):
                found.update(a.name for a in node.names)
    return found


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC}
    assert units <= set(RANK), f"give these a layer: {sorted(units - set(RANK))}"


def test_no_module_imports_a_layer_above_or_beside_its_own() -> None:
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        if path.parent == SRC and path.name == "__init__.py":
            continue
        unit = _unit(path)
        for imported in _imports(path) - {unit, "__version__"}:
            if RANK.get(imported, -1) >= RANK[unit]:
                wrong.append(f"{path.relative_to(SRC)} imports {imported}")
    assert not wrong, "; ".join(wrong)


def test_config_check_and_status_need_no_torch() -> None:
    """What a config is checked against (arch spaces, fusion operator names) and what the store parses
    into are torch-free, so `config check` and `status` answer without loading torch."""
    code = ("import sys, harmonic_nas.cli.config_cmd, harmonic_nas.cli.search_cmd, harmonic_nas.cli.status_cmd, "
            "harmonic_nas.search.store; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
