"""Data-parallel supernet training across processes started by ``torchrun`` (torch.distributed).

Every rank holds the whole supernet and samples the same subnets each step (they depend only on
``(seed, epoch, step)``, see :func:`harmonic_nas.runtime.step_rng`). Each global batch of
``supernet.batch_size`` samples is cut into contiguous shards, one per rank, and the result equals the
single-process run up to float rounding (on CPU; on CUDA the dropout masks differ, see below):

* **Gradients: one all-reduce per step by hand, not DistributedDataParallel.** A sandwich step runs
  2 + N forward/backward passes (max, min, N random subnets) on the same batch and accumulates their
  gradients before a single optimizer step. Under DDP every backward all-reduces unless it runs inside
  ``no_sync()``; the parameters a subnet reaches change from subnet to subnet (active depth, SE units,
  kernel transforms), so DDP would need ``find_unused_parameters=True``, which walks the autograd graph
  after every forward and makes the one synchronised backward reduce buckets that mix fresh and
  earlier-accumulated gradients; and with its default ``broadcast_buffers`` it broadcasts every BN
  buffer before each of the 2 + N forwards. What DDP buys, overlapping communication with the
  backward, would apply to the last of the 2 + N backwards only. So every rank back-propagates its
  shard's losses scaled by ``shard size / global batch`` and, after the last subnet,
  :meth:`Dist.all_reduce_grads` sums all gradients in one flat buffer: one collective per step, exact
  for unequal shards, and a parameter no subnet of the step reached keeps ``grad None`` on every rank
  (so Adam skips it exactly as in one process).
* **BatchNorm normalises over the global batch** (:class:`SyncBatchNorm`-like, but for the elastic BN
  that slices its channels): the per-channel sum and sum of squares of every shard are all-reduced in
  the forward, and, the all-reduce being differentiable, their gradients in the backward. Per-rank BN
  would normalise over ``batch / world`` samples, so the result would depend on the world size, and the
  running statistics would differ from rank to rank.
* **Dropout draws the global batch's mask** and keeps the shard's rows, so the random stream advances
  on every rank exactly as in one process (the mask equals the single-process one on CPU, where
  ``F.dropout`` is a plain ``bernoulli_``; CUDA's fused dropout kernel draws differently).

Both replacements are active only inside :func:`training_shard` (the trainer's forward passes): BN
recalibration and evaluation, which run on rank 0 alone, see the ordinary modules.

Rank 0 owns the run directory: it reads and writes checkpoints, metrics and the final supernet, and
evaluates; :meth:`Dist.on_main` runs such a piece on rank 0 and hands its result (or its error) to
every rank. A checkpoint holds no rank-specific state, so a run resumes with any world size.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as tdist
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from harmonic_nas.errors import UserError

T = TypeVar("T")

# Rank 0 alone evaluates and writes files while the other ranks wait; the final evaluation of several
# subnets on a large validation split can take many minutes on a CPU.
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class Shard:
    """This rank's rows ``[offset, offset + size)`` of a global batch of ``total`` samples."""

    offset: int
    size: int
    total: int

    @property
    def weight(self) -> float:
        """Share of the global batch: the factor on this rank's mean loss (gradients are then summed)."""
        return self.size / self.total


