"""``emoji``: image + text. Noto Color Emoji glyphs rendered with Pillow, their Unicode names as text
(through the pluggable text encoder), classes = Unicode subgroups with >= 10 members (or the 9 groups):
text carries most of the signal and the picture adds some, the MM-IMDB pattern."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harmonic_nas.data import sources
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.images import square_rgb
from harmonic_nas.data.options import CatalogOptions
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.data.splits import stratified_split
from harmonic_nas.data.text import encode, encoder_dim, encoder_version
from harmonic_nas.errors import UserError

FONT_SIZE = 109  # the only size of the bitmap colour font
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}


class EmojiOptions(CatalogOptions):
    label: Literal["subgroup", "group"] = "subgroup"


@dataclass(frozen=True)
class Emoji:
    text: str
    name: str
    group: str
    subgroup: str


def read_emoji_test(path: Path) -> list[Emoji]:
    """Fully-qualified emoji without skin-tone variants or components, in file order."""
    items, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and "; fully-qualified" in line:
            _, _, comment = line.partition("#")
            parts = comment.strip().split(" ", 2)  # glyph, E<version>, name
            if len(parts) < 3 or group == "Component" or SKIN_TONES & set(parts[0]):
                continue
            items.append(Emoji(parts[0], parts[2], group, subgroup))
    return items


def render(glyph: str, font: ImageFont.FreeTypeFont, size: int) -> np.ndarray:
    canvas = Image.new("RGBA", (FONT_SIZE * 3, FONT_SIZE + 40), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), glyph, font=font, embedded_color=True)
    return square_rgb(canvas, size)


class EmojiDataset(Recipe):
    name = "emoji"
    modalities = ("image", "text")
    version = 1
    description = "Noto Color Emoji pictures + Unicode names, subgroups (or groups)"
    OptionsModel = EmojiOptions

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        return {
            "deb:fonts-noto-color-emoji": sources.require_debian("fonts-noto-color-emoji", "the emoji dataset"),
            "deb:unicode-data": sources.require_debian("unicode-data", "the emoji dataset"),
            "text_encoder": encoder_version(options.text_encoder, options.text_dim),
        }

    def licences(self, options: Any) -> list[str]:
        return ["Noto Color Emoji: SIL OFL 1.1 (Google)", "Unicode emoji-test.txt: Unicode licence"]

    def build(self, ctx: BuildContext) -> None:
        opts: EmojiOptions = ctx.options
        rng = np.random.default_rng(opts.seed)
        if not sources.EMOJI_TEST.is_file() or not sources.EMOJI_FONT.is_file():
            raise UserError(f"{sources.EMOJI_TEST} or {sources.EMOJI_FONT} missing: apt-get install unicode-data fonts-noto-color-emoji")
        items = read_emoji_test(sources.EMOJI_TEST)
        if opts.max_items is not None and opts.max_items < len(items):
            items = [items[i] for i in np.sort(rng.choice(len(items), opts.max_items, replace=False))]
        keys = [getattr(e, opts.label) for e in items]
        names, counts = np.unique(keys, return_counts=True)
        kept = [str(n) for n, c in zip(names, counts) if c >= opts.min_items]
        if len(kept) < 2:
            raise UserError(f"dataset 'emoji': fewer than 2 {opts.label}s have >= {opts.min_items} emoji; lower min_items")
        items = [e for e in items if getattr(e, opts.label) in kept]
        labels = np.array([kept.index(getattr(e, opts.label)) for e in items])
        font = ImageFont.truetype(str(sources.EMOJI_FONT), FONT_SIZE)
        step = ctx.progress.step("rendering emoji", total=len(items))
        pictures = np.empty((len(items), 3, opts.image_size, opts.image_size), dtype=np.float32)
        for i, item in enumerate(items):
            pictures[i] = render(item.text, font, opts.image_size)
            step.advance()
        step = ctx.progress.step(f"encoding names ({opts.text_encoder})", total=1)
        texts = encode([e.name for e in items], opts.text_encoder, opts.text_dim)
        step.advance()
        ctx.declare(
            {"image": ModalitySpec("image", (3, opts.image_size, opts.image_size)),
             "text": ModalitySpec("vector", (encoder_dim(opts.text_encoder, opts.text_dim),))},
            task="multiclass", num_classes=len(kept), class_names=kept,
        )
        for split, index in stratified_split(labels, opts.val_fraction, opts.test_fraction, rng).items():
            ctx.writer.put(split, "image", pictures[index])
            ctx.writer.put(split, "text", texts[index])
            ctx.writer.put_targets(split, labels[index], "multiclass")
            ctx.writer.put_meta(split, "emoji", np.array([items[i].text for i in index]))
