"""Distributed supernet training under a real ``torchrun --nproc_per_node 2`` (gloo on CPU): the same
gradients, weights and BatchNorm statistics as one process, and a checkpoint written by two processes
that one process resumes.

Run as a script (``torchrun tests/test_ddp.py CONFIG OUT``) this file is also the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from helpers import write_avmnist  # noqa: E402

from harmonic_nas.config import load_config  # noqa: E402
from harmonic_nas.data.registry import load_dataset  # noqa: E402
from harmonic_nas.runtime import configure_threads  # noqa: E402
from harmonic_nas.cli import main  # noqa: E402
from harmonic_nas.layout import RunLayout  # noqa: E402
from harmonic_nas.supernet import SupernetTrainer  # noqa: E402
from harmonic_nas.supernet.distributed import Dist, from_env, shard_bounds  # noqa: E402

pytestmark = pytest.mark.slow  # torchrun processes, each importing torch and setting up gloo

# 96 training samples, batch 63: one step per epoch, cut into shards of 32 and 31 rows (so the weighting
# of unequal shards is exercised). The tiny supernet has dropout (0.1), SE, hswish and elastic BN.
CONFIG = """
name: ddp
dataset: {{name: avmnist, path: {data}, cache_dir: {cache}, options: {{val_size: 24}}}}
output: {{runs_dir: {runs}}}
modalities:
  image:
    type: mbv3
    stem_width: 8
    stages: [{{width: 16, stride: 2}}, {{width: 24, stride: 2, se: true, act: hswish}}]
    depths: [1, 2]
    expands: [2, 3]
    kernels: [3, 5]
    head_width: 64
supernet: {{epochs: 2, batch_size: 63, random_subnets: 1, bn_calib_samples: 64, eval_random_subnets: 1, patience: 5}}
runtime: {{threads: 1}}
"""


def _torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node 2 ARGS`` (a free port, no rendezvous server to set up)."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    data = write_avmnist(root / "avmnist")
    path = root / "ddp.yaml"
    path.write_text(CONFIG.format(data=data, cache=root / "cache", runs=root / "runs"))
    load_dataset(load_config(path).dataset, progress=False)  # prepared once, before the ranks open it
    return path


def _trainer(config: Path, dist: Dist | None = None, runs_dir: Path | None = None) -> SupernetTrainer:
    cfg = load_config(config, [f"output.runs_dir={runs_dir}"] if runs_dir else [])
    dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=False)
    return SupernetTrainer(cfg, "image", dataset, torch.device("cpu"), show_progress=False, dist=dist)


def _one_epoch(trainer: SupernetTrainer) -> dict[str, Any]:
    """Train epoch 1: one sandwich step from the seeded initial weights; its gradients are kept."""
    loss, _ = trainer.train_epoch(0)
    return {
        "loss": loss,
        "grads": {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None},
        "state": {k: v.clone() for k, v in trainer.model.state_dict().items()},
    }


def _thread_names() -> list[str]:
    """The names of this process's OS threads (Linux: gloo names its threads gloo_* and pt_gloo_*)."""
    return [task.read_text().strip() for task in Path("/proc/self/task").glob("*/comm")]


def _worker(config: Path, out: Path) -> None:
    """Under torchrun: epoch 1, its gradients and weights saved per rank, then the epoch-1 checkpoint
    (rank 0) in ``out/runs``; the job ends there as if killed before epoch 2. Last, the threads left
    after ``shutdown()``."""
    configure_threads(1)
    dist = from_env(torch.device("cpu"))
    try:
        trainer = _trainer(config, dist, out / "runs")
        result = _one_epoch(trainer)
        torch.save(result, out / f"rank{dist.rank}.pt")
        trainer.end_epoch(0, result["loss"], 0.0, 0.0)
    finally:
        dist.shutdown()
    if Path("/proc/self/task").is_dir():
        (out / f"threads{dist.rank}.json").write_text(json.dumps(_thread_names()))


