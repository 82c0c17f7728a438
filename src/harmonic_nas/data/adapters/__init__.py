"""Adapters: the paper's datasets in their public formats, read from the user's folder."""

from __future__ import annotations

from harmonic_nas.data.recipe import Recipe

ADAPTERS: dict[str, Recipe] = {}
