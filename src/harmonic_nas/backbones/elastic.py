"""Weight-shared layers whose active width (and kernel) is chosen per forward by slicing stored weights."""

from __future__ import annotations

from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class _ElasticBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the first ``x.size(1)`` channels: affine parameters and running statistics are
    sliced, and in train mode the running statistics of the slice are updated in place."""

    _static_type: ClassVar[type[nn.modules.batchnorm._BatchNorm]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        mean, var = self.running_mean, self.running_var
        return F.batch_norm(
            x,
            None if mean is None else mean[:c],
            None if var is None else var[:c],
            self.weight[:c],
            self.bias[:c],
            self.training or mean is None,
            factor,
            self.eps,
        )

    def to_static(self, channels: int) -> nn.modules.batchnorm._BatchNorm:
        """A plain BatchNorm of the first ``channels`` channels (parameters and statistics copied)."""
        plain = self._static_type(
            channels, eps=self.eps, momentum=self.momentum, device=self.weight.device, dtype=self.weight.dtype
        )
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(plain, name).copy_(getattr(self, name)[:channels])
            plain.num_batches_tracked.copy_(self.num_batches_tracked)
        return plain


class ElasticBatchNorm2d(_ElasticBatchNorm, nn.BatchNorm2d):
    _static_type = nn.BatchNorm2d


class ElasticBatchNorm1d(_ElasticBatchNorm, nn.BatchNorm1d):
    _static_type = nn.BatchNorm1d


class ElasticDepthwiseConv(nn.Module):
    """Depthwise conv with elastic channels and kernel size (OFA's elastic kernel).

    Only the largest kernel is stored. A smaller kernel is the centre crop of the next larger
    (already transformed) kernel, flattened and multiplied by a learned per-layer matrix (identity at
    init), so that e.g. 3x3 is not forced to equal the middle of the 7x7 kernel it shares weights with.
    """

    def __init__(self, max_channels: int, kernels: Sequence[int], stride: int) -> None:
        super().__init__()
        self.kernels = sorted(kernels, reverse=True)
        self.stride = stride
        big = self.kernels[0]
        self.weight = nn.Parameter(torch.empty(max_channels, 1, big, big))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.transforms = nn.ParameterDict(
            {f"{src}to{dst}": nn.Parameter(torch.eye(dst * dst)) for src, dst in zip(self.kernels, self.kernels[1:])}
        )

    def kernel(self, channels: int, size: int) -> torch.Tensor:
        """The (channels, 1, size, size) weight of the subnet: crops through transforms down to ``size``."""
        weight = self.weight[:channels]
        for src, dst in zip(self.kernels, self.kernels[1:]):
            if src == size:
                break
            start = (src - dst) // 2
            crop = weight[:, :, start : start + dst, start : start + dst].reshape(channels, dst * dst)
            weight = F.linear(crop, self.transforms[f"{src}to{dst}"]).reshape(channels, 1, dst, dst)
        return weight

    def forward(self, x: torch.Tensor, size: int) -> torch.Tensor:
        channels = x.shape[1]
        return F.conv2d(x, self.kernel(channels, size), None, self.stride, size // 2, 1, channels)

    def to_static(self, channels: int, size: int) -> nn.Conv2d:
        conv = nn.Conv2d(
            channels, channels, size, self.stride, size // 2, groups=channels, bias=False,
            device=self.weight.device, dtype=self.weight.dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(self.kernel(channels, size))
        return conv


def permute_(
    tensor: torch.Tensor, dim: int, order: torch.Tensor, optimizer: torch.optim.Optimizer | None = None
) -> None:
    """Reorder ``tensor`` along ``dim`` in place (keeping the Parameter object, its gradient and every
    optimizer state tensor of its shape, e.g. Adam's exp_avg / exp_avg_sq, in step)."""
    with torch.no_grad():
        tensor.copy_(tensor.index_select(dim, order))
        if isinstance(tensor, nn.Parameter):
            if tensor.grad is not None:
                tensor.grad.copy_(tensor.grad.index_select(dim, order))
            if optimizer is not None:
                for value in optimizer.state.get(tensor, {}).values():
                    if torch.is_tensor(value) and value.shape == tensor.shape:
                        value.copy_(value.index_select(dim, order))
