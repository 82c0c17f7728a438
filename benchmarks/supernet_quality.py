"""Is a supernet worth searching? For each modality of a config, val accuracy against training time of

(a) the supernet's max, min and 3 seeded random subnets after each epoch, BatchNorm recalibrated as the
    search scores them;
(b) the same max architecture trained standalone (plain cross-entropy, same optimiser, batch and learning
    rate, cosine over its own steps) for the same training time, scored at the same times;
(c) the linear baseline (logistic regression, ``harmonic-nas data baseline``).

Training time counts the training steps and the channel sorting, not the evaluations. ``--clock cpu``
(process CPU time) keeps the comparison fair on a busy machine; ``wall`` is what a user waits on a quiet
one. Prints JSON (and writes it to --out, with a PNG curve beside it).

    python benchmarks/supernet_quality.py --config configs/demo.yaml [--modality image] [--set k=v ...]
        [--clock cpu|wall] [--threads 2] [--out results/supernet-quality.json]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchjson import emit, machine

import numpy as np
import torch

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config import load_config
from harmonic_nas.data.baseline import linear_baseline
from harmonic_nas.data.batches import iterate_batches
from harmonic_nas.data.registry import load_dataset
from harmonic_nas.metrics import score, task_loss
from harmonic_nas.runtime import configure_threads
from harmonic_nas.supernet import SupernetTrainer
from harmonic_nas.supernet.subnets import predict

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def subnets(trainer: SupernetTrainer, count: int = 3) -> dict[str, dict[str, Any]]:
    rng = random.Random(12345)
    out = {"max": trainer.space.max(), "min": trainer.space.min()}
    out.update({f"random-{i + 1}": trainer.space.sample(rng) for i in range(count)})
    return out


def train_supernet(trainer: SupernetTrainer, clock: Any) -> list[dict[str, Any]]:
    """Every epoch of the config: its training time, then every subnet's val accuracy."""
    archs = subnets(trainer)
    points, spent = [], 0.0
    every = trainer.train_cfg.sort_channels_every
    for epoch in range(trainer.train_cfg.epochs):
        start = clock()
        loss, _ = trainer.train_epoch(epoch)
        if every and (epoch + 1) % every == 0:
            trainer.model.sort_channels(trainer.optimizer)
        spent += clock() - start
        val = {name: trainer.evaluate(arch) for name, arch in archs.items()}
        points.append({"epoch": epoch + 1, "train_s": round(spent, 2), "loss": round(loss, 4), **val})
        print(f"  supernet epoch {epoch + 1}: {spent:.0f} s, " + ", ".join(f"{k} {v:.3f}" for k, v in val.items()),
              file=sys.stderr)
    return points