@pytest.fixture(scope="module")
def two_rank_epoch(config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two-rank-epoch")
    _torchrun(__file__, str(config_path), str(out))
    return out


@pytest.fixture(scope="module")
def two_rank_cli(config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The real command under torchrun, both epochs; returns the run directory and the output."""
    runs = tmp_path_factory.mktemp("two-rank-cli")
    proc = _torchrun(
        "-m", "harmonic_nas", "train-supernet", "--config", str(config_path), "--modality", "image",
        "--keep-checkpoint", "--set", f"output.runs_dir={runs}",
    )
    return runs / "ddp", proc.stdout + proc.stderr


def test_shards_cover_a_batch_in_order() -> None:
    assert [shard_bounds(31, r, 2) for r in range(2)] == [(0, 16), (16, 31)]
    assert [shard_bounds(7, r, 3) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def test_two_processes_train_like_one(config_path: Path, two_rank_epoch: Path, tmp_path: Path) -> None:
    ranks = [torch.load(two_rank_epoch / f"rank{r}.pt", weights_only=False) for r in range(2)]
    # Every rank holds bit-identical weights, BN statistics and (all-reduced) gradients.
    for key in ranks[0]["state"]:
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key]), key
    for key in ranks[0]["grads"]:
        assert torch.equal(ranks[0]["grads"][key], ranks[1]["grads"][key]), key
    ddp = ranks[0]

    single = _one_epoch(_trainer(config_path, runs_dir=tmp_path / "f32"))
    # The same step in float64 measures how far float32 rounding alone moves each tensor.
    exact_trainer = _trainer(config_path, runs_dir=tmp_path / "f64")
    exact_trainer.model.double()
    exact_trainer.train.inputs["image"] = np.asarray(exact_trainer.train.inputs["image"], dtype=np.float64)
    exact = _one_epoch(exact_trainer)

    assert ddp["loss"] == pytest.approx(single["loss"], rel=1e-6)
    assert ddp["grads"].keys() == single["grads"].keys()
    # Tolerance. At initialisation the gradients of the early layers are small differences of large terms
    # (BatchNorm backward subtracts means), so float32 rounding alone moves them by up to ~1e-2 of their
    # size: measured, max |single - float64| / max |float64| reached 6e-3 (stages.0.0.depthwise.weight),
    # while the two-process run was within 1e-6 of float64 (its BN statistics are combined in float64).
    # So the bound is the float32 noise floor of the single-process run itself: the two runs may differ
    # by at most twice the distance of the single-process run from float64, plus 1e-5 of the tensor's
    # scale. Real mistakes are far above it: per-shard BN statistics, per-shard dropout masks or a wrong
    # shard weight change gradients by 1e-1 to 1 of their scale.
    for name, reference in exact["grads"].items():
        floor = _max_diff(single["grads"][name], reference)
        bound = 2 * floor + 1e-5 * reference.abs().max().item() + 1e-12
        assert _max_diff(ddp["grads"][name], single["grads"][name]) <= bound, name
    # BN running statistics after the step (global-batch statistics, not a shard's): the same bound.
    # (Weights after one Adam step are ~lr * sign(grad) and say little; the gradients above do.)
    for key, reference in exact["state"].items():
        if "running" in key:
            floor = _max_diff(single["state"][key], reference)
            bound = 2 * floor + 1e-5 * reference.abs().max().item() + 1e-12
            assert _max_diff(ddp["state"][key], single["state"][key]) <= bound, key
        elif "num_batches_tracked" in key:
            assert torch.equal(ddp["state"][key], single["state"][key]), key


def test_shutdown_ends_the_process_group_before_exit(two_rank_epoch: Path) -> None:
    """A group that outlives shutdown() is torn down during interpreter exit, where gloo sometimes aborts
    a finished job (SIGABRT). The trainer (its optimizer imports torch._dynamo) must not keep it alive."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("thread names are read from /proc (Linux)")
    for rank in range(2):
        names = json.loads((two_rank_epoch / f"threads{rank}.json").read_text())
        assert not [n for n in names if "gloo" in n], (rank, names)


def test_torchrun_command_writes_once_and_logs_once(two_rank_cli: tuple[Path, str]) -> None:
    folder, output = two_rank_cli
    files = RunLayout(folder).supernet("image")
    assert files.supernet.is_file() and files.checkpoint.is_file()
    metrics = json.loads(files.metrics.read_text())
    assert metrics["processes"] == 2 and metrics["epochs_run"] == 2
    assert output.count("image epoch 2/2:") == 1 and output.count("wrote ") == 1, output


def test_checkpoint_of_two_processes_resumes_in_one(
    config_path: Path, two_rank_epoch: Path, two_rank_cli: tuple[Path, str]
) -> None:
    runs = two_rank_epoch / "runs"
    code = CliRunner().invoke(
        main,
        ["train-supernet", "--config", str(config_path), "--modality", "image", "--resume", "--keep-checkpoint",
         "--set", f"output.runs_dir={runs}"],
    )
    assert code.exit_code == 0, code.output
    resumed = json.loads(RunLayout(runs / "ddp").supernet("image").metrics.read_text())
    straight = json.loads(RunLayout(two_rank_cli[0]).supernet("image").metrics.read_text())
    assert resumed["processes"] == 1 and resumed["epochs_run"] == 2
    assert resumed["fingerprint"] == straight["fingerprint"]
    # Epoch 1 is the two processes' record; epoch 2, run by one process on the weights they left, has
    # the loss the run that stayed on two processes had (float noise only: rel 1e-5).
    assert resumed["history"][0] == {**straight["history"][0], "samples_per_s": 0.0, "seconds": 0.0}
    assert resumed["history"][1]["loss"] == pytest.approx(straight["history"][1]["loss"], rel=1e-5)
    # The optimizer and the schedule continued: Adam's per-parameter step counts (2 where both steps'
    # subnets reached the parameter) are those of the run that stayed on two processes.
    def steps(run_dir: Path) -> tuple[int, dict[int, float]]:
        state = torch.load(RunLayout(run_dir).supernet("image").checkpoint, weights_only=False)
        return state["scheduler"]["last_epoch"], {k: float(v["step"]) for k, v in state["optimizer"]["state"].items()}

    assert steps(runs / "ddp") == steps(two_rank_cli[0])
    assert max(steps(two_rank_cli[0])[1].values()) == 2.0

def test_bf16_switch_trains_under_autocast(config_path: Path, tmp_path: Path) -> None:
    """supernet.bf16 (here on a CPU without bf16 units: slow, but the same code path as on a GPU)."""
    plain = _trainer(config_path, runs_dir=tmp_path / "f32")
    cfg = load_config(config_path, [f"output.runs_dir={tmp_path / 'bf16'}", "supernet.bf16=true"])
    dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=False)
    bf16 = SupernetTrainer(cfg, "image", dataset, torch.device("cpu"), show_progress=False)
    assert bf16.fingerprint() != plain.fingerprint()  # a bf16 training is another training
    seen: list[torch.dtype] = []
    hook = bf16.model.classifier.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    result = _one_epoch(bf16)
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    # bf16 keeps 8 bits of mantissa: at initialisation (loss ~ ln 10) the losses agree to ~1e-3.
    assert result["loss"] == pytest.approx(_one_epoch(plain)["loss"], rel=1e-3)
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in result["grads"].values())


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), Path(sys.argv[2]))
