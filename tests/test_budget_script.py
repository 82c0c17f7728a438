"""benchmarks/budget.py, which docs/paper-setting.md sends GPU users to, runs on the smoke config and its JSON
adds up: the expected total is the sum of its parts and the counts are the config's. (Its timings are checked
against recorded runs in BENCHMARKS.md, not here.)"""

from __future__ import annotations

import json
import math
import subprocess
import sys

from helpers import ROOT, SMOKE

from harmonic_nas.config import load_config


def budget(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "benchmarks/budget.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_the_estimate_runs_on_the_smoke_config_and_adds_up() -> None:
    done = budget("--config", str(SMOKE), "--steps", "1", "--backbones", "1", "--candidates", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    cfg = load_config(SMOKE)
    s = cfg.search
    assert report["counts"] == {"backbones_at_most": s.population * s.generations * len(cfg.modalities),
                                "pairs": math.ceil(s.population * s.top_fraction) * s.generations}
    expected = report["expected_s"]
    assert abs(expected["total"] - (expected["supernets"] + expected["stage1"] + expected["stage2"])) <= 1
    assert set(report["supernets"]) == set(cfg.modalities)
    assert all(v["seconds"] > 0 for v in report["supernets"].values())
    (pair,) = report["stage2_pairs"]
    assert pair["samples"][0] < pair["samples"][1] and pair["seconds"] > 0


def test_a_bad_fraction_is_one_line_before_any_work() -> None:
    done = budget("--config", str(SMOKE), "--fraction", "0.7")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "budget.py: error: --fraction must be in (0, 0.5] (the larger run takes twice it), found 0.7")
