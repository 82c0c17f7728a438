"""Searchable fusion network: relaxation (eq. 6-9), parameter groups, derivation (eq. 8, 10), the
bilevel loop and the hardware loss (its gradient reaches gamma; a larger b derives cheaper ops)."""

from __future__ import annotations

import torch
from helpers import COSTS, OPS, dot_product_split, make_lut, small_fusion, synthetic_split

from harmonic_nas.config.schema import LossExponents
from harmonic_nas.fusion.darts import search
from harmonic_nas.fusion.discrete import FusionNet
from harmonic_nas.fusion.scoring import evaluate, shuffled_modality_scores
from harmonic_nas.fusion.finetune import finetune
from harmonic_nas.fusion.derive import best_pair, cell_input_pairs, derive_genotype, modalities_read
from harmonic_nas.fusion.hardware_loss import HardwareCost
from harmonic_nas.fusion.search_net import FusionSearchNet, _mix, pair_distribution, pair_weights
from harmonic_nas.space import Genotype

TAPS = [("image", 0), ("image", 1), ("text", 0)]


def make_net(cells: int = 2, nodes: int = 2, ops: list[str] = OPS, seed: int = 0) -> FusionSearchNet:
    torch.manual_seed(seed)
    return FusionSearchNet([6, 5, 7], cells, nodes, ops, channels=8, length=4, num_classes=3, dropout=0.1)


def test_pair_distribution_is_the_normalised_product_of_identity_probabilities() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    w = logits.softmax(-1)[:, 0]
    pairs = pair_distribution(logits)
    expected = torch.tensor([[0, w[0] * w[1], w[0] * w[2]], [0, 0, w[1] * w[2]], [0, 0, 0]])
    assert torch.allclose(pairs, expected / expected.sum())
    assert best_pair(logits) == [0, 1]
    a, b, c = torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 2.0), torch.full((1, 2, 2), 4.0)
    x, y = _mix(pair_weights(logits), [a, b, c]).unbind(0)  # the relaxed (X, Y) of a cell
    first, second = pairs.sum(1), pairs.sum(0)  # X: earlier member of each pair, Y: later member
    assert torch.allclose(x, torch.full((1, 2, 2), float(first[0] * 1 + first[1] * 2)))
    assert torch.allclose(y, torch.full((1, 2, 2), float(second[1] * 2 + second[2] * 4)))


def test_architecture_parameters_are_registered_in_their_own_group() -> None:
    net = make_net(cells=3, nodes=3)
    arch = net.arch_parameters()
    names = {name for name, _ in net.named_parameters()}
    assert {"gamma", "alpha.0", "alpha.2", "beta.0", "beta.3"} <= names
    assert net.gamma.shape == (3, 3, len(OPS))
    assert [a.shape[0] for a in net.alpha] == [3, 4, 5]  # taps + earlier cells (eq. 6)
    assert [b.shape[0] for b in net.beta] == [3, 4] * 3  # X, Y + earlier nodes, for nodes 1 and 2
    ids = {id(p) for p in arch}
    assert len(ids) == len(arch) and not ids & {id(p) for p in net.weight_parameters()}
    assert len(arch) + len(net.weight_parameters()) == len(list(net.parameters()))


def test_task_gradient_reaches_every_architecture_parameter() -> None:
    net = make_net(cells=2, nodes=3)
    split = synthetic_split(16, 0)
    torch.nn.functional.cross_entropy(net(split.taps), split.targets).backward()
    for param in net.arch_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_any_number_of_modalities() -> None:
    torch.manual_seed(0)
    net = FusionSearchNet([3, 4, 5, 6], 2, 1, ["sum", "concat_fc"], 8, 4, 2, 0.0)
    out = net([torch.randn(2, 3, 4), torch.randn(2, 4, 2, 2), torch.randn(2, 5), torch.randn(2, 6, 4)])
    assert out.shape == (2, 2)
    genotype = derive_genotype(net, [("a", 0), ("b", 0), ("c", 0), ("d", 0)])
    assert Genotype.parse(genotype.to_json(), ["sum", "concat_fc"]) == genotype


