"""Fusion operators and input projection: shapes, gradients, formulas on hand-computed cases, registry."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import pytest
import torch
from torch import Tensor, nn

from harmonic_nas.config import operators as config_operators
from harmonic_nas.config.schema import FusionConfig
from harmonic_nas.errors import UserError
from harmonic_nas.fusion import (
    OPERATORS,
    ConcatFC,
    ConcatMish,
    FusionOperator,
    InputProjection,
    LinearGLU,
    ScaledDotAttention,
    SqueezeExcitation,
    Sum,
    build_operator,
    pool_to_sequence,
    register_operator,
)
from harmonic_nas.fusion import operators as operators_module
from harmonic_nas.fusion.specs import op_spec

EPS = 1e-5  # BatchNorm / LayerNorm default epsilon
BUILTIN = ["sum", "attention", "linear_glu", "concat_fc", "squeeze_excitation", "concat_mish"]
# "meta" runs every op without data: it proves no tensor is created on a hard-coded device.
DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


def t(rows: list[list[float]]) -> Tensor:
    """A (1, C, L) tensor from C rows of L values."""
    return torch.tensor([rows], dtype=torch.float32)


def set_bn(bn: nn.BatchNorm1d, mean: list[float], var: list[float], weight: list[float], bias: list[float]) -> None:
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor(mean))
        bn.running_var.copy_(torch.tensor(var))
        bn.weight.copy_(torch.tensor(weight))
        bn.bias.copy_(torch.tensor(bias))


def identity_bn(bn: nn.BatchNorm1d) -> None:
    """Eval-mode BatchNorm that passes values through unchanged (running_var + eps == 1)."""
    n = bn.num_features
    set_bn(bn, [0.0] * n, [1.0 - EPS] * n, [1.0] * n, [0.0] * n)


def sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def mish(v: float) -> float:
    return v * math.tanh(math.log1p(math.exp(v)))


@pytest.fixture
def restore_registry() -> Iterator[None]:
    """Let a test register operators without leaking them into other tests."""
    saved, names = dict(operators_module._REGISTRY), dict(config_operators._names)
    yield
    operators_module._REGISTRY.clear()
    operators_module._REGISTRY.update(saved)
    config_operators._names.clear()
    config_operators._names.update(names)


# --- every operator: shape, device, gradients, determinism -------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", BUILTIN)
def test_operator_output_shape_on_any_device(name: str, device: str) -> None:
    op = build_operator(name, channels=6, length=9, dropout=0.1).to(device)
    x, y = torch.randn(2, 6, 9, device=device), torch.randn(2, 6, 9, device=device)
    out = op(x, y)
    assert out.shape == (2, 6, 9)
    assert out.device == x.device


@pytest.mark.parametrize("name", BUILTIN)
def test_operator_gradient_reaches_both_inputs_and_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    op = build_operator(name, channels=4, length=4, dropout=0.1).train()
    x = torch.randn(3, 4, 4, requires_grad=True)
    y = torch.randn(3, 4, 4, requires_grad=True)
    # A random projection of the output: a plain sum is constant under LayerNorm/BatchNorm.
    (op(x, y) * torch.randn(3, 4, 4)).sum().backward()
    for tensor in (x, y):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0
    for pname, param in op.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", BUILTIN)
def test_operator_is_deterministic_in_eval_mode(name: str) -> None:
    op = build_operator(name, channels=4, length=4, dropout=0.5).eval()
    x, y = torch.randn(2, 4, 4), torch.randn(2, 4, 4)
    assert torch.equal(op(x, y), op(x, y))


# --- formulas on hand-computed cases (eval mode: dropout off, BatchNorm uses the set statistics) -------

X = [[1.0, -1.0], [2.0, 0.0]]  # C=2 channels (rows) x L=2 positions (columns)
Y = [[0.0, 1.0], [1.0, 1.0]]


def test_sum_formula() -> None:
    out = Sum(2, 2, 0.1).eval()(t(X), t(Y))
    assert torch.allclose(out, t([[1.0, 0.0], [3.0, 1.0]]))


def test_attention_formula_x_queries_y() -> None:
    """C=3, L=2. Positions of x: (1,0,1), (0,1,1); of y: (2,0,1), (0,1,3)."""
    x = t([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = t([[2.0, 0.0], [0.0, 1.0], [1.0, 3.0]])
    # x position 0 scores both y positions 3/sqrt(3): equal weights, (y0 + y1) / 2 = (1, 0.5, 2).
    # x position 1 scores them 1/sqrt(3) and 4/sqrt(3): weight of y0 is w = 1 / (1 + e^sqrt(3)).
    w = 1.0 / (1.0 + math.exp(math.sqrt(3.0)))
    attended = [[1.0, 0.5, 2.0], [2.0 * w, 1.0 - w, w + 3.0 * (1.0 - w)]]

    def layer_norm(v: list[float]) -> list[float]:
        mean = sum(v) / len(v)
        var = sum((a - mean) ** 2 for a in v) / len(v)
        return [(a - mean) / math.sqrt(var + EPS) for a in v]

    rows = [layer_norm(v) for v in attended]  # one row per position
    expected = t([[rows[0][c], rows[1][c]] for c in range(3)])
    out = ScaledDotAttention(3, 2, 0.1).eval()(x, y)
    assert torch.allclose(out, expected, atol=1e-5)


def test_attention_output_positions_are_layer_normalised() -> None:
    torch.manual_seed(0)
    out = ScaledDotAttention(8, 4, 0.1).eval()(torch.randn(2, 8, 4), torch.randn(2, 8, 4))
    assert torch.allclose(out.mean(dim=1), torch.zeros(2, 4), atol=1e-5)
    assert torch.allclose(out.var(dim=1, unbiased=False), torch.ones(2, 4), atol=1e-3)


@pytest.mark.parametrize("swap", [False, True])
def test_linear_glu_formula(swap: bool) -> None:
    """With identity weights it is the paper's X * sigmoid(Y); with the blocks swapped, Y * sigmoid(X)."""
    op = LinearGLU(2, 2, 0.1).eval()
    weight = torch.eye(4)
    if swap:
        weight = weight[[2, 3, 0, 1]]
    with torch.no_grad():
        op.conv.weight.copy_(weight.unsqueeze(-1))
    identity_bn(op.bn)
    value, gate = (Y, X) if swap else (X, Y)
    expected = t([[value[c][p] * sigmoid(gate[c][p]) for p in range(2)] for c in range(2)])
    assert torch.allclose(op(t(X), t(Y)), expected, atol=1e-6)


