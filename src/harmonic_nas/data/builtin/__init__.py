"""Builtin datasets: real data from packages installed at set-up time, no download at run time."""

from __future__ import annotations

from harmonic_nas.data.builtin.av_digits import AVDigits
from harmonic_nas.data.builtin.emoji import EmojiDataset
from harmonic_nas.data.builtin.tuxpaint import TuxPaint
from harmonic_nas.data.recipe import Recipe

BUILTINS: dict[str, Recipe] = {recipe.name: recipe for recipe in (AVDigits(), EmojiDataset(), TuxPaint())}
