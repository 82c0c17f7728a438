"""What a command prints into a log (a pipe, a file, CI): its lines in the order things happened, progress
as plain lines among them, and no source location (``file.py:NN``) on any line."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from helpers import CLI, ROOT, write_avmnist

# 120 training samples in batches of 50: two steps per epoch, two epochs; one image modality.
CONFIG = """
name: logs
dataset: {{name: avmnist, path: {data}, cache_dir: {cache}, options: {{val_size: 20}}}}
output: {{runs_dir: {runs}}}
modalities:
  image:
    type: mbv3
    stem_width: 8
    stages: [{{width: 16, stride: 2}}]
    depths: [1]
    expands: [2]
    kernels: [3]
    head_width: 16
supernet: {{epochs: 2, batch_size: 50, random_subnets: 1, bn_calib_samples: 40, eval_random_subnets: 1}}
runtime: {{threads: 1}}
"""


def index_of(lines: list[str], text: str) -> int:
    found = [i for i, line in enumerate(lines) if text in line]
    assert found, f"no line with {text!r} in:\n" + "\n".join(lines)
    return found[0]


def test_training_into_a_pipe_logs_progress_lines_in_order_without_locations(tmp_path: Path) -> None:
    data = write_avmnist(tmp_path / "avmnist")
    config = tmp_path / "logs.yaml"
    config.write_text(CONFIG.format(data=data, cache=tmp_path / "cache", runs=tmp_path / "runs"))
    proc = subprocess.run([*CLI, "train-supernet", "--config", str(config)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if re.search(r"\w+\.py:\d+", line)], proc.stderr
    # each bar's last line comes when it ends, before what happens next (rich printed every bar at the end)
    order = ["supernet image 4/4 (100%)", "image epoch 2/2 trained: validating the max subnet",
             "image epoch 2/2: loss", "scoring image subnets 3/3 (100%)", "image: wrote"]
    positions = [index_of(lines, text) for text in order]
    assert positions == sorted(positions), "\n".join(lines)
    assert index_of(lines, "image epoch 1/2: loss") < positions[0]


def test_a_quiet_unfinished_task_logs_again_so_a_log_never_looks_hung() -> None:
    """One stage-2 evaluation takes 15-25 s without advancing its bar: the line comes again each interval."""
    import io
    import time

    from rich.console import Console

    from harmonic_nas.console import LineProgress

    out = io.StringIO()
    with LineProgress(interval=0.2, console=Console(file=out, width=200, log_path=False)) as progress:
        task = progress.add_task("stage 2", total=2)
        progress.advance(task)
        time.sleep(1.0)  # no update meanwhile: only the heartbeat can write
        progress.advance(task)
    lines = [line for line in out.getvalue().splitlines() if "stage 2" in line]
    assert len([line for line in lines if "stage 2 1/2" in line]) >= 3, lines
    assert "stage 2 2/2 (100%)" in lines[-1] and len(lines) < 10, lines
