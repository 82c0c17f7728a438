"""Elastic MobileNetV3 supernet for 2-D inputs (images, spectrograms) with elastic kernel, expand
ratio and depth (the once-for-all mechanics), plus extraction of any subnet to a plain network."""

from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from harmonic_nas.backbones.common import BackboneOutput, make_divisible
from harmonic_nas.backbones.elastic import ElasticBatchNorm2d, ElasticDepthwiseConv, permute_
from harmonic_nas.backbones.mbv3_static import ACTIVATIONS, MBConv, SqueezeExcite, StaticMBV3
from harmonic_nas.config.schema import MBV3Space
from harmonic_nas.space.mbv3 import MBV3Arch, MBV3ArchSpace

_ACT_FN: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "hswish": F.hardswish}


def _conv_bn_act(cin: int, cout: int, kernel: int, stride: int, act: str) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout), ACTIVATIONS[act]()
    )


def _sliced_conv(src: torch.Tensor, rows: int, cols: int, bias: torch.Tensor | None = None) -> nn.Conv2d:
    """A 1x1 conv holding a copy of ``src[:rows, :cols]`` (and ``bias[:rows]``)."""
    conv = nn.Conv2d(cols, rows, 1, bias=bias is not None, device=src.device, dtype=src.dtype)
    with torch.no_grad():
        conv.weight.copy_(src[:rows, :cols])
        if bias is not None:
            conv.bias.copy_(bias[:rows])
    return conv


