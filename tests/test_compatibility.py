"""What earlier releases wrote still reads, to the same identities: the typed values of the search space
hash, sample, mutate and cross over exactly as the plain dicts did, and a run store whose rows were written
as plain JSON opens into typed evaluations with the keys they were stored under."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

from harmonic_nas.config import load_config
from harmonic_nas.layout import StoreLayout
from harmonic_nas.search.store import RunStore
from harmonic_nas.space import CandidateSpace, Genotype, stable_hash

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"
# Computed with the dict-based space of the release before typed values (same config, same seed, same calls).
GENETICS = ["dce8c3f7eed16960", "57b0f61c6595fb7b", "ef8510300e5bd56b", "760eb449ed47e6b4",
            "aefa40670d331db7", "a3f4f1b129d10dbf", "e4d8ccbf2988438a", "018ffef58398988d"]
LAST = {"backbones": {"image": {"ks": [7, 7, 3, 3, 7, 3, 3, 3, 5, 5, 7, 3],
                                "e": [3.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.0, 3.0, 4.0, 3.0], "d": [2, 2, 3]},
                      "audio": {"ks": [7, 3, 3, 3, 7, 7, 5, 5, 3, 3, 3, 3],
                                "e": [4.0, 4.0, 3.0, 3.0, 3.0, 6.0, 4.0, 4.0, 4.0, 6.0, 3.0, 3.0], "d": [2, 4, 2]}},
        "macro": {"cells": 1, "nodes": 1}}


def test_sampling_and_genetics_give_the_identities_of_the_dict_release() -> None:
    space = CandidateSpace.from_config(load_config(DEMO))
    rng = random.Random(14)
    a, b = space.normalize(space.sample(rng)), space.normalize(space.sample(rng))
    hashes = [space.candidate_hash(a), space.candidate_hash(b)]
    for _ in range(3):
        a, b = space.crossover(a, b, rng)
        a = space.normalize(space.mutate(a, rng, 0.4))
        hashes += [space.candidate_hash(a), space.candidate_hash(b)]
    assert hashes == GENETICS
    assert json.dumps(a.to_json()) == json.dumps(LAST)  # the very JSON (key order, 3.0 as 3.0) stores hold
    image = space.backbones["image"]
    assert image.arch_hash(image.sample(random.Random(1))) == "ce9b0f32857cb80b"


def test_a_store_written_as_plain_json_reads_into_typed_values(tmp_path: Path) -> None:
    cfg = load_config(DEMO, [f"output.run_dir={tmp_path}"])
    genotype = {"taps": [["image", 0], ["image", 1], ["audio", 2]],
                "cells": [{"inputs": [1, 2], "nodes": [{"inputs": [0, 1], "op": "concat_fc"}]}]}
    key = stable_hash(LAST)
    with RunStore.create(tmp_path, {"config": cfg.model_dump(mode="json"), "variant": "sb-sf-hw", "seed": 0}):
        pass
    result = {"metric": "accuracy", "val_metric": 0.75, "latency_ms": 3.0, "energy_mj": 9.0, "genotype": genotype}
    with sqlite3.connect(StoreLayout(tmp_path).store) as db:  # the rows as the dict release wrote them
        db.execute("INSERT INTO evaluations (key, kind, modality, generation, arch, val_metric, latency_ms, energy_mj,"
                   " genotype, result, seconds, worker, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (key, "candidate", None, 0, json.dumps(LAST), 0.75, 3.0, 9.0, json.dumps(genotype),
                    json.dumps(result), 1.0, "w", 1.0))
        image = LAST["backbones"]["image"]
        db.execute("INSERT INTO evaluations (key, kind, modality, generation, arch, val_metric, latency_ms, energy_mj,"
                   " genotype, result, seconds, worker, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   ("image:x", "backbone", "image", 0, json.dumps(image), 0.5, 1.0, 2.0, None,
                    json.dumps({"val_metric": 0.5, "latency_ms": 1.0, "energy_mj": 2.0}), 1.0, "w", 2.0))
    with RunStore.open(tmp_path) as store:
        candidate, backbone = store.evaluation(key), store.evaluation("image:x")
        space = store.space
    assert candidate is not None and backbone is not None
    assert space.candidate_hash(candidate.candidate) == key and candidate.arch.to_json() == LAST
    assert isinstance(candidate.genotype, Genotype) and candidate.genotype.to_json() == genotype
    assert candidate.modalities_used == ["image", "audio"] and candidate.genotype.last_taps == {"image": 1, "audio": 2}
    assert backbone.arch.to_json() == image and backbone.modalities_used == ["image"]