def test_derivation_keeps_the_best_pairs_and_the_argmax_ops() -> None:
    net = make_net(cells=2, nodes=2)
    with torch.no_grad():
        for param in net.arch_parameters():
            param.zero_()
        net.alpha[0][2, 0] = 3.0  # cell 0: text tap and image tap 1 most likely kept
        net.alpha[0][1, 0] = 2.0
        net.alpha[1][3, 0] = 3.0  # cell 1: cell 0 and image tap 0
        net.alpha[1][0, 0] = 1.0
        net.beta[0][2, 0] = 2.0  # cell 0, node 1: node 0 and X
        net.beta[0][0, 0] = 1.0
        net.gamma[0, 0, OPS.index("attention")] = 1.0
        net.gamma[0, 1, OPS.index("concat_mish")] = 1.0
        net.gamma[1, 1, OPS.index("sum")] = 1.0
    genotype = derive_genotype(net, TAPS).to_json()
    assert genotype["taps"] == [["image", 0], ["image", 1], ["text", 0]]
    assert genotype["cells"][0] == {
        "inputs": [1, 2],
        "nodes": [{"inputs": [0, 1], "op": "attention"}, {"inputs": [0, 2], "op": "concat_mish"}],
    }
    assert genotype["cells"][1]["inputs"] == [0, 3]
    assert genotype["cells"][1]["nodes"][1]["op"] == "sum"
    assert Genotype.parse(genotype, OPS).to_json() == genotype


def _expensive_share(net: FusionSearchNet) -> float:
    probs = net.op_probs().detach()
    costs = torch.tensor([COSTS[name] for name in OPS])
    return float((probs * costs).sum() / probs.sum())


def test_hardware_term_alone_moves_gamma_towards_cheap_ops_in_the_architecture_step() -> None:
    train, val = synthetic_split(128, 0), synthetic_split(64, 1)
    lut = make_lut(8, 4)
    for exponents, moves in ((LossExponents(task=0, latency=1, energy=1), True),
                             (LossExponents(task=0, latency=0, energy=0), False)):
        net = make_net()
        before = net.gamma.detach().clone()
        cost_before = _expensive_share(net)
        cfg = small_fusion(epochs=1, exponents=exponents, arch_lr=0.05)
        search(net, train, val, HardwareCost(lut, OPS, 8, 4), cfg, "multiclass", torch.Generator().manual_seed(0))
        if moves:  # only the hardware term is on: every gamma change comes from it
            assert _expensive_share(net) < cost_before
            moved = net.gamma.detach() - before  # every node: cheapest op up, dearest op down
            assert (moved[..., OPS.index("sum")] > 0).all() and (moved[..., OPS.index("attention")] < 0).all()
        else:  # no task and no hardware term: the architecture step has nothing to follow
            assert torch.equal(net.gamma, before)


def test_hardware_gradient_on_gamma_is_the_unit_cost_per_node() -> None:
    net = make_net(cells=2, nodes=2)
    cost = HardwareCost(make_lut(8, 4), OPS, 8, 4)
    latency, _ = cost.terms(net.op_probs())
    assert 1.0 <= float(latency.detach()) <= 2.0
    (grad,) = torch.autograd.grad(latency, net.gamma)
    unit = cost.latency_unit
    assert float(unit.min()) == 0.0 and float(unit.max()) == 1.0  # this device's own min/max
    for p in range(2):
        for d in range(2):
            probs = net.op_probs()[p, d].detach()  # softmax Jacobian, over the mean of the 4 nodes
            assert torch.allclose(grad[p, d], probs * (unit - (probs * unit).sum()) / 4, atol=1e-6)


# task and hardware in balance ---------------------------------------------------------------------------
DOT_TAPS = [("a", 0), ("b", 0)]
SOLVERS = {"linear_glu", "concat_fc", "concat_mish"}  # the operators that read the dot product's sign


def _dot_search(exponents: LossExponents, costs: dict[str, float] = COSTS, cells: int = 1,
                nodes: int = 1) -> tuple[FusionSearchNet, HardwareCost, list[dict[str, float]]]:
    """4 epochs of 32 steps on the dot-product task (seeded: the same run on every call)."""
    train, val = dot_product_split(2048, 0), dot_product_split(512, 1)
    torch.manual_seed(0)
    net = FusionSearchNet([4, 4], cells, nodes, OPS, 16, 4, 2, 0.0, tap_modalities=["a", "b"], min_modalities=2)
    cfg = small_fusion(channels=16, epochs=4, batch_size=64, lr=3e-3, arch_lr=3e-3, exponents=exponents)
    cost = HardwareCost(make_lut(16, 4, costs), OPS, 16, 4)
    history = search(net, train, val, cost, cfg, "multiclass", torch.Generator().manual_seed(0))
    return net, cost, history


def _ops(net: FusionSearchNet) -> list[str]:
    return [node.op for cell in derive_genotype(net, DOT_TAPS).cells for node in cell.nodes]


