"""How many independent samples a modality's val or test accuracy rests on: the max subnet of a run's supernet
(BN recalibrated as in training) scored per group of samples that share a recording, a group being the
samples with equal ``--group`` meta (e.g. av-digits' ``audio_voice``) and equal target (one voice saying one
digit is one recording, heard under different noises). When a group is mostly all right or all wrong, the
accuracy has the standard error of the groups' count, not of the samples'.

    python benchmarks/split_recordings.py --run-dir runs/avmnist-cpu --modality audio --group audio_voice

Prints JSON per split: accuracy, samples, groups, the per-group accuracy histogram, the share of the
per-sample variance that lies between groups, the cluster-robust standard error (groups as clusters), the
effective sample count it implies, and the standard error of the difference of two such runs' accuracies.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from benchjson import emit, machine

from harmonic_nas.pipeline.common import load_data
from harmonic_nas.search.runner import run_config
from harmonic_nas.supernet.subnets import calibration_inputs, predict, prepare_subnet
from harmonic_nas.supernet.supernet_file import load_supernet

BATCH = 128


def grouped(correct: np.ndarray, keys: list[tuple]) -> dict:
    """Accuracy and its spread over groups of ``correct`` (bool per sample) sharing a key."""
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    group = np.array([index[k] for k in keys])
    n, p = len(correct), float(correct.mean())
    sizes = np.bincount(group)
    per_group = np.bincount(group, weights=correct) / sizes
    between = float(np.sum(sizes * (per_group - p) ** 2) / n / (p * (1 - p)))
    robust_var = float(np.sum(np.bincount(group, weights=correct - p) ** 2)) / n**2  # clusters = groups
    return {"accuracy": round(p, 4), "samples": n, "groups": len(sizes), "samples_per_group": [int(sizes.min()), int(sizes.max())],
            "group_accuracy_histogram_tenths": np.histogram(per_group, bins=10, range=(0, 1))[0].tolist(),
            "between_group_variance_share": round(between, 3), "standard_error": round(robust_var**0.5, 4),
            "binomial_standard_error": round((p * (1 - p) / n) ** 0.5, 4),
            "effective_samples": round(p * (1 - p) / robust_var, 1),
            "standard_error_of_a_difference": round((2 * robust_var) ** 0.5, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--modality", required=True)
    parser.add_argument("--group", required=True, help="the split meta key that names a sample's source, e.g. audio_voice")
    parser.add_argument("--splits", nargs="+", default=["val", "test"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = machine("split_recordings") | {"run_dir": str(args.run_dir), "modality": args.modality, "group": args.group}
    cfg = run_config(args.run_dir)
    data = load_data(cfg, None, progress=False)
    train_cfg = cfg.supernet.for_modality(args.modality)
    calib = calibration_inputs(data.split("train").inputs[args.modality], train_cfg.bn_calib_samples, cfg.runtime.seed)
    supernet, _ = load_supernet(cfg.layout.supernet(args.modality).supernet)
    device = torch.device("cpu")
    channels_last = train_cfg.channels_last and len(data.modalities[args.modality].shape) == 3
    model = prepare_subnet(supernet, supernet.space.max(), calib, batch_size=BATCH, device=device, channels_last=channels_last)
    for name in args.splits:
        split = data.split(name)
        targets = np.asarray(split.targets)
        correct = predict(model, split.inputs[args.modality], BATCH, device, channels_last).argmax(1).numpy() == targets
        result[name] = grouped(correct, list(zip(np.asarray(split.meta[args.group]).tolist(), targets.tolist())))
    emit(result, args.out)


if __name__ == "__main__":
    main()
