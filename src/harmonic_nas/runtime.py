"""Where and how computation runs: device choice, thread count, per-step RNGs. Device-agnostic by design:
everything else asks this module for a torch.device instead of hard-coding 'cpu'."""

from __future__ import annotations

import ctypes
import random
import re
import sys
from typing import TYPE_CHECKING

from harmonic_nas.errors import UserError

if TYPE_CHECKING:
    import torch

# The devices resolve_device accepts (cuda also with an index, cuda:1). Kept here, torch-free, so the command
# line's --device lists and checks them without loading torch (torch is imported where a device is made).
DEVICE_CHOICES = ("cpu", "cuda", "cuda:N", "mps")
_DEVICE_NAME = re.compile(r"cpu|cuda(:\d+)?|mps")


def is_device_name(name: str) -> bool:
    """Whether ``name`` is one of DEVICE_CHOICES (cuda:N with any index), present on this machine or not."""
    return _DEVICE_NAME.fullmatch(name) is not None


def resolve_device(name: str) -> torch.device:
    """A torch.device for ``name`` ('cpu', 'cuda', 'cuda:1', 'mps'), or a clear error if it is absent."""
    import torch

    if not is_device_name(str(name)):
        raise UserError(f"device {name!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but torch.cuda.is_available() is False (CPU build of torch?)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} requested but MPS is not available")
    return device


def configure_threads(threads: int) -> None:
    """Pin intra-op threads (timings and throughput depend on it) and flush denormals (slow on CPUs)."""
    import torch

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
