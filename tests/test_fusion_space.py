"""Fusion macro space (a gene of stage 1) and the candidate space: validation, canonical hash, genetics."""

from __future__ import annotations

import json
import random

import pytest

from harmonic_nas.config.schema import ExperimentConfig
from harmonic_nas.space import InvalidArchError, canonical_json
from harmonic_nas.space.candidate import CandidateSpace
from harmonic_nas.space.fusion import FusionMacroSpace, Macro


@pytest.fixture
def space() -> CandidateSpace:
    cfg = ExperimentConfig.model_validate({
        "name": "t",
        "modalities": {"image": {"type": "mbv3", "stages": [{"width": 16}, {"width": 24}]}, "text": {"type": "maxout"}},
        "fusion": {"cells": [1, 2, 4], "nodes": [1, 3]},
    })
    return CandidateSpace.from_config(cfg)


def test_macro_space_choices_and_validation() -> None:
    macro = FusionMacroSpace([4, 1, 2], [2, 1])
    assert macro.min().to_json() == {"cells": 1, "nodes": 1} and macro.max().to_json() == {"cells": 4, "nodes": 2}
    assert macro.parse({"cells": 2.0, "nodes": 1}).to_json() == {"cells": 2, "nodes": 1}
    with pytest.raises(InvalidArchError, match="cells = 3 is not one of"):
        macro.parse({"cells": 3, "nodes": 1})
    with pytest.raises(InvalidArchError, match="missing key 'nodes'"):
        macro.parse({"cells": 1})
    rng = random.Random(0)
    samples = [macro.sample(rng) for _ in range(50)]
    assert {s.cells for s in samples} == {1, 2, 4} and {s.nodes for s in samples} == {1, 2}


def test_macro_genes_are_inherited_mutated_and_crossed() -> None:
    macro = FusionMacroSpace([1, 2, 3, 4], [1, 2, 3, 4])
    parent = Macro(cells=1, nodes=4)
    rng = random.Random(0)
    assert macro.mutate(parent, rng, 0.0) == parent  # inherited unchanged without mutation
    mutated = [macro.mutate(parent, rng, 1.0) for _ in range(30)]
    assert any(m != parent for m in mutated)
    children = {json.dumps(c.to_json(), sort_keys=True)
                for _ in range(30) for c in macro.crossover(parent, Macro(cells=3, nodes=2), rng)}
    assert children <= {json.dumps(c, sort_keys=True) for c in (
        {"cells": 1, "nodes": 4}, {"cells": 3, "nodes": 2}, {"cells": 1, "nodes": 2}, {"cells": 3, "nodes": 4})}
    assert len(children) == 4


def test_candidate_canonical_form_and_hash(space: CandidateSpace) -> None:
    rng = random.Random(1)
    candidate = space.sample(rng).to_json()
    assert list(candidate["backbones"]) == ["image", "text"]
    # Key order, 3 vs 3.0, and genes of inactive blocks do not change the identity.
    image = dict(candidate["backbones"]["image"])
    image["d"] = [2, 2]
    image["e"] = [float(e) for e in image["e"]]
    shuffled = {"macro": dict(reversed(list(candidate["macro"].items()))),
                "backbones": {"text": candidate["backbones"]["text"], "image": image}}
    variant = json.loads(json.dumps(shuffled))
    variant["backbones"]["image"]["ks"][3] = 7 if variant["backbones"]["image"]["ks"][3] != 7 else 3  # inactive slot (d=2)
    canonical = {"backbones": {"text": shuffled["backbones"]["text"], "image": image}, "macro": candidate["macro"]}
    assert space.candidate_hash(space.parse(variant)) == space.candidate_hash(space.parse(canonical))
    assert list(space.normalize(space.parse(variant)).backbones) == ["image", "text"]  # config order
    other = json.loads(canonical_json(canonical))
    other["macro"]["cells"] = 4 if other["macro"]["cells"] != 4 else 1
    assert space.candidate_hash(space.parse(other)) != space.candidate_hash(space.parse(canonical))


def test_candidate_errors_name_the_problem(space: CandidateSpace) -> None:
    good = space.sample(random.Random(2)).to_json()
    with pytest.raises(InvalidArchError, match="missing modality 'text'"):
        space.parse({"backbones": {"image": good["backbones"]["image"]}, "macro": good["macro"]})
    with pytest.raises(InvalidArchError, match="unknown modality 'audio'"):
        space.parse({"backbones": {**good["backbones"], "audio": {}}, "macro": good["macro"]})
    with pytest.raises(InvalidArchError, match="nodes = 2 is not one of"):
        space.parse({**good, "macro": {"cells": 1, "nodes": 2}})
    with pytest.raises(InvalidArchError, match="unknown key 'fusion'"):
        space.parse({**good, "fusion": {}})


def test_candidate_genetics_stay_in_the_space(space: CandidateSpace) -> None:
    rng = random.Random(3)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        child = space.mutate(a, rng, 0.4)
        assert space.parse(child.to_json()) == child
        x, y = space.crossover(a, b, rng)
        assert space.parse(x.to_json()) == x and space.parse(y.to_json()) == y
        for child in (x, y):  # genes only move between backbones of the same modality, slot by slot
            for key in ("ks", "e"):
                assert all(v in (p, q) for v, p, q in zip(getattr(child.backbones["image"], key),
                                                          getattr(a.backbones["image"], key),
                                                          getattr(b.backbones["image"], key)))
            assert child.macro.cells in (a.macro.cells, b.macro.cells)