def test_only_the_dearer_operators_solve_the_dot_product_task() -> None:
    """The premise of the next tests: fused by one operator and trained alike, the cheap operators stay
    near chance, the concat/GLU ones do not."""
    train, val, held_out = dot_product_split(2048, 0), dot_product_split(512, 1), dot_product_split(512, 2)
    accuracy = {}
    for op in OPS:
        torch.manual_seed(0)
        genotype = {"taps": [["a", 0], ["b", 0]], "cells": [{"inputs": [0, 1], "nodes": [{"inputs": [0, 1], "op": op}]}]}
        net = FusionNet(Genotype.parse(genotype), [4, 4], 16, 4, 2, 0.0)
        cfg = small_fusion(channels=16, finetune_epochs=6, finetune_lr=3e-3, batch_size=64)
        finetune(net, train, val, cfg, "multiclass", torch.Generator().manual_seed(0))
        accuracy[op] = evaluate(net, held_out, 256, "multiclass")
    assert max(accuracy["sum"], accuracy["squeeze_excitation"]) < 0.62, accuracy
    assert min(accuracy[op] for op in SOLVERS) > 0.7, accuracy
    assert all(COSTS[op] > 4 * COSTS["squeeze_excitation"] for op in SOLVERS)


def test_the_task_derives_an_expensive_operator_it_needs_at_the_default_exponents() -> None:
    net, _, history = _dot_search(LossExponents())
    assert _ops(net)[0] in SOLVERS
    assert 0 < history[0]["hardware_scale"] < 1  # the raw hardware gradient was the larger one


def test_raising_b_lowers_the_expected_latency_through_distinct_genotypes() -> None:
    expected, genotypes = [], []
    for b in (0.0, 0.5, 1.0, 2.0, 4.0):
        net, cost, _ = _dot_search(LossExponents(task=1, latency=b, energy=0))
        expected.append(cost.expected(net.op_probs())[0])
        genotypes.append(tuple(_ops(net)))
    assert all(later <= earlier for earlier, later in zip(expected, expected[1:])), expected
    assert len(set(genotypes)) >= 3, genotypes
    assert genotypes[0][0] in SOLVERS and genotypes[-1][0] not in SOLVERS  # task alone vs hardware-led


def test_without_hardware_exponents_the_search_is_the_task_only_search() -> None:
    """b = c = 0 with very different operator costs equals b = c = 1 with all operators costing alike
    (no hardware gradient at all): the LUT has no say, and nothing else changes."""
    off, _, off_history = _dot_search(LossExponents(task=1, latency=0, energy=0))
    flat, _, flat_history = _dot_search(LossExponents(), costs={op: 0.5 for op in OPS})
    assert torch.equal(off.gamma, flat.gamma) and torch.equal(off.alpha[0], flat.alpha[0])
    assert [r["select_metric"] for r in off_history] == [r["select_metric"] for r in flat_history]


def test_architecture_step_leaves_batchnorm_running_statistics_to_train() -> None:
    """Val batches normalise with their own statistics but never move the running ones (train only)."""
    train, val = synthetic_split(64, 0), synthetic_split(64, 1)
    net = make_net(cells=1, nodes=1)
    cfg = small_fusion(epochs=1, batch_size=64, lr=1e-12, min_lr=0.0)  # weights frozen in effect
    search(net, train, val, HardwareCost(make_lut(8, 4), OPS, 8, 4), cfg, "multiclass", torch.Generator().manual_seed(0))
    with torch.no_grad():
        proj = net.projections[0].conv(train.taps[0])
    expected = 0.1 * proj.mean(dim=(0, 2))  # one train step with momentum 0.1 from 0
    assert torch.allclose(net.projections[0].bn.running_mean, expected, atol=1e-5)


# multimodal by construction ------------------------------------------------------------------------------
def _favour(net: FusionSearchNet, cell: int, inputs: dict[int, float]) -> None:
    with torch.no_grad():
        net.alpha[cell].zero_()
        for i, logit in inputs.items():
            net.alpha[cell][i, 0] = logit


def test_two_taps_of_one_modality_never_form_a_cell_pair() -> None:
    torch.manual_seed(0)
    net = FusionSearchNet([6, 5, 7], 2, 1, OPS, 8, 4, 3, 0.0, tap_modalities=["image", "image", "text"], min_modalities=2)
    _favour(net, 0, {0: 5.0, 1: 5.0})  # unconstrained, cell 0 would fuse the two image taps
    _favour(net, 1, {0: 5.0, 1: 5.0})
    pairs = pair_distribution(net.alpha[0], net.cell_masks[0])
    assert pairs[0, 1] == 0 and torch.isclose(pairs.sum(), torch.tensor(1.0))
    assert best_pair(net.alpha[0]) == [0, 1]  # what the argmax alone would keep
    genotype = derive_genotype(net, TAPS).to_json()
    assert {tuple(c["inputs"]) for c in genotype["cells"]} <= {(0, 2), (1, 2), (0, 3), (1, 3), (2, 3)}
    assert genotype["cells"][0]["inputs"] in ([0, 2], [1, 2])
    assert modalities_read([c["inputs"] for c in genotype["cells"]], ["image", "image", "text"]) == {"image", "text"}
    # the relaxed network never mixes the masked pair either: its output ignores that pair's alpha
    out = net([torch.randn(4, 6, 4), torch.randn(4, 5, 4), torch.randn(4, 7)])
    assert out.shape == (4, 3)


