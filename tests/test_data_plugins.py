"""Dataset recipes from installed packages (the `harmonic_nas.datasets` entry-point group), found by
every fresh process without editing the package or a launcher script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def install_plugin(site: Path, target: str, module_source: str) -> None:
    """A real (unpacked) distribution on a sys.path folder: its module and dist-info with entry points."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "hnas_test_plugin.py").write_text(module_source)
    info = site / "hnas_test_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hnas-test-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[harmonic_nas.datasets]\nmine = {target}\n")


def cli(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "harmonic_nas", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_an_installed_recipe_is_listed_by_a_fresh_process(tmp_path: Path) -> None:
    install_plugin(tmp_path, "hnas_test_plugin:MyDigits", (
        "from harmonic_nas.data.builtin import BUILTINS\n\n\n"
        "class MyDigits(type(BUILTINS['av-digits'])):\n"
        "    name = 'my-digits'\n"
        "    description = 'av-digits under another name, from a plugin'\n"
    ))
    listed = cli(tmp_path, "data", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("my-digits"))
    assert "from a plugin" in line


def test_a_broken_plugin_is_one_line(tmp_path: Path) -> None:
    install_plugin(tmp_path, "hnas_test_plugin:NotARecipe", "NotARecipe = 42\n")
    listed = cli(tmp_path, "data", "list")
    assert listed.returncode == 2 and listed.stderr.count("\n") == 1, listed.stderr
    assert "dataset plugin 'mine' (hnas_test_plugin:NotARecipe): expected a Recipe" in listed.stderr
