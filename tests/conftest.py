"""Shared test settings: one intra-op thread (deterministic, and fair on a shared 2-core machine)."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
