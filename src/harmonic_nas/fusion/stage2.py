"""Stage 2 for one candidate: fusion search on cached backbone features, derivation, fine-tuning of the
derived network; the result the evolutionary search ranks the candidate by."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch

from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.data.val_parts import val_parts
from harmonic_nas.fusion.darts import search
from harmonic_nas.fusion.derive import derive_genotype
from harmonic_nas.fusion.discrete import FusionNet
from harmonic_nas.fusion.scoring import evaluate
from harmonic_nas.fusion.features import FeatureCache, FeatureSettings, candidate_features
from harmonic_nas.fusion.finetune import finetune
from harmonic_nas.fusion.hardware_loss import HardwareCost
from harmonic_nas.fusion.search_net import FusionSearchNet
from harmonic_nas.hardware.lut import LookupTable
from harmonic_nas.metrics import metric_name
from harmonic_nas.space.encoding import stable_hash
from harmonic_nas.space.candidate import Candidate

# (phase "search" | "finetune", epochs of the phase, the epoch's record)
Stage2Callback = Callable[[str, int, dict[str, Any]], None]


class Stage2Outcome(NamedTuple):
    result: dict[str, Any]  # JSON-able
    fusion: FusionNet  # the selected derived network (eval mode), on the device it was trained on; its genotype


def stage2(
    candidate: Candidate,
    supernets: Mapping[str, Any],
    dataset: MultimodalDataset,
    lut: LookupTable,
    fusion_cfg: FusionConfig,
    *,
    cache: FeatureCache | None = None,
    seed: int = 0,
    score_fraction: float = 0.5,
    device: torch.device | str = "cpu",
    on_epoch: Stage2Callback | None = None,
) -> Stage2Outcome:
    """Search, derive and fine-tune the fusion of ``candidate``.

    ``supernets`` maps each modality of the candidate (in its order) to its trained supernet; ``cache``
    shares backbone features between candidates (a private one is made if None). The search and fine-tune
    draw from a seed of ``seed`` and the candidate's identity, so candidates do not share one outcome. The hardware cost is
    read from ``lut`` once, before the first step. The architecture steps and the fine-tune's epoch choice
    use the val ``select`` part; ``val_metric`` is measured on the ``score`` part (``score_fraction`` of
    val) that nothing was chosen on (data/val_parts.py). ``expected`` (softmax(gamma) over all nodes, end of the
    search) and ``derived`` (the nodes the derived network runs) cost the fusion operators only; the cost
    model adds backbones, projections and head from ``fusion_layer_specs``.
    """
    device = torch.device(device)
    started = time.perf_counter()
    macro = candidate.macro
    backbones = {m: supernets[m].space.normalize(arch) for m, arch in candidate.backbones.items()}
    cost = HardwareCost(lut, fusion_cfg.operators, fusion_cfg.channels, fusion_cfg.length).to(device)
    if cache is None:
        cache = FeatureCache(FeatureSettings(length=fusion_cfg.length, seed=seed, device=device))
    features = candidate_features(cache, backbones, supernets, dataset)
    train, val = features.splits["train"].to(device), features.splits["val"].to(device)
    parts = val_parts(len(val), score_fraction, seed)
    select, scored = val.subset(parts.select), val.subset(parts.score)
    features_s = time.perf_counter() - started

    normalized = Candidate(backbones=backbones, macro=macro)
    candidate_id = stable_hash(normalized.to_json())
    run_seed = candidate_seed(seed, candidate_id)
    torch.manual_seed(run_seed)
    generator = torch.Generator().manual_seed(run_seed)
    net = FusionSearchNet.for_search(features.taps, features.channels, macro.cells, macro.nodes, fusion_cfg,
                                     dataset.num_classes).to(device)
    history = search(net, train, select, cost, fusion_cfg, dataset.task, generator,
                     _phase(on_epoch, "search", fusion_cfg.epochs))
    genotype = derive_genotype(net, features.taps)
    expected = cost.expected(net.op_probs())
    search_s = time.perf_counter() - started - features_s

    shape = (fusion_cfg.channels, fusion_cfg.length, dataset.num_classes, fusion_cfg.dropout)
    fusion = FusionNet.from_search(net, genotype, features.channels, *shape).to(device)
    tuned = finetune(fusion, train, select, fusion_cfg, dataset.task, generator,
                     _phase(on_epoch, "finetune", fusion_cfg.finetune_epochs))
    val_metric = evaluate(fusion, scored, fusion_cfg.batch_size, dataset.task)
    derived = cost.genotype_cost(genotype)
    total_s = time.perf_counter() - started
    result = {
        "candidate_id": candidate_id,
        "seed": run_seed,
        "candidate": normalized.to_json(),
        "genotype": genotype.to_json(),
        "metric": metric_name(dataset.task),
        "val_metric": val_metric,
        "val_scored_on": f"score part ({len(scored)} of {len(val)} val samples)",
        "select_metric": tuned.select_metric,
        "best_epoch": tuned.best_epoch,
        "expected": {"latency_ms": expected[0], "energy_mj": expected[1]},
        "derived": {"latency_ms": derived[0], "energy_mj": derived[1]},
        "lut": {"device": lut.header.device, "runtime": lut.header.runtime},
        "search_history": history,
        "finetune_history": tuned.history,
        "timings": {
            "features_s": features_s,
            "search_s": search_s,
            "finetune_s": total_s - features_s - search_s,
            "total_s": total_s,
            "train_samples": len(train),
            "val_select_samples": len(select),
            "val_score_samples": len(scored),
        },
    }
    return Stage2Outcome(result, fusion)


def candidate_seed(seed: int, candidate_id: str) -> int:
    """The seed of one candidate's stage 2: the run's seed and the candidate's hash (63 bits)."""
    return int(stable_hash([seed, candidate_id]), 16) >> 1


def _phase(callback: Stage2Callback | None, phase: str, epochs: int) -> Callable[[dict[str, Any]], None] | None:
    if callback is None:
        return None
    return lambda record: callback(phase, epochs, record)
