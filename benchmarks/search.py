"""Search benchmark: wall time and CPU use of the demo search, hypervolume of the full method against
random search at equal evaluations over seeds, and the paper's Figure 4 ablation (FB+FF, FB+SF, SB+SF,
SB+SF+HW, random) on every seed, with mean and spread. Prints JSON.

Needs a run directory with trained supernets and a LUT (``make demo`` leaves runs/demo). Every search
runs in its own folder under --work (the supernets and LUT are linked in), so the demo run is untouched:

    python benchmarks/search.py --config configs/demo.yaml --run-dir runs/demo --seeds 0 1 2 [--ablation]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchjson import emit, machine

from harmonic_nas.config import load_config
from harmonic_nas.search.runner import SearchRun, make_executor, run_search
from harmonic_nas.search.variants import VARIANTS, Variant


def prepare(work: Path, run_dir: Path, seed: int) -> Path:
    """A run folder for one seed that shares the trained supernets and LUT of ``run_dir``."""
    folder = work / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("supernets", "lut"):
        link = folder / part
        if not link.exists():
            link.symlink_to((run_dir / part).resolve())
    return folder


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def search_once(config: Path, folder: Path, seed: int, variant: str, workers: int) -> dict[str, Any]:
    cfg = load_config(config, [f"output.run_dir={folder}", f"runtime.seed={seed}"])
    run = SearchRun.load(cfg, "cpu", threads=1)
    executor = make_executor("local", run.spec, workers, None)
    start, cpu = time.perf_counter(), cpu_seconds()
    try:
        store, front = run_search(run, Variant.named(variant), executor, force=True)
    finally:
        executor.close()
    wall = time.perf_counter() - start
    used = cpu_seconds() - cpu
    with store:
        summaries = [g["summary"] for g in store.generations() if g["summary"]]
        candidates = store.evaluations("candidate")
        best = max(front, key=lambda e: e.val_metric)
        return {
            "variant": variant, "seed": seed, "wall_s": round(wall, 1),
            "cpu_utilisation": round(used / (wall * (os.cpu_count() or 1)), 3),
            "stage2_evaluations": len(candidates), "backbone_evaluations": len(store.evaluations("backbone")),
            "hypervolume": summaries[-1]["hypervolume"], "front_size": len(front),
            "best": model(best),
            "front": [model(e) for e in front],
            "all_front_models_multimodal": all(len(e.modalities_used) >= 2 for e in front),
            "operators": dict(Counter(n.op for e in front if e.genotype and not e.genotype.is_dense
                                      for c in e.genotype.cells for n in c.nodes)),
        }


def model(e: Any) -> dict[str, Any]:
    return {"id": e.key[:8], "val": e.val_metric, "test": e.test_metric, "latency_ms": e.latency_ms,
            "energy_mj": e.energy_mj, "reads": e.modalities_used}


def ablation(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fastest SB+SF+HW front model within 0.5 points of FB+FF's test accuracy, and its speed-up."""
    ff = runs["fb-ff"]["best"]
    matching = [m for m in runs["sb-sf-hw"]["front"] if m["test"] >= ff["test"] - 0.005]
    best = max(runs["sb-sf-hw"]["front"], key=lambda m: m["test"])
    out = {"fb_ff": ff, "sb_sf_hw_best_test": best, "gap_points_test": round(100 * (ff["test"] - best["test"]), 2),
           "best_latency_ratio": round(ff["latency_ms"] / best["latency_ms"], 2)}
    if not matching:
        return {"reached_fb_ff_accuracy": False, **out}
    fastest = min(matching, key=lambda m: m["latency_ms"])
    return {"reached_fb_ff_accuracy": True, **out, "sb_sf_hw": fastest,
            "latency_ratio": round(ff["latency_ms"] / fastest["latency_ms"], 2),
            "energy_ratio": round(ff["energy_mj"] / fastest["energy_mj"], 2)}


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4),
            "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant, over seeds: the best-accuracy model's val/test/latency/energy, and the hypervolume."""
    out: dict[str, Any] = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        if mine:
            out[variant] = {k: spread([r["best"][k] for r in mine]) for k in ("val", "test", "latency_ms", "energy_mj")}
            out[variant]["hypervolume"] = spread([r["hypervolume"] for r in mine])
            out[variant]["seeds"] = [r["seed"] for r in mine]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--work", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ablation", action="store_true", help="Also run fb-ff, fb-sf and sb-sf on every seed.")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    results: dict[str, Any] = machine("search")
    results.update({"config": str(args.config), "runs": []})
    for seed in args.seeds:
        folder = prepare(args.work, args.run_dir, seed)
        for variant in ("sb-sf-hw", "random"):
            results["runs"].append(search_once(args.config, folder, seed, variant, args.workers))
    pairs = [(a, b) for a in results["runs"] for b in results["runs"]
             if a["variant"] == "sb-sf-hw" and b["variant"] == "random" and a["seed"] == b["seed"]]
    results["hypervolume"] = {
        "sb_sf_hw": [a["hypervolume"] for a, _ in pairs], "random": [b["hypervolume"] for _, b in pairs],
        "full_beats_random_on_every_seed": all(a["hypervolume"] > b["hypervolume"] for a, b in pairs),
    }
    if args.ablation:
        results["ablation"] = {}
        for seed in args.seeds:
            folder = prepare(args.work, args.run_dir, seed)
            by_variant = {r["variant"]: r for r in results["runs"] if r["seed"] == seed}
            for variant in ("fb-ff", "fb-sf", "sb-sf"):
                by_variant[variant] = search_once(args.config, folder, seed, variant, args.workers)
                results["runs"].append(by_variant[variant])
            results["ablation"][f"seed{seed}"] = ablation(by_variant)
    results["summary"] = summary(results["runs"])
    emit(results, None)


if __name__ == "__main__":
    main()
