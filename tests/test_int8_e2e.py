"""INT8 as the deployment runtime of a whole job: the smoke run again with hardware.runtime
onnxruntime-int8 (its trained supernets reused, so the job profiles an INT8 LUT, searches with its costs,
exports and reports), and a search refusing a LUT of another runtime in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import SMOKE, cli

from harmonic_nas.config import load_config
from harmonic_nas.costing.cost import CostModel
from harmonic_nas.hardware.int8_recipe import LAYER_RECIPE
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.search.store import RunStore

INT8 = "onnxruntime-int8"
SHAPES, CLASSES = {"image": (1, 28, 28), "audio": (1, 32, 32)}, 10  # configs/smoke.yaml's av-digits

# The session fixture smoke_run (conftest) runs the whole smoke job first (about a minute, quiet machine).
pytestmark = [pytest.mark.timeout(1200), pytest.mark.slow]


def test_a_search_costed_by_an_int8_lut_runs_end_to_end(smoke_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "int8"
    shutil.copytree(smoke_run / "supernets", run_dir / "supernets")  # the smallest budget: no training
    done = cli("run", "--config", str(SMOKE), "--out", str(run_dir), "--set", f"hardware.runtime={INT8}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "supernet already trained" in done.stderr
    table = LookupTable.load(run_dir / "lut" / "cpu.json")
    assert table.header.runtime == INT8 and table.header.layer_recipe == LAYER_RECIPE
    cfg = load_config(SMOKE, [f"hardware.runtime={INT8}", f"output.run_dir={run_dir}"])
    costs = CostModel(table, cfg, SHAPES, CLASSES)
    with RunStore.open(run_dir) as store:
        front = store.pareto_front()
    assert front
    for e in front:  # every stored cost is the INT8 table's
        assert e.latency_ms == pytest.approx(costs.cost(e.candidate, e.genotype).latency_ms, rel=1e-9)
        manifest = json.loads((run_dir / "models" / e.key / "manifest.json").read_text())
        (entry,) = manifest["exports"]
        assert entry["format"] == "onnx" and entry["measured"]["runtime"] == INT8


def test_an_int8_search_refuses_a_torch_lut_in_one_line(smoke_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "bad"
    shutil.copytree(smoke_run / "supernets", run_dir / "supernets")
    done = cli("search", "--config", str(SMOKE), "--set", f"hardware.lut={smoke_run / 'lut' / 'cpu.json'}",
               "--set", f"hardware.runtime={INT8}", "--set", f"output.run_dir={run_dir}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and f"runtime='torch' (config: '{INT8}')" in line