class ElasticMBConv(nn.Module):
    """MBConv whose middle width (expand ratio) and depthwise kernel are chosen by :meth:`set_active`.

    Active middle channels are always the first ``mid`` ones, which :meth:`sort_channels` keeps the
    most important.
    """

    def __init__(
        self, cin: int, cout: int, stride: int, kernels: list[int], expands: list[float], se: bool, act: str
    ) -> None:
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride
        self.residual = stride == 1 and cin == cout
        self.act_name = act
        self.act = _ACT_FN[act]
        max_mid = self.mid_channels(max(expands))
        self.expand = nn.Conv2d(cin, max_mid, 1, bias=False)
        self.bn1 = ElasticBatchNorm2d(max_mid)
        self.depthwise = ElasticDepthwiseConv(max_mid, kernels, stride)
        self.bn2 = ElasticBatchNorm2d(max_mid)
        self.se_reduce: nn.Conv2d | None = None
        self.se_expand: nn.Conv2d | None = None
        if se:
            max_red = make_divisible(max_mid // 4)
            self.se_reduce = nn.Conv2d(max_mid, max_red, 1)
            self.se_expand = nn.Conv2d(max_red, max_mid, 1)
        self.project = nn.Conv2d(max_mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.set_active(max(kernels), max(expands))

    def mid_channels(self, expand: float) -> int:
        return make_divisible(round(self.cin * expand))

    def set_active(self, kernel: int, expand: float) -> None:
        self.kernel = kernel
        self.mid = self.mid_channels(expand)
        self.red = make_divisible(self.mid // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.mid
        out = self.act(self.bn1(F.conv2d(x, self.expand.weight[:mid])))
        out = self.act(self.bn2(self.depthwise(out, self.kernel)))
        if self.se_reduce is not None and self.se_expand is not None:
            red = self.red
            gate = F.adaptive_avg_pool2d(out, 1)
            gate = F.relu(F.conv2d(gate, self.se_reduce.weight[:red, :mid], self.se_reduce.bias[:red]))
            gate = F.hardsigmoid(F.conv2d(gate, self.se_expand.weight[:mid, :red], self.se_expand.bias[:mid]))
            out = out * gate
        out = self.bn3(F.conv2d(out, self.project.weight[:, :mid]))
        return out + x if self.residual else out

    def sort_channels(self, optimizer: torch.optim.Optimizer | None) -> None:
        """Middle channels in descending L1 importance of their projection weights (SE units likewise)."""
        importance = self.project.weight.detach().abs().sum(dim=(0, 2, 3))
        order = torch.argsort(importance, descending=True, stable=True)
        targets: list[tuple[torch.Tensor, int]] = [
            (self.expand.weight, 0), (self.depthwise.weight, 0), (self.project.weight, 1)
        ]
        for bn in (self.bn1, self.bn2):
            targets += [(bn.weight, 0), (bn.bias, 0), (bn.running_mean, 0), (bn.running_var, 0)]
        if self.se_reduce is not None and self.se_expand is not None:
            targets += [(self.se_reduce.weight, 1), (self.se_expand.weight, 0), (self.se_expand.bias, 0)]
        for tensor, dim in targets:
            permute_(tensor, dim, order, optimizer)
        if self.se_reduce is not None and self.se_expand is not None:
            # the SE hidden width shrinks with mid too: keep its units in importance order as well
            se_importance = self.se_expand.weight.detach().abs().sum(dim=(0, 2, 3))
            se_order = torch.argsort(se_importance, descending=True, stable=True)
            for tensor, dim in ((self.se_reduce.weight, 0), (self.se_reduce.bias, 0), (self.se_expand.weight, 1)):
                permute_(tensor, dim, se_order, optimizer)

    def to_static(self, kernel: int, expand: float) -> MBConv:
        mid = self.mid_channels(expand)
        red = make_divisible(mid // 4)
        act = ACTIVATIONS[self.act_name]
        expand_conv = _sliced_conv(self.expand.weight, mid, self.cin)
        se = None
        if self.se_reduce is not None and self.se_expand is not None:
            se = SqueezeExcite(
                _sliced_conv(self.se_reduce.weight, red, mid, self.se_reduce.bias),
                _sliced_conv(self.se_expand.weight, mid, red, self.se_expand.bias),
            )
        return MBConv(
            nn.Sequential(expand_conv, self.bn1.to_static(mid), act()),
            nn.Sequential(self.depthwise.to_static(mid, kernel), self.bn2.to_static(mid), act()),
            se,
            nn.Sequential(_sliced_conv(self.project.weight, self.cout, mid), copy.deepcopy(self.bn3)),
            self.residual,
        )


class ElasticMBV3(nn.Module):
    """Supernet of every arch of an :class:`MBV3Space`; ``forward`` runs the subnet set by :meth:`set_active`.

    Taps are the feature maps after the last active block of every stage.
    """

    def __init__(self, space_cfg: MBV3Space, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.space = MBV3ArchSpace(space_cfg)
        self.in_channels, self.num_classes = in_channels, num_classes
        stem_width = make_divisible(space_cfg.stem_width * space_cfg.width_mult)
        self.stage_widths = [make_divisible(s.width * space_cfg.width_mult) for s in space_cfg.stages]
        head_width = make_divisible(space_cfg.head_width * space_cfg.width_mult)
        self.stem = _conv_bn_act(in_channels, stem_width, 3, space_cfg.stem_stride, "hswish")
        stages = []
        cin = stem_width
        for stage, cout in zip(space_cfg.stages, self.stage_widths):
            blocks = [
                ElasticMBConv(
                    cin if i == 0 else cout, cout, stage.stride if i == 0 else 1,
                    self.space.kernels, self.space.expands, stage.se, stage.act,
                )
                for i in range(self.space.max_depth)
            ]
            stages.append(nn.ModuleList(blocks))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.head = _conv_bn_act(cin, head_width, 1, 1, "hswish")
        self.dropout = nn.Dropout(space_cfg.dropout)
        self.classifier = nn.Linear(head_width, num_classes)
        self._init_weights()
        self.set_active(self.space.max())

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def set_active(self, arch: MBV3Arch) -> None:
        for s, blocks in enumerate(self.stages):
            for i, block in enumerate(blocks):
                j = self.space.slot(s, i)
                block.set_active(arch.ks[j], arch.e[j])
        self.depths = arch.d
        self.active_arch = arch

    def forward(self, x: torch.Tensor) -> BackboneOutput:
        x = self.stem(x)
        taps = []
        for blocks, depth in zip(self.stages, self.depths):
            for block in blocks[:depth]:
                x = block(x)
            taps.append(x)
        x = F.adaptive_avg_pool2d(self.head(x), 1).flatten(1)
        return BackboneOutput(taps, self.classifier(self.dropout(x)))

    def sort_channels(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Importance-sort every block's middle channels (function of the max subnet unchanged).

        Pass the optimizer to permute its per-parameter state (Adam moments) the same way, so training
        continues as if nothing moved.
        """
        for blocks in self.stages:
            for block in blocks:
                block.sort_channels(optimizer)

    def extract(self, arch: MBV3Arch) -> StaticMBV3:
        """A plain network equal to subnet ``arch`` (weights copied; the supernet's active arch is untouched)."""
        stages = []
        for s, blocks in enumerate(self.stages):
            slots = [self.space.slot(s, i) for i in range(arch.d[s])]
            active = [blocks[i].to_static(arch.ks[j], arch.e[j]) for i, j in enumerate(slots)]
            stages.append(nn.Sequential(*active))
        static = StaticMBV3(
            copy.deepcopy(self.stem), stages, copy.deepcopy(self.head), self.dropout.p, copy.deepcopy(self.classifier)
        )
        return static.train(self.training)

    def tap_channels(self, arch: MBV3Arch) -> list[int]:
        return list(self.stage_widths)
