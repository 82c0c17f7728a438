"""Adapters: the paper's datasets in their public formats, read from the user's folder."""

from __future__ import annotations

from harmonic_nas.data.adapters.avmnist import AVMNIST
from harmonic_nas.data.adapters.harmp import HarmP
from harmonic_nas.data.adapters.mmimdb import MMIMDB
from harmonic_nas.data.adapters.soundmnist import SoundMNIST
from harmonic_nas.data.recipe import Recipe

ADAPTERS: dict[str, Recipe] = {recipe.name: recipe for recipe in (AVMNIST(), SoundMNIST(), MMIMDB(), HarmP())}