def concat_case(op: ConcatFC | ConcatMish) -> Tensor:
    """Run the hand case: cat(x, y) at positions 0, 1 is (1,2,0,1) and (-1,0,1,1).

    Rows of W: (1,0,0,1) gives z0 = (2, 0); (0,-1,1,0) gives z1 = (-2, 1). BatchNorm with mean (1, 0),
    std (2, 1), scale (1, 2), shift (0, 0.5) maps them to (0.5, -0.5) and (-3.5, 2.5).
    """
    with torch.no_grad():
        op.conv.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, -1.0, 1.0, 0.0]]).unsqueeze(-1))
    set_bn(op.bn, [1.0, 0.0], [4.0 - EPS, 1.0 - EPS], [1.0, 2.0], [0.0, 0.5])
    return op.eval()(t(X), t(Y))


def test_concat_fc_formula() -> None:
    assert torch.allclose(concat_case(ConcatFC(2, 2, 0.1)), t([[0.5, 0.0], [0.0, 2.5]]), atol=1e-6)


def test_concat_mish_formula() -> None:
    expected = t([[mish(0.5), mish(-0.5)], [mish(-3.5), mish(2.5)]])
    assert torch.allclose(concat_case(ConcatMish(2, 2, 0.1)), expected, atol=1e-6)


def test_squeeze_excitation_formula() -> None:
    """Mean over L of x is (2, -1); W = [[-1, 0], [1, 1]], b = (0, 0.5) give logits (-2, 1.5)."""
    op = SqueezeExcitation(2, 2, 0.1).eval()
    with torch.no_grad():
        op.fc.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 1.0]]))
        op.fc.bias.copy_(torch.tensor([0.0, 0.5]))
    x, y = t([[1.0, 3.0], [-2.0, 0.0]]), t([[1.0, 2.0], [3.0, 4.0]])
    low, high = sigmoid(-2.0), sigmoid(1.5)
    assert torch.allclose(op(x, y), t([[low, 2.0 * low], [3.0 * high, 4.0 * high]]), atol=1e-6)


def test_squeeze_excitation_gates_span_below_one_half() -> None:
    """The authors' ReLU before the sigmoid kept every gate >= 0.5; here x can suppress channels of y."""
    torch.manual_seed(0)
    op = SqueezeExcitation(16, 4, 0.1).eval()
    gates = op(torch.randn(8, 16, 4), torch.ones(8, 16, 4))  # y = 1, so the output is the gate itself
    assert gates.min() < 0.5 < gates.max()
    assert (gates > 0).all() and (gates < 1).all()


# --- registry -------------------------------------------------------------------------------------------


def test_registry_holds_the_six_table2_operators_in_config_order() -> None:
    assert list(OPERATORS) == BUILTIN == FusionConfig().operators


def test_unknown_operator_error_names_it_and_lists_the_known_ones() -> None:
    with pytest.raises(UserError) as info:
        build_operator("bilinear", 8, 4, 0.1)
    message = str(info.value)
    assert "'bilinear'" in message and "\n" not in message
    assert all(name in message for name in BUILTIN)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        OPERATORS["sum"] = Sum  # type: ignore[index]


@pytest.mark.usefixtures("restore_registry")
def test_user_registered_operator_is_built_and_costed_like_a_builtin() -> None:
    @register_operator("product")
    class Product(FusionOperator):
        def forward(self, x: Tensor, y: Tensor) -> Tensor:
            return x * y

    op = build_operator("product", 2, 2, 0.1)
    assert isinstance(op, Product) and OPERATORS["product"] is Product
    assert torch.allclose(op(t(X), t(Y)), t([[0.0, -1.0], [2.0, 0.0]]))
    assert op_spec("product", 2, 2).op == "fusion_product"  # costed under its name, like a builtin
    assert FusionConfig(operators=["sum", "product"]).operators == ["sum", "product"]  # and a config may list it


