"""The paper's Appendix A on this run: at fixed backbones and macro, is the searched operator mix better
than any single operator used at every node? Stage 2 runs once with every configured operator (the
searched mix, at the config's exponents) and once per operator with that operator alone (the search
then only chooses inputs), same epochs, same seeds. Prints JSON: test and val (score part) accuracy,
latency and energy of each derived network, mean and spread over the seeds.

Needs a run directory with trained supernets and a LUT (``make demo`` leaves runs/demo):

    python benchmarks/appendix_a.py --config configs/demo.yaml --run-dir runs/demo --seeds 0 1 2
        [--macro 2x2] [--backbones max]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchjson import emit, machine

from harmonic_nas.config import load_config
from harmonic_nas.fusion.scoring import evaluate
from harmonic_nas.fusion.features import candidate_features
from harmonic_nas.fusion.stage2 import stage2
from harmonic_nas.search.evaluator import Evaluator
from harmonic_nas.search.runner import SearchRun
from harmonic_nas.space import Candidate, Macro


def one(evaluator: Evaluator, candidate: Candidate, operators: list[str], seed: int) -> dict[str, Any]:
    cfg = evaluator.cfg
    fusion_cfg = cfg.fusion.model_copy(update={"operators": operators})
    outcome = stage2(candidate, evaluator.supernets, evaluator.dataset, evaluator.lut, fusion_cfg,
                     cache=evaluator.cache, seed=seed, score_fraction=cfg.search.val_score_fraction)
    result, net = outcome.result, outcome.fusion
    order = net.genotype.tap_modalities
    test = candidate_features(evaluator.cache, {m: candidate.backbones[m] for m in order}, evaluator.supernets,
                              evaluator.dataset, splits=("test",)).splits["test"]
    cost = evaluator.costs.cost(candidate, net.genotype)
    return {"operators": operators, "seed": seed, "val": result["val_metric"],
            "test": evaluate(net, test, fusion_cfg.batch_size, evaluator.dataset.task),
            "latency_ms": cost.latency_ms, "energy_mj": cost.energy_mj,
            "ops": [n["op"] for c in result["genotype"]["cells"] for n in c["nodes"]]}


def spread(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4), "max": round(max(values), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/demo.yaml"))
    parser.add_argument("--run-dir", type=Path, default=Path("runs/demo"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--macro", default=None, help="CxD (default: the largest of the config)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cfg = load_config(args.config, [f"output.run_dir={args.run_dir}"])
    run = SearchRun.load(cfg, "cpu", threads=args.threads)
    evaluator = Evaluator(run.spec)
    cells, nodes = (max(cfg.fusion.cells), max(cfg.fusion.nodes)) if args.macro is None else map(int, args.macro.split("x"))
    candidate = Candidate(backbones={m: s.space.max() for m, s in evaluator.supernets.items()},
                          macro=Macro(cells=cells, nodes=nodes))
    variants = [list(cfg.fusion.operators)] + [[op] for op in cfg.fusion.operators]
    result = machine("appendix_a")  # the load before: the evaluations below take minutes
    rows = []
    started = time.perf_counter()
    for seed in args.seeds:
        for operators in variants:
            rows.append(one(evaluator, candidate, operators, seed))
            print(json.dumps(rows[-1]), file=sys.stderr)
    table = {}
    for operators in variants:
        mine = [r for r in rows if r["operators"] == operators]
        name = "searched mix" if len(operators) > 1 else operators[0]
        table[name] = {k: spread([r[k] for r in mine]) for k in ("test", "val", "latency_ms", "energy_mj")}
    mix = table["searched mix"]
    singles = {k: v for k, v in table.items() if k != "searched mix"}
    best_single = max(singles, key=lambda k: singles[k]["test"]["mean"])
    result.update({
        "config": str(args.config),
        "macro": f"{cells}x{nodes}", "backbones": "max", "seeds": args.seeds, "table": table,
        "best_single": best_single,
        "mix_minus_best_single_test_points": round(100 * (mix["test"]["mean"] - singles[best_single]["test"]["mean"]), 2),
        "mix_latency_over_best_single": round(mix["latency_ms"]["mean"] / singles[best_single]["latency_ms"]["mean"], 3),
        "wall_s": round(time.perf_counter() - started, 1), "rows": rows,
    })
    emit(result, None)


if __name__ == "__main__":
    main()
