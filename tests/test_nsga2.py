"""NSGA-II toolkit and indicators, checked against pymoo and moocore and on hand-worked cases."""

from __future__ import annotations

import random

import moocore
import numpy as np
import pytest
from pymoo.indicators.hv import HV
from pymoo.operators.survival.rank_and_crowding.metrics import get_crowding_function
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from harmonic_nas.search.indicators import hypervolume, pareto_mask
from harmonic_nas.search.nsga2 import (
    binary_tournament,
    crowding_distance,
    non_dominated_ranks,
    normalise,
    select_survivors,
)


def _grid_fronts() -> list[np.ndarray]:
    """20 random populations on small integer grids, so ties and duplicates are frequent."""
    rng = np.random.default_rng(7)
    return [
        rng.integers(0, 6, size=(int(rng.integers(2, 40)), m)).astype(float)
        for m in (2, 3)
        for _ in range(10)
    ]


@pytest.mark.parametrize("F", _grid_fronts())
def test_ranks_match_pymoo(F: np.ndarray) -> None:
    _, expected = NonDominatedSorting().do(F, return_rank=True)
    assert np.array_equal(non_dominated_ranks(F), expected)


def test_grid_fronts_do_contain_duplicates() -> None:
    assert any(len(np.unique(F, axis=0)) < len(F) for F in _grid_fronts())


def test_ranks_of_tiny_and_duplicated_populations() -> None:
    assert non_dominated_ranks(np.empty((0, 2))).shape == (0,)
    assert non_dominated_ranks(np.array([[3.0, 1.0]])).tolist() == [0]
    F = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [2.0, 2.0], [0.0, 3.0]])
    assert non_dominated_ranks(F).tolist() == [0, 0, 1, 1, 0]


def test_constraint_domination_by_hand() -> None:
    F = np.array([[0.0, 0.0], [5.0, 5.0], [6.0, 6.0], [1.0, 1.0], [2.0, 2.0]])
    violation = np.array([1.0, 0.0, 0.0, 0.5, 0.5])
    # feasible first, Pareto among them; then infeasible by violation only: (1,1) and (2,2)
    # share a violation so neither dominates, and (0,0) comes last despite its objectives.
    assert non_dominated_ranks(F, violation).tolist() == [3, 0, 1, 2, 2]
    assert np.array_equal(non_dominated_ranks(F, np.zeros(5)), non_dominated_ranks(F))
    assert non_dominated_ranks(F).tolist() == [0, 3, 4, 1, 2]


def test_violation_is_validated() -> None:
    F = np.zeros((3, 2))
    with pytest.raises(ValueError):
        non_dominated_ranks(F, np.array([0.0, -1.0, 0.0]))
    with pytest.raises(ValueError):
        non_dominated_ranks(F, np.zeros(2))
    with pytest.raises(ValueError):
        non_dominated_ranks(np.zeros(3))


@pytest.mark.parametrize("m", [2, 3, 4])
def test_crowding_matches_pymoo(m: int) -> None:
    rng = np.random.default_rng(m)
    pymoo_cd = get_crowding_function("cd")
    for _ in range(5):
        F = rng.random((int(rng.integers(1, 60)), m))
        ranks = non_dominated_ranks(F)
        ours = crowding_distance(F, ranks)
        for rank in np.unique(ranks):
            front = np.flatnonzero(ranks == rank)
            np.testing.assert_allclose(ours[front], pymoo_cd.do(F[front]), rtol=1e-12)


def test_crowding_with_a_constant_objective_matches_pymoo() -> None:
    rng = np.random.default_rng(3)
    x = rng.random(8)
    F = np.column_stack([x, 1.0 - x, np.full(8, 2.0)])
    ranks = non_dominated_ranks(F)
    assert ranks.tolist() == [0] * 8
    np.testing.assert_allclose(crowding_distance(F, ranks), get_crowding_function("cd").do(F))


def test_crowding_by_hand_and_scale_free() -> None:
    F = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    ranks = np.zeros(4, dtype=int)
    cd = crowding_distance(F, ranks)
    # (1,2): x gap (3-0)/4, y gap (4-1)/4 -> 1.5 / 2;  (3,1): x gap 3/4, y gap 2/4 -> 1.25 / 2
    assert cd.tolist() == [np.inf, 0.75, 0.625, np.inf]
    np.testing.assert_allclose(crowding_distance(F * [1000.0, 0.001], ranks), cd)
    assert crowding_distance(F[:2], ranks[:2]).tolist() == [np.inf, np.inf]
    assert crowding_distance(np.empty((0, 2)), np.empty(0, dtype=int)).shape == (0,)