def train_standalone(trainer: SupernetTrainer, budget_s: float, checkpoints: list[float], clock: Any) -> list[dict[str, Any]]:
    """The max architecture as a plain network, fresh weights, for ``budget_s`` of training time."""
    cfg, modality = trainer.train_cfg, trainer.modality
    torch.manual_seed(trainer.seed)
    fresh = build_supernet(trainer.space_cfg, trainer.spec.shape, trainer.dataset.num_classes)
    model = fresh.extract(trainer.space.max()).to(trainer.device)
    if trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    inputs, targets = trainer.train.inputs[modality], trainer.train.targets
    task = trainer.dataset.task

    def batches(epoch: int) -> Any:
        order = np.random.default_rng([trainer.seed, 7, epoch + 1]).permutation(len(targets))
        return iterate_batches(inputs, targets, cfg.batch_size, trainer.device, order=order,
                               channels_last=trainer.channels_last, drop_last=True)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        task_loss(model(x).logits.float(), y, task).backward()
        optimizer.step()

    model.train()
    probe, start = 0, clock()
    for x, y in batches(-1):  # the step time, to size the cosine schedule to the budget
        step(x, y)
        probe += 1
        if probe == 5:
            break
    per_step = (clock() - start) / probe
    total = max(1, int(budget_s / per_step))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=cfg.min_lr)
    points, spent, done, epoch = [], per_step * probe, 0, 0
    pending = list(checkpoints)
    while pending:
        for x, y in batches(epoch):
            start = clock()
            model.train()
            step(x, y)
            schedule.step()
            spent += clock() - start
            done += 1
            if spent >= pending[0] or done >= total:
                val = score(predict(model, trainer.val.inputs[modality], 128, trainer.device, trainer.channels_last),
                            torch.from_numpy(np.array(trainer.val.targets)), task)
                points.append({"train_s": round(spent, 2), "steps": done, "max": val})
                print(f"  standalone: {spent:.0f} s, {done} steps, max {val:.3f}", file=sys.stderr)
                pending.pop(0)
                if not pending or done >= total:
                    return points
        epoch += 1
    return points


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modalities = list(results["modalities"])
    fig, axes = plt.subplots(1, len(modalities), figsize=(5.5 * len(modalities), 4), squeeze=False)
    for ax, m in zip(axes[0], modalities):
        r = results["modalities"][m]
        t = [p["train_s"] for p in r["supernet"]]
        ax.plot(t, [p["max"] for p in r["supernet"]], "o-", color="#c0392b", label="supernet max")
        ax.plot(t, [p["min"] for p in r["supernet"]], "o-", color="#2471a3", label="supernet min")
        randoms = [np.mean([v for k, v in p.items() if k.startswith("random")]) for p in r["supernet"]]
        ax.plot(t, randoms, "o--", color="#7d3c98", label="supernet random (mean of 3)")
        if r["standalone"]:
            ax.plot([p["train_s"] for p in r["standalone"]], [p["max"] for p in r["standalone"]], "s-", color="#555",
                    label="max arch standalone")
        ax.axhline(r["linear_val"], color="#999", linestyle=":", label="linear baseline")
        ax.set_title(f"{m}: {results['label']}", fontsize=10)
        ax.set_xlabel(f"training time ({results['clock']}, s)")
        ax.set_ylabel("val accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--modality", action="append", help="default: every modality of the config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", default="", help="name of the recipe in the JSON and the plot")
    parser.add_argument("--no-standalone", dest="standalone", action="store_false",
                        help="skip (b), e.g. to screen recipes quickly")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    configure_threads(args.threads)
    clock = CLOCKS[args.clock]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(args.config, [*args.overrides, f"output.run_dir={tmp}"])
        dataset = load_dataset(cfg.dataset, seed=cfg.runtime.seed, progress=False)
        linear = linear_baseline(dataset)
        results: dict[str, Any] = machine("supernet_quality")
        results.update({
            "config": args.config, "overrides": args.overrides, "label": args.label or " ".join(args.overrides) or "config",
            "clock": args.clock, "threads": args.threads, "supernet": cfg.supernet.model_dump(mode="json"),
            "train_samples": len(dataset.split("train")), "modalities": {},
        })
        for m in args.modality or list(cfg.modalities):
            print(f"{m}:", file=sys.stderr)
            trainer = SupernetTrainer(cfg, m, dataset, torch.device("cpu"), show_progress=False)
            curve = train_supernet(trainer, clock)
            budget = curve[-1]["train_s"]
            checkpoints = [p["train_s"] for p in curve]
            standalone = train_standalone(trainer, budget, checkpoints, clock) if args.standalone else []
            best_random = max(v for k, v in curve[-1].items() if k.startswith("random"))
            results["modalities"][m] = {
                "supernet": curve, "standalone": standalone, "linear_val": linear[m]["val"],
                "summary": {
                    "max": curve[-1]["max"], "min": curve[-1]["min"], "best_random": best_random,
                    "standalone_max": standalone[-1]["max"] if standalone else None, "linear": linear[m]["val"],
                    "max_minus_linear_points": round(100 * (curve[-1]["max"] - linear[m]["val"]), 1),
                    "min_minus_linear_points": round(100 * (curve[-1]["min"] - linear[m]["val"]), 1),
                    "standalone_minus_max_points": round(100 * (standalone[-1]["max"] - curve[-1]["max"]), 1)
                    if standalone else None,
                    "train_s": budget,
                },
            }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    emit(results, args.out)
    if args.out:
        plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
