"""Expected wall time of a config's job on this machine (or GPU), from its per-unit costs measured here in
minutes with the job's own code. Prints JSON.

    python benchmarks/budget.py --config configs/avmnist-cpu.yaml [--device cuda] [--candidates 3]

Measured, on the config's prepared dataset (prepared first if need be):
* supernets: training steps of each modality's supernet with the config's recipe (batch, threads, the max
  subnet alone and the sandwich), and one validation of the max subnet (each epoch's, and the final table's
  max, min and random subnets);
* stage 1: evaluations of random backbones as a search worker runs them (1 thread, BN recalibration, the
  val score part);
* stage 2: whole stage-2 runs of random candidates on a fraction f and 2f of train and val, extrapolated
  linearly to the full splits (features and epochs grow with the samples; BN recalibration does not).
Counted: epochs x steps per epoch (early stopping can only shorten them); population x modalities x
generations backbones (an upper bound: an arch already in the store is not evaluated again) and
ceil(population x top_fraction) x generations pairs, shared by runtime.workers workers. Not counted: prepare,
profile, test metrics, export (about a minute each on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from pathlib import Path
from typing import Any

from benchjson import emit, machine
from fusion_epoch import lut as synthetic_lut

import numpy as np
import torch

from harmonic_nas.config import ExperimentConfig
from harmonic_nas.config.io import load_config
from harmonic_nas.data import ArrayDataset, MultimodalDataset
from harmonic_nas.data.batches import iterate_batches
from harmonic_nas.data.registry import load_dataset
from harmonic_nas.errors import UserError
from harmonic_nas.fusion.features import FeatureCache
from harmonic_nas.fusion.stage2 import stage2
from harmonic_nas.runtime import configure_threads, resolve_device
from harmonic_nas.search.evaluator import Evaluator, EvaluatorSpec
from harmonic_nas.space.candidate import CandidateSpace
from harmonic_nas.supernet.trainer import SupernetTrainer


def timed(fn: Any, device: torch.device) -> float:
    """Wall seconds of ``fn()``, the device's queued work included."""
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def supernet(cfg: ExperimentConfig, dataset: MultimodalDataset, modality: str, device: torch.device,
             steps: int) -> tuple[dict[str, Any], torch.nn.Module]:
    """Median step time of the max subnet alone and of the sandwich, one max-subnet validation, and the
    seconds of the configured epochs they add up to."""
    trainer = SupernetTrainer(cfg, modality, dataset, device, show_progress=False)
    tc = trainer.train_cfg
    order = np.random.default_rng(cfg.runtime.seed).permutation(len(trainer.train))
    batches = iter(iterate_batches(trainer.train.inputs[modality], trainer.train.targets, tc.batch_size, device,
                                   order=order, channels_last=trainer.channels_last, drop_last=True))

    def step(s: int, archs: Any) -> None:
        """One training step as an epoch takes it: the next shuffled batch read, masked, trained on."""
        x, y = next(batches)
        if trainer.augments:
            x = trainer.augment(x, 0, s, None)
        trainer.train_step(x, y, archs(s))

    trainer.model.train()
    step_s = {}
    for kind, archs in (("max_alone", lambda s: [trainer.space.max()]),
                        ("sandwich", lambda s: trainer.sandwich(1_000_000, s))):
        times = [timed(lambda: step(s, archs), device) for s in range(steps + 2)][2:]
        step_s[kind] = statistics.median(times)
    val_s = timed(lambda: trainer.evaluate(trainer.space.max()), device)
    per_epoch = trainer.steps_per_epoch
    total_steps, max_steps = tc.epochs * per_epoch, round(tc.max_first_epochs * per_epoch)
    validations = tc.epochs + 2 + tc.eval_random_subnets  # each epoch's, then the final table's subnets
    seconds = max_steps * step_s["max_alone"] + (total_steps - max_steps) * step_s["sandwich"] + validations * val_s
    return ({"batch_size": tc.batch_size, "epochs": tc.epochs, "steps_per_epoch": per_epoch,
             "samples_per_s": {k: round(tc.batch_size / v, 1) for k, v in step_s.items()},
             "validation_s": round(val_s, 1), "seconds": round(seconds, 1)},
            trainer.model.eval())


def backbone_seconds(evaluator: Evaluator, space: CandidateSpace, modality: str, count: int) -> float:
    """Mean seconds of a stage-1 evaluation of a random backbone, scored as a search worker scores it."""
    rng = random.Random(1)
    archs = [space.backbones[modality].sample(rng) for _ in range(count + 1)]  # the first one warms up
    times = [timed(lambda: evaluator.subnet_metric(modality, a, evaluator.val_score), evaluator.device) for a in archs]
    return statistics.mean(times[1:])


