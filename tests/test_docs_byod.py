"""The worked example of docs/byod.md runs as the page shows it: its data maker, adapter, launcher and config,
taken from the page's code blocks, prepare the shapes the transcript shows, give a baseline where fusion is
needed, and run the whole job through the launcher (the search's spawned workers register the recipe again)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "byod.md"
PAGE_DIR = "/tmp/docs-byod"
FILES = {"make_camimu.py": "# make_camimu.py", "camimu.py": '"""camimu:', "hnas.py": "# hnas.py"}


def page_example(work: Path) -> Path:
    """The page's files written into ``work`` (its /tmp/docs-byod paths pointed there); returns ``work``."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    for name, start in FILES.items():
        found = [b for b in blocks if b.startswith(start)]
        assert len(found) == 1, f"docs/byod.md: one python block starting {start!r}, found {len(found)}"
        (work / name).write_text(found[0])
    config = re.search(r"The config of the example:\n\n```yaml\n(.*?)```", text, re.S)
    assert config, "docs/byod.md: the example's yaml block after 'The config of the example:'"
    (work / "camimu.yaml").write_text(config.group(1).replace(PAGE_DIR, str(work)))
    return work


def python(work: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=work, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def example(tmp_path: Path) -> Path:
    work = page_example(tmp_path)
    python(work, "make_camimu.py", "data")
    return work


def test_the_example_data_prepares_with_the_shapes_the_page_shows(example: Path) -> None:
    info = python(example, "hnas.py", "data", "info", "data", "--cache-dir", "cache")
    assert "camimu  multiclass, 4 classes" in info
    assert re.search(r"image\s*│ image\s*│ 1x32x32", info) and re.search(r"imu\s*│ vector\s*│ 24 ", info)
    assert re.search(r"train\s*│ 1200 ", info) and re.search(r"test\s*│ 300 ", info)


def test_the_example_needs_both_modalities(example: Path) -> None:
    """The page's point: each modality alone tells about half of the label, so late fusion reads far more."""
    baseline = python(example, "hnas.py", "data", "baseline", "data", "--cache-dir", "cache")
    scores = {m.group(1): (float(m.group(2)), float(m.group(3)))
              for m in re.finditer(r"^(\w+)\s+val ([\d.]+)\s+test ([\d.]+)", baseline, re.M)}
    for split in (0, 1):
        single = max(scores["image"][split], scores["imu"][split])
        assert scores["late"][split] >= single + 0.15, scores


@pytest.mark.slow
def test_the_example_runs_through_the_launcher(example: Path) -> None:
    tiny = ["supernet.epochs=1", "search.generations=1", "fusion.epochs=1", "fusion.finetune_epochs=1",
            "hardware.calibrate=0"]
    sets = [arg for key in tiny for arg in ("--set", key)]
    python(example, "hnas.py", "run", "--config", "camimu.yaml", "--out", "run", *sets)
    status = json.loads(python(example, "hnas.py", "status", "run", "--json"))
    assert status["front"] and all(set(e["modalities"]) == {"image", "imu"} for e in status["front"]), status["front"]
    assert (example / "run" / "report" / "index.html").is_file()
