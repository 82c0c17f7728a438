"""Every shipped config is valid and its search space can be sampled; the paper configs keep the
paper's search settings."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harmonic_nas.config import load_config
from harmonic_nas.space.candidate import CandidateSpace

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
PAPER = ("avmnist", "soundmnist", "mmimdb", "harmp")


def test_the_shipped_configs_are_the_expected_ones() -> None:
    names = {p.stem for p in CONFIGS}
    assert {"demo", "smoke", "emoji", "tuxpaint", *PAPER} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_is_valid_and_its_space_samples(path: Path) -> None:
    cfg = load_config(path)
    space = CandidateSpace.from_config(cfg)
    rng = random.Random(0)
    for _ in range(5):
        candidate = space.sample(rng)
        assert space.parse(candidate.to_json()) == candidate
    if path.stem in PAPER:
        s = cfg.search
        assert (s.population, s.generations, s.top_fraction, s.elite_fraction) == (128, 30, 0.25, 0.5)
        assert (s.crossover_prob, s.mutation_prob, cfg.fusion.epochs) == (0.8, 0.4, 25)
