"""Where and how computation runs: device choice, thread count, per-step RNGs. Device-agnostic by design:
everything else asks this module for a torch.device instead of hard-coding 'cpu'."""

from __future__ import annotations

import ctypes
import random
import sys

import torch

from harmonic_nas.errors import UserError


def resolve_device(name: str) -> torch.device:
    """A torch.device for ``name`` ('cpu', 'cuda', 'cuda:1', 'mps'), or a clear error if it is absent."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"device {name!r}: expected cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but torch.cuda.is_available() is False (CPU build of torch?)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} requested but MPS is not available")
    return device


def configure_threads(threads: int) -> None:
    """Pin intra-op threads (timings and throughput depend on it) and flush denormals (slow on CPUs)."""
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)


def step_rng(*parts: object) -> random.Random:
    """A Python RNG determined only by ``parts`` (e.g. seed, epoch, step): the same on every resume
    and on every distributed rank, so sampled subnets never depend on history."""
    return random.Random("-".join(str(p) for p in parts))


def release_freed_memory() -> None:
    """Give the heap that freed tensors left behind back to the OS (glibc's malloc_trim; a no-op elsewhere).

    With the recommended MALLOC_TRIM_THRESHOLD_ glibc never does it by itself, so a process that trained
    supernets would keep that peak through the search that follows (about 2 GB in the demo)."""
    if not sys.platform.startswith("linux"):
        return
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # None on a libc without it (musl)
    if trim is not None:
        trim(0)