@pytest.mark.usefixtures("restore_registry")
def test_registration_errors() -> None:
    with pytest.raises(UserError, match="'sum' is already registered"):

        @register_operator("sum")
        class Again(FusionOperator):
            def forward(self, x: Tensor, y: Tensor) -> Tensor:
                return x

    with pytest.raises(UserError, match="subclass of FusionOperator"):
        register_operator("plain")(nn.Identity)  # type: ignore[type-var]
    for bad in ["my op", "MyOp", "_private", ""]:
        with pytest.raises(UserError, match="must match"):
            register_operator(bad)
    assert list(OPERATORS) == BUILTIN


# --- input projection -----------------------------------------------------------------------------------


def passthrough_projection(channels: int, length: int) -> InputProjection:
    """Projection with identity conv and BatchNorm in eval mode: its output is ReLU of the pooled input."""
    proj = InputProjection(channels, channels, length, dropout=0.5)
    with torch.no_grad():
        proj.conv.weight.copy_(torch.eye(channels).unsqueeze(-1))
    identity_bn(proj.bn)
    return proj.eval()


def test_projection_pools_a_map_to_the_grid_row_major() -> None:
    torch.manual_seed(0)
    feature = torch.randn(2, 3, 8, 8)
    expected = feature.reshape(2, 3, 4, 2, 4, 2).amax(dim=(3, 5)).reshape(2, 3, 16).clamp(min=0)
    assert torch.allclose(passthrough_projection(3, 16)(feature), expected, atol=1e-6)


def test_projection_pools_uneven_bins() -> None:
    """5x5 to 2x2: adaptive bins cover rows/cols [0, 3) and [2, 5)."""
    torch.manual_seed(0)
    feature = torch.rand(1, 2, 5, 5)
    bins = [(0, 3), (2, 5)]
    expected = torch.stack(
        [feature[:, :, r0:r1, c0:c1].amax(dim=(2, 3)) for r0, r1 in bins for c0, c1 in bins], dim=-1
    )
    assert torch.allclose(passthrough_projection(2, 4)(feature), expected, atol=1e-6)


@pytest.mark.parametrize("size", [(7, 7), (5, 5), (3, 9), (2, 2), (1, 1), (8, 8)])
def test_pool_to_sequence_matches_adaptive_max_pooling(size: tuple[int, int]) -> None:
    """Uneven and smaller-than-grid maps take the per-bin path; it must agree with torch's pooling."""
    feature = torch.randn(2, 3, *size)
    expected = torch.nn.functional.adaptive_max_pool2d(feature, 4).flatten(2)
    assert torch.equal(pool_to_sequence(feature, 16), expected)


def test_projection_accepts_a_cached_pooled_sequence() -> None:
    proj = InputProjection(3, 8, 16, dropout=0.1).eval()
    feature = torch.randn(2, 3, 7, 7)
    assert torch.equal(proj(pool_to_sequence(feature, 16)), proj(feature))


def test_projection_broadcasts_a_vector_like_a_one_pixel_map() -> None:
    vector = torch.tensor([[0.5, 2.0, 3.0]])
    out = passthrough_projection(3, 4)(vector)
    assert torch.allclose(out, vector.unsqueeze(-1).expand(1, 3, 4), atol=1e-6)
    proj = InputProjection(3, 5, 9, dropout=0.1).eval()
    assert torch.allclose(proj(vector), proj(vector.reshape(1, 3, 1, 1)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (2, 3, 8, 8), (2, 3, 2, 2), (2, 3, 16), (2, 3)])
def test_projection_shape_on_any_device(shape: tuple[int, ...], device: str) -> None:
    proj = InputProjection(3, 8, 16, dropout=0.1).to(device)
    out = proj(torch.randn(*shape, device=device))
    assert out.shape == (2, 8, 16)
    assert out.device.type == torch.device(device).type


@pytest.mark.parametrize("shape", [(2, 3, 6, 6), (2, 3)])
def test_projection_gradient_and_eval_determinism(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    proj = InputProjection(3, 8, 4, dropout=0.1).train()
    feature = torch.randn(*shape, requires_grad=True)
    (proj(feature) * torch.randn(2, 8, 4)).sum().backward()
    assert feature.grad is not None and feature.grad.abs().sum() > 0
    for pname, param in proj.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, pname
    proj.eval()
    assert torch.equal(proj(feature), proj(feature))


def test_projection_rejects_bad_ranks_and_lengths() -> None:
    for shape in [(2, 3, 5), (3,), (1, 2, 3, 4, 4)]:
        with pytest.raises(ValueError, match=rf"found shape {re.escape(str(shape))}"):
            InputProjection(3, 8, 4, dropout=0.1)(torch.randn(*shape))
    with pytest.raises(ValueError, match="perfect square"):
        InputProjection(3, 8, 12, dropout=0.1)