def fraction_of(dataset: MultimodalDataset, fraction: float, seed: int) -> ArrayDataset:
    """``fraction`` of train and val (seeded rows), for a stage-2 run that costs that fraction."""
    splits = {}
    for name in ("train", "val"):
        data = dataset.split(name)
        size = max(2, round(fraction * len(data)))
        rows = np.sort(np.random.default_rng(seed).choice(len(data), size, replace=False))
        splits[name] = data.subset(rows)
    return ArrayDataset(dataset.name, dataset.modalities, dataset.num_classes, dataset.task, splits,
                        dataset.class_names)


def samples(dataset: MultimodalDataset) -> int:
    """Train + val samples: what a stage-2 run's time grows with."""
    return len(dataset.split("train")) + len(dataset.split("val"))


def pair_seconds(evaluator: Evaluator, space: CandidateSpace, count: int, fraction: float) -> list[dict[str, Any]]:
    """Stage 2 of random candidates on ``fraction`` and twice it of the data, extrapolated to all of it; run with
    the worker's settings, each on a fresh feature cache."""
    cfg, rng = evaluator.cfg, random.Random(2)
    parts = [fraction_of(evaluator.dataset, f, cfg.runtime.seed) for f in (fraction, 2 * fraction)]
    (n1, n2), full = [samples(part) for part in parts], samples(evaluator.dataset)
    out = []
    for _ in range(count):
        candidate = space.sample(rng)
        s1, s2 = (timed(lambda: stage2(candidate, evaluator.supernets, part, evaluator.lut, cfg.fusion,
                                       cache=FeatureCache(evaluator.settings, cfg.runtime.feature_cache_mb),
                                       seed=cfg.runtime.seed, score_fraction=cfg.search.val_score_fraction,
                                       device=evaluator.device), evaluator.device)
                  for part in parts)
        per_sample = (s2 - s1) / (n2 - n1)
        out.append({"macro": f"{candidate.macro.cells}x{candidate.macro.nodes}",
                    "measured_s": [round(s1, 1), round(s2, 1)], "samples": [n1, n2],
                    "seconds": round(s1 + per_sample * (full - n1), 1)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--device", default=None, help="default: the config's runtime.device")
    parser.add_argument("--steps", type=int, default=5, help="timed supernet steps of each kind")
    parser.add_argument("--backbones", type=int, default=3, help="stage-1 evaluations timed per modality")
    parser.add_argument("--candidates", type=int, default=2, help="stage-2 candidates timed")
    parser.add_argument("--fraction", type=float, default=None,
                        help="data share of the smaller stage-2 run (default: 2000 samples of train + val, 5-25 %%)")
    args = parser.parse_args()
    if args.fraction is not None and not 0 < args.fraction <= 0.5:
        parser.error(f"--fraction must be in (0, 0.5] (the larger run takes twice it), found {args.fraction}")
    try:
        cfg = load_config(args.config, args.overrides)
        device = resolve_device(args.device or cfg.runtime.device)
        dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=False)
    except UserError as error:
        parser.error(str(error))
    report = machine("budget")
    fraction = args.fraction or min(0.25, max(0.05, 2000 / samples(dataset)))  # enough batches for a straight line

    configure_threads(cfg.runtime.threads)  # as train-supernet runs
    supernets, trained = {}, {}
    for m in cfg.modalities:
        supernets[m], trained[m] = supernet(cfg, dataset, m, device, args.steps)
    # a search worker as the local pool builds it (1 thread); the LUT only prices the fusion operators
    evaluator = Evaluator(EvaluatorSpec(cfg.model_dump(mode="json"), trained, synthetic_lut(cfg.fusion),
                                        device=str(device), threads=1, dataset=dataset))
    space, s, workers = CandidateSpace.from_config(cfg), cfg.search, cfg.runtime.workers
    backbone_s = {m: backbone_seconds(evaluator, space, m, args.backbones) for m in cfg.modalities}
    stage1 = s.population * s.generations * sum(backbone_s.values()) / workers
    pairs = pair_seconds(evaluator, space, args.candidates, fraction)
    pair_count = math.ceil(s.population * s.top_fraction) * s.generations
    stage2_total = pair_count * statistics.mean(p["seconds"] for p in pairs) / workers
    supernet_total = sum(v["seconds"] for v in supernets.values())
    report.update({
        "config": str(args.config), "overrides": args.overrides, "device": str(device),
        "train_threads": cfg.runtime.threads, "workers": workers, "worker_threads": 1,
        "supernets": supernets, "backbone_evaluation_s": {m: round(v, 2) for m, v in backbone_s.items()},
        "stage2_fraction": fraction, "stage2_pairs": pairs,
        "counts": {"backbones_at_most": s.population * s.generations * len(cfg.modalities), "pairs": pair_count},
        "expected_s": {"supernets": round(supernet_total), "stage1": round(stage1), "stage2": round(stage2_total),
                       "total": round(supernet_total + stage1 + stage2_total)},
        "expected_h": round((supernet_total + stage1 + stage2_total) / 3600, 2),
    })
    emit(report, None)


if __name__ == "__main__":
    main()
