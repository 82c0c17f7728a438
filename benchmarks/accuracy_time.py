"""Accuracy against time of a finished (or running) job: each supernet's max-subnet validation accuracy after
each epoch, then the search's best multimodal model after each generation, on one time axis (supernets, then
the profile step, then the search). Prints JSON (and writes --out).

    python benchmarks/accuracy_time.py --run-dir runs/avmnist-cpu [--goal 0.90]

The times are the job's own records: an epoch's ``seconds`` (supernets/<m>.metrics.json, or the epoch
checkpoint's history while it trains), the profile step's (timings.json) and each generation's (the store).
They are wall times of the machine as it was: a run that shared the machine or was stopped while it ran
records that too, so say how it ran beside the numbers. "goal_reached" is the first generation whose best
multimodal model reads at least ``--goal`` on test (val when test is not measured yet: the search measures
test for the final front only) with every model of its front reading every modality.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchjson import emit, machine

from harmonic_nas.config import load_config
from harmonic_nas.layout import RunLayout
from harmonic_nas.search.store import RunStore


def supernet_curve(layout: RunLayout, modality: str) -> list[dict[str, Any]]:
    """Per epoch: cumulative seconds and the max subnet's val accuracy (the finished metrics file, else the
    checkpoint of a training in progress)."""
    files = layout.supernet(modality)
    if files.metrics.is_file():
        history = json.loads(files.metrics.read_text(encoding="utf-8"))["history"]
    elif files.checkpoint.is_file():
        from harmonic_nas.torchfile import load_checkpoint

        history = load_checkpoint(files.checkpoint).get("history", [])
    else:
        return []
    total, curve = 0.0, []
    for epoch in history:
        total += epoch["seconds"]
        curve.append({"epoch": epoch["epoch"] + 1, "seconds": round(total, 1), "val_max": epoch["val_max"]})
    return curve


def step_seconds(layout: RunLayout, step: str) -> float:
    """The step's seconds summed over every sitting of the job (timings.json)."""
    path = layout.root / "timings.json"
    if not path.is_file():
        return 0.0
    runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
    return sum(r["steps_s"].get(step, 0.0) for r in runs)


def search_curve(run_dir: Path, modalities: set[str], start: float, goal: float) -> tuple[list[dict], int | None]:
    """Per finished generation: time since the job's start, the best multimodal model's val (and test when
    measured) and whether its whole front reads every modality; and the first generation to reach ``goal``."""
    with RunStore.open(run_dir) as store:
        curve, elapsed, reached = [], start, None
        for g in store.generations():
            if g["summary"] is None:
                continue
            elapsed += g["summary"]["seconds"]
            front = store.pareto_front(g["generation"])
            fused = [e for e in front if set(e.modalities_used) == modalities]
            best = max(fused, key=lambda e: e.val_metric, default=None)
            score = None if best is None else (best.test_metric if best.test_metric is not None else best.val_metric)
            all_read_all = bool(front) and len(fused) == len(front)
            curve.append({"generation": g["generation"], "seconds": round(elapsed, 1), "front": len(front),
                          "front_reads_every_modality": all_read_all,
                          "best_multimodal": None if best is None else
                          {"key": best.key, "val": best.val_metric, "test": best.test_metric}})
            if reached is None and score is not None and score >= goal and all_read_all:
                reached = g["generation"]
    return curve, reached


def run(run_dir: Path, goal: float) -> dict[str, Any]:
    cfg = load_config(run_dir / "config.yaml")
    layout = RunLayout(run_dir)
    supernets = {m: supernet_curve(layout, m) for m in cfg.modalities}
    supernet_s = sum(c[-1]["seconds"] for c in supernets.values() if c)
    profile_s = step_seconds(layout, "profile")
    search, reached = ([], None)
    if (run_dir / "run.sqlite").is_file():
        search, reached = search_curve(run_dir, set(cfg.modalities), supernet_s + profile_s, goal)
    return {"run_dir": str(run_dir), "goal": goal, "supernets": supernets, "supernet_seconds": round(supernet_s, 1),
            "profile_seconds": round(profile_s, 1), "search": search, "goal_reached_at_generation": reached,
            "seconds_to_goal": next((g["seconds"] for g in search if g["generation"] == reached), None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--goal", type=float, default=0.90, help="Accuracy the curve is read against.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    result = machine("accuracy_time")
    result.update(run(args.run_dir, args.goal))
    emit(result, args.out)


if __name__ == "__main__":
    main()
