"""The fusion operators of the paper's Table 2 and the registry that makes the operator set configurable.

Every operator fuses two tensors x, y of shape (B, C, L) into one (B, C, L) and is built from
(channels, length, dropout); the cost model knows it by its name (``fusion.specs.op_spec``).
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from harmonic_nas.config.operators import add_operator_name
from harmonic_nas.errors import UserError


class FusionOperator(nn.Module, abc.ABC):
    """Base of every fusion operator; subclasses are registered under ``name`` by ``register_operator``."""

    name: ClassVar[str] = ""

    def __init__(self, channels: int, length: int, dropout: float) -> None:
        super().__init__()
        self.channels = channels
        self.length = length

    @abc.abstractmethod
    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Fuse x and y, both (B, C, L), into (B, C, L)."""


_REGISTRY: dict[str, type[FusionOperator]] = {}
OPERATORS: Mapping[str, type[FusionOperator]] = MappingProxyType(_REGISTRY)
"""Registered operators by name, in registration order (read-only: add with ``register_operator``)."""

OpT = TypeVar("OpT", bound=FusionOperator)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # also what a LUT key accepts (harmonic_nas.hardware.specs)


def register_operator(name: str) -> Callable[[type[OpT]], type[OpT]]:
    """Class decorator adding a ``FusionOperator`` subclass to the registry under ``name``.

    The name is what configs, genotypes and cost-table keys use, so it must be unique and lower-case
    (letters, digits, _).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"a fusion operator name must match {_NAME.pattern} (lower-case, digits, _), found {name!r}")

    def decorate(cls: type[OpT]) -> type[OpT]:
        if not (isinstance(cls, type) and issubclass(cls, FusionOperator)):
            raise UserError(f"fusion operator '{name}' must be a subclass of FusionOperator, found {cls!r}")
        if name in _REGISTRY:
            taken = _REGISTRY[name]
            raise UserError(
                f"fusion operator '{name}' is already registered by {taken.__module__}.{taken.__qualname__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        add_operator_name(name)
        return cls

    return decorate


def build_operator(name: str, channels: int, length: int, dropout: float) -> FusionOperator:
    """Instantiate the registered operator ``name``; an unknown name is a one-line error listing the known ones."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise UserError(
            f"unknown fusion operator '{name}'; known operators: {', '.join(_REGISTRY)} "
            "(add one with harmonic_nas.fusion.register_operator)"
        )
    return cls(channels, length, dropout)


@register_operator("sum")
class Sum(FusionOperator):
    """x + y: the cheapest fusion, right when the modalities contribute additively. No parameters."""

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return x + y


@register_operator("attention")
class ScaledDotAttention(FusionOperator):
    """Cross-attention without Q/K/V projections: every position of x attends over the positions of y.

    With positions as rows (X = x^T, Y = y^T, both (L, C)) this is the paper's Softmax(X Y^T / sqrt(C)) Y:
    scores[i, j] = <x[:, i], y[:, j]> / sqrt(C) (x queries, y keys), softmax over j (the keys), and output
    position i = sum_j weights[i, j] * y[:, j] (y values). Then dropout and a LayerNorm over the C channels
    of each output position (the transformer convention, independent of L).
    """

    def __init__(self, channels: int, length: int, dropout: float) -> None:
        super().__init__(channels, length, dropout)
        self.scale = 1.0 / math.sqrt(channels)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        values = y.transpose(1, 2)  # (B, L, C): one row per position of y
        weights = torch.softmax(torch.matmul(x.transpose(1, 2), y) * self.scale, dim=-1)  # (B, L_x, L_y)
        return self.norm(self.dropout(torch.matmul(weights, values))).transpose(1, 2)