def shard_bounds(total: int, rank: int, world: int) -> tuple[int, int]:
    """Contiguous split of ``total`` rows into ``world`` parts whose sizes differ by at most one."""
    base, extra = divmod(total, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


@dataclass
class Dist:
    """This process's place in the job; ``world_size == 1`` is the plain single-process run, where every
    method is a no-op (or runs its function directly)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, total: int) -> Shard:
        start, stop = shard_bounds(total, self.rank, self.world_size)
        return Shard(start, stop - start, total)

    # -- collectives (no-ops in a single process)
    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        tdist.broadcast_object_list(box, src=0)
        return box[0]  # type: ignore[return-value]

    def on_main(self, fn: Callable[[], T], *, all_threads: bool = False) -> T:
        """Run ``fn`` on rank 0 only and return its result on every rank; a UserError (or a crash) on
        rank 0 is raised on every rank, so no rank is left waiting in a collective. ``all_threads``: on
        CPU, rank 0 borrows the intra-op threads of the local ranks that are waiting meanwhile."""
        if not self.enabled:
            return fn()
        outcome: tuple[str, Any] = ("ok", None)
        if self.is_main:
            try:
                with self._borrowed_threads(all_threads):
                    outcome = ("ok", fn())
            except UserError as exc:
                outcome = ("user", str(exc))
            except BaseException as exc:
                self.broadcast(("crash", f"{type(exc).__name__}: {exc}"))
                raise
        kind, value = self.broadcast(outcome)
        if kind == "user":
            raise UserError(value)
        if kind == "crash":
            raise RuntimeError(f"rank 0 failed: {value}")
        return value  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def _borrowed_threads(self, enabled: bool) -> Iterator[None]:
        if not (enabled and self.device.type == "cpu" and self.local_world_size > 1):
            yield
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(threads * self.local_world_size)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def all_reduce_grads(self, params: Iterator[nn.Parameter] | list[nn.Parameter]) -> None:
        """Sum the gradients of every rank in one flat buffer per dtype. The set of parameters with a
        gradient is the same on every rank (same subnets), and those without one stay ``None``."""
        if not self.enabled:
            return
        grads = [p.grad for p in params if p.grad is not None]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for grad in grads:
            by_dtype.setdefault(grad.dtype, []).append(grad)
        for group in by_dtype.values():
            flat = _flatten_dense_tensors(group)
            tdist.all_reduce(flat)
            for grad, reduced in zip(group, _unflatten_dense_tensors(flat, group)):
                grad.copy_(reduced)

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        tdist.all_reduce(tensor)
        return tensor.cpu().tolist()

    def broadcast_module(self, module: nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank (one flat broadcast per dtype)."""
        if not self.enabled:
            return
        tensors = [t for t in list(module.parameters()) + list(module.buffers())]
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for tensor in tensors:
            by_dtype.setdefault(tensor.dtype, []).append(tensor)
        with torch.no_grad():
            for group in by_dtype.values():
                flat = _flatten_dense_tensors([t.data for t in group])
                tdist.broadcast(flat, src=0)
                for tensor, value in zip(group, _unflatten_dense_tensors(flat, group)):
                    tensor.copy_(value)

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def shutdown(self) -> None:
        """Destroy the process group while the interpreter is fully alive (see :func:`from_env`)."""
        if self.enabled and tdist.is_initialized():
            tdist.destroy_process_group()


def from_env(device: torch.device) -> Dist:
    """The job torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR ...),
    with its process group initialised: gloo for CPU, nccl for CUDA, where each process uses
    ``cuda:LOCAL_RANK``. Without WORLD_SIZE > 1 it is the single-process run on ``device``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible): "
                "use --nproc_per_node at most the number of GPUs"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise UserError(f"device {device}: distributed training supports cpu (gloo) and cuda (nccl)")
    if not tdist.is_initialized():
        # torch._dynamo, imported by the first optimizer, keeps references to a process group that exists
        # when it is imported, and destroy_process_group does not drop them: the group (and gloo's
        # threads) would then outlive shutdown() and be torn down during interpreter exit, where gloo
        # sometimes aborts the process (SIGABRT) after the job succeeded. Imported first, it holds none.
        importlib.import_module("torch._dynamo")

        kwargs: dict[str, Any] = {"backend": backend, "timeout": TIMEOUT}
        if backend == "nccl" and "device_id" in inspect.signature(tdist.init_process_group).parameters:
            kwargs["device_id"] = device  # binds the communicator to this GPU (torch >= 2.3)
        tdist.init_process_group(**kwargs)
    return Dist(rank, world, local_rank, local_world, device)


# ---------------------------------------------------------------- global-batch BatchNorm and dropout

_active: Shard | None = None


@contextlib.contextmanager
def training_shard(shard: Shard | None) -> Iterator[None]:
    """Within this block the prepared BN and dropout modules act on the global batch of ``shard``."""
    global _active
    previous, _active = _active, shard
    try:
        yield
    finally:
        _active = previous


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over ranks: every rank's output is the sum, so the gradient reaching a rank's
    input is the sum of the output gradients of all ranks (the same all-reduce, backwards)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        out = tensor.clone()
        tdist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004
        out = grad.contiguous().clone()
        tdist.all_reduce(out)
        return out


class _GlobalBatchNorm:
    """Mixin before a ``_BatchNorm`` class: in train mode inside :func:`training_shard`, normalise over
    the global batch. Uses the first ``x.shape[1]`` channels (elastic BN), like the layers it replaces."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn: Any = self
        if _active is None or not bn.training:
            return super().forward(x)  # type: ignore[misc,no-any-return]
        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=dims, correction=0)
        n = x.numel() // c
        # The shard statistics combine exactly in float64: sum, sum of squares, count.
        mean64 = mean.double()
        local = torch.cat([mean64 * n, (var.double() + mean64 * mean64) * n, mean64.new_tensor([float(n)])])
        total = _AllReduceSum.apply(local)
        count = total[-1]
        g_mean64 = total[:c] / count
        g_mean = g_mean64.float()
        g_var = (total[c : 2 * c] / count - g_mean64 * g_mean64).clamp_min(0).float()
        if bn.track_running_stats and bn.running_mean is not None:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                factor = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
                bessel = torch.where(count > 1, count / (count - 1).clamp_min(1), torch.ones_like(count))
                unbiased = g_var * bessel.float()
                bn.running_mean[:c].mul_(1 - factor).add_(g_mean.detach(), alpha=factor)
                bn.running_var[:c].mul_(1 - factor).add_(unbiased.detach(), alpha=factor)
        scale = torch.rsqrt(g_var + bn.eps)
        shift = -g_mean * scale
        if bn.affine:
            scale = scale * bn.weight[:c]
            shift = shift * bn.weight[:c] + bn.bias[:c]
        shape = [1, c] + [1] * (x.dim() - 2)
        return torch.addcmul(shift.view(shape), xf, scale.view(shape)).to(x.dtype)