def test_select_survivors_splits_last_front_by_crowding() -> None:
    # rank 0: (0,0); rank 1: ends (5,1), (1,5), then (3,2.8) cd 0.625 before (2,3) cd 0.525; rank 2: (6,6)
    F = np.array([[6.0, 6.0], [2.0, 3.0], [5.0, 1.0], [0.0, 0.0], [3.0, 2.8], [1.0, 5.0]])
    assert select_survivors(F, 4) == [3, 2, 5, 4]
    assert select_survivors(F, 5) == [3, 2, 5, 4, 1]
    assert select_survivors(F, 1) == [3]
    assert select_survivors(F, 0) == []
    assert sorted(select_survivors(F, 10)) == list(range(6))


def test_select_survivors_ties_by_index_and_constraints() -> None:
    assert select_survivors(np.ones((5, 2)), 2) == [0, 1]
    F = np.array([[0.0, 0.0], [3.0, 3.0], [4.0, 4.0]])
    assert select_survivors(F, 2, violation=np.array([2.0, 0.0, 0.0])) == [1, 2]
    assert select_survivors(F, 2) == [0, 1]
    with pytest.raises(ValueError):
        select_survivors(F, -1)


def test_tournament_is_deterministic_given_rng() -> None:
    ranks = np.array([0, 1, 0, 2, 1, 0])
    crowding = np.array([np.inf, 0.3, 0.5, np.inf, 0.3, 0.5])
    first = binary_tournament(random.Random(11), ranks, crowding, 50)
    assert first == binary_tournament(random.Random(11), ranks, crowding, 50)
    assert first != binary_tournament(random.Random(12), ranks, crowding, 50)
    assert len(first) == 50 and all(0 <= i < 6 for i in first)


def test_tournament_prefers_rank_then_crowding_then_chance() -> None:
    rng = random.Random(0)
    assert binary_tournament(rng, np.array([1, 0]), np.array([9.0, 0.0]), 30) == [1] * 30
    assert binary_tournament(rng, np.array([0, 0]), np.array([1.0, 2.0]), 30) == [1] * 30
    tied = binary_tournament(rng, np.array([0, 0, 1]), np.full(3, np.inf), 200)
    assert set(tied) == {0, 1}
    assert binary_tournament(rng, np.array([0]), np.array([np.inf]), 3) == [0, 0, 0]
    assert binary_tournament(rng, np.array([0, 1]), np.zeros(2), 0) == []
    with pytest.raises(ValueError):
        binary_tournament(rng, np.array([], dtype=int), np.array([]), 1)


def test_normalise() -> None:
    F = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 0.0], [2.0, 5.0, 1.0]])
    assert normalise(F).tolist() == [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.5]]
    assert normalise(F, ideal=[0.0, 0.0, 0.0], nadir=[4.0, 10.0, 4.0]).tolist() == [
        [0.25, 0.5, 0.5],
        [0.75, 0.5, 0.0],
        [0.5, 0.5, 0.25],
    ]
    assert normalise(np.array([[7.0, 8.0]])).tolist() == [[0.0, 0.0]]
    assert normalise(np.empty((0, 3))).shape == (0, 3)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_matches_pymoo(m: int) -> None:
    rng = np.random.default_rng(100 + m)
    reference = np.full(m, 1.0)
    for _ in range(5):
        F = rng.random((int(rng.integers(1, 30)), m)) * 1.2  # some points beyond the reference
        inside = F[np.all(F < reference, axis=1)]
        expected = HV(ref_point=reference)(inside) if len(inside) else 0.0
        assert hypervolume(F, reference) == pytest.approx(expected, rel=1e-12, abs=0.0)
        assert hypervolume(F, reference) > 0.0 or len(inside) == 0


def test_hypervolume_by_hand() -> None:
    F = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.0, 3.0]])
    assert hypervolume(F, np.array([4.0, 4.0])) == pytest.approx(1.0 + 2.0 + 3.0)
    # on the reference boundary or beyond it: no volume
    assert hypervolume(np.array([[4.0, 0.0], [0.0, 5.0]]), np.array([4.0, 4.0])) == 0.0
    assert hypervolume(np.empty((0, 2)), np.array([4.0, 4.0])) == 0.0
    with pytest.raises(ValueError):
        hypervolume(F, np.array([4.0, 4.0, 4.0]))


@pytest.mark.parametrize("F", _grid_fronts())
def test_pareto_mask_matches_moocore(F: np.ndarray) -> None:
    assert np.array_equal(pareto_mask(F), moocore.is_nondominated(F, keep_weakly=True))
    assert np.array_equal(pareto_mask(F), non_dominated_ranks(F) == 0)


def test_pareto_mask_keeps_duplicates() -> None:
    F = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [0.0, 3.0]])
    assert pareto_mask(F).tolist() == [True, True, False, True]
    assert pareto_mask(np.empty((0, 2))).shape == (0,)