class ConcatConv(FusionOperator):
    """Base of the concatenating operators: cat(x, y) over channels -> 1x1 Conv1d -> BatchNorm ->
    activation -> dropout.

    The conv has no bias: the BatchNorm shift plays the role of the paper's "+ b" (a bias before BN would
    get no gradient in training).
    """

    def __init__(self, channels: int, length: int, dropout: float, out_channels: int, activation: nn.Module) -> None:
        super().__init__(channels, length, dropout)
        self.conv = nn.Conv1d(2 * channels, out_channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = activation
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.forward_concat(self.concat(x, y))

    @staticmethod
    def concat(x: Tensor, y: Tensor) -> Tensor:
        """cat(x, y) over channels with positions as rows, (B, L, 2C): what :meth:`forward_concat` takes,
        so that operators sharing an input pair share one concat."""
        return torch.cat((x.transpose(1, 2), y.transpose(1, 2)), dim=2)

    def forward_concat(self, xy: Tensor) -> Tensor:
        """The operator on :meth:`concat` (B, L, 2C); returns (B, C_out, L), positions-as-rows in memory.

        The 1x1 conv runs as one matrix product over all B L positions and BatchNorm on the (B L, C)
        view (the same statistics per channel as on (B, C, L), computed several times faster on CPU).
        """
        b, length, _ = xy.shape
        out = F.linear(xy, self.conv.weight.squeeze(-1))
        out = self.dropout(self.act(self.bn(out.reshape(b * length, -1))))
        return out.view(b, length, -1).transpose(1, 2)


@register_operator("linear_glu")
class LinearGLU(ConcatConv):
    """GLU over channels of Conv1d(2C -> 2C)(cat(x, y)): first C channels times the sigmoid of the last C.

    Generalises the paper's X W1 * sigmoid(Y W2) (the block-diagonal case) so either modality can gate.
    """

    def __init__(self, channels: int, length: int, dropout: float) -> None:
        super().__init__(channels, length, dropout, 2 * channels, nn.GLU(dim=1))


@register_operator("concat_fc")
class ConcatFC(ConcatConv):
    """ReLU(W cat(x, y) + b), the MFAS fusion, with W a 1x1 Conv1d(2C -> C) and b folded into BatchNorm."""

    def __init__(self, channels: int, length: int, dropout: float) -> None:
        super().__init__(channels, length, dropout, channels, nn.ReLU())


@register_operator("squeeze_excitation")
class SqueezeExcitation(FusionOperator):
    """x recalibrates the channels of y: gate = sigmoid(Linear(mean over L of x)), output gate * y.

    No ReLU before the sigmoid (the authors' code has one, which pins every gate to [0.5, 1) so x could
    never suppress a channel of y); here gates span (0, 1).
    """

    def __init__(self, channels: int, length: int, dropout: float) -> None:
        super().__init__(channels, length, dropout)
        self.fc = nn.Linear(channels, channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=2)))  # (B, C)
        return self.dropout(gate.unsqueeze(-1) * y)


class _MishFunction(torch.autograd.Function):
    """Mish(v) = v tanh(softplus(v)) through one exp: with e = exp(v) and n = e (e + 2) = (1 + e)^2 - 1,
    tanh(log(1 + e)) = n / (n + 2). The derivative tanh(sp) + v (1 - tanh(sp)^2) sigmoid(v) reuses the
    saved tanh(sp). Same function as torch's mish (within float rounding) at about a third of its cost
    on CPU, where its softplus, tanh and the recomputation in its backward dominate a fusion step."""

    @staticmethod
    def forward(ctx, v: Tensor) -> Tensor:  # type: ignore[override]
        e = v.clamp(max=20.0).exp_()  # beyond 20, n / (n + 2) is 1 in float32 already
        n = e.add(2.0).mul_(e)
        tanh_sp = n.div_(n.add(2.0))
        ctx.save_for_backward(v, tanh_sp)
        return tanh_sp * v

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        v, tanh_sp = ctx.saved_tensors
        slope = tanh_sp.square().neg_().add_(1.0).mul_(torch.sigmoid(v)).mul_(v).add_(tanh_sp)
        return grad * slope


class FastMish(nn.Mish):
    """nn.Mish computed by :class:`_MishFunction`; traced for export (ONNX, TorchScript) it is the
    plain Mish op, so exported graphs keep their single Mish node."""

    def forward(self, input: Tensor) -> Tensor:
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return super().forward(input)
        return _MishFunction.apply(input)  # type: ignore[no-any-return]


@register_operator("concat_mish")
class ConcatMish(ConcatConv):
    """Mish(W cat(x, y)): like ConcatFC but keeps a smooth, non-zero response for negative inputs."""

    def __init__(self, channels: int, length: int, dropout: float) -> None:
        super().__init__(channels, length, dropout, channels, FastMish())