class _GlobalBatchDropout:
    """Mixin before ``nn.Dropout``: inside :func:`training_shard`, draw the mask of the whole global batch
    (as one process would) and apply this shard's rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        drop: Any = self
        shard = _active
        if shard is None or not drop.training or drop.p == 0.0:
            return super().forward(x)  # type: ignore[misc,no-any-return]
        if drop.p == 1.0:
            return x * 0.0
        channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        noise = torch.empty((shard.total, *x.shape[1:]), dtype=x.dtype, device=x.device, memory_format=fmt)
        noise.bernoulli_(1 - drop.p).div_(1 - drop.p)  # the same draws as ATen's dropout on CPU
        return x * noise[shard.offset : shard.offset + x.shape[0]]


_classes: dict[tuple[type, type], type] = {}


def _global_class(mixin: type, cls: type) -> type:
    """``mixin`` + ``cls`` as a module-level class (so that pickling and deep copies find it)."""
    key = (mixin, cls)
    if key not in _classes:
        name = f"GlobalBatch{cls.__name__}"
        made = type(name, (mixin, cls), {"__module__": __name__, "__qualname__": name})
        globals()[name] = made
        _classes[key] = made
    return _classes[key]


def prepare_model(model: nn.Module) -> nn.Module:
    """Make every BatchNorm and Dropout of ``model`` global-batch aware (in place; parameters, buffers
    and state-dict keys unchanged; outside :func:`training_shard` they behave exactly as before)."""
    for module in model.modules():
        cls = type(module)
        if issubclass(cls, (_GlobalBatchNorm, _GlobalBatchDropout)):
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.__class__ = _global_class(_GlobalBatchNorm, cls)
        elif cls is nn.Dropout:
            module.__class__ = _global_class(_GlobalBatchDropout, cls)
    return model