def test_min_modalities_one_lifts_the_constraint() -> None:
    torch.manual_seed(0)
    net = FusionSearchNet([6, 5, 7], 1, 1, OPS, 8, 4, 3, 0.0, tap_modalities=["image", "image", "text"], min_modalities=1)
    _favour(net, 0, {0: 5.0, 1: 5.0})
    assert net.cell_masks == [None]
    assert derive_genotype(net, TAPS).to_json()["cells"][0]["inputs"] == [0, 1]


def test_derivation_covers_three_modalities_with_the_most_probable_pairs() -> None:
    """Cells 0 and 1 both prefer image+text; the speech tap must come in where it costs least probability."""
    import itertools
    import math

    modalities = ["image", "text", "speech"]
    torch.manual_seed(0)
    net = FusionSearchNet([6, 5, 7], 2, 1, OPS, 8, 4, 3, 0.0, tap_modalities=modalities, min_modalities=3)
    _favour(net, 0, {0: 4.0, 1: 4.0, 2: 1.0})
    _favour(net, 1, {0: 3.0, 1: 3.0, 2: 2.0, 3: 0.5})
    greedy = [best_pair(a, m) for a, m in zip(net.alpha, net.cell_masks)]
    assert modalities_read(greedy, modalities) == {"image", "text"}
    pairs = cell_input_pairs(net)
    assert modalities_read(pairs, modalities) == set(modalities)
    # the most probable covering choice, by brute force over every pair of every cell
    dists = [pair_distribution(a, m).detach() for a, m in zip(net.alpha, net.cell_masks)]
    options = [[[i, j] for i in range(d.shape[0]) for j in range(i + 1, d.shape[0]) if d[i, j] > 0] for d in dists]
    best = max((c for c in itertools.product(*options) if modalities_read(c, modalities) == set(modalities)),
               key=lambda c: sum(math.log(float(d[i, j])) for d, (i, j) in zip(dists, c)))
    assert pairs == list(best)


def test_search_network_of_a_config_requires_every_modality_by_default() -> None:
    cfg = small_fusion()
    net = FusionSearchNet.for_search(TAPS, [6, 5, 7], 1, 1, cfg, 3)
    assert net.min_modalities == 2 and net.cell_masks[0] is not None
    lifted = FusionSearchNet.for_search(TAPS, [6, 5, 7], 1, 1, small_fusion(min_modalities=1), 3)
    assert lifted.cell_masks == [None]


class _ThresholdRule(torch.nn.Module):
    """The class rule of ``synthetic_split`` as a network, reading taps 0 (image) and 2 (audio) with weights."""

    def __init__(self, image: float, audio: float) -> None:
        super().__init__()
        self.image, self.audio = image, audio

    def forward(self, taps: list[torch.Tensor]) -> torch.Tensor:
        score = self.image * taps[0][:, 0].mean(1) + self.audio * taps[2][:, 0]
        return -(score[:, None] - torch.tensor([-1.0, 0.0, 1.0])) ** 2  # nearest of the classes' centres


def test_shuffling_a_modality_costs_what_the_network_draws_from_it() -> None:
    split, modalities = synthetic_split(2000, seed=3), ["image", "image", "audio"]
    both = _ThresholdRule(1.0, 1.0)
    assert evaluate(both, split, 256, "multiclass") == 1.0
    shuffled = shuffled_modality_scores(both, split, modalities, 256, "multiclass", seed=0)
    assert set(shuffled) == {"image", "audio"} and max(shuffled.values()) < 0.75
    assert shuffled == shuffled_modality_scores(both, split, modalities, 256, "multiclass", seed=0)
    # A fusion whose wiring reads audio but whose weights ignore it keeps its whole score without it.
    image_only = _ThresholdRule(1.0, 0.0)
    alone = evaluate(image_only, split, 256, "multiclass")
    shuffled = shuffled_modality_scores(image_only, split, modalities, 256, "multiclass", seed=0)
    assert shuffled["audio"] == alone and shuffled["image"] < alone - 0.05
