"""``tuxpaint``: image + text + speech, three modalities, from the Tux Paint stamps package: each stamp's
picture, its English description (through the text encoder) and a volunteer's spoken description
(French by default) as a log-mel spectrogram; classes are the stamp categories (animals, food ...).
It exists to show that nothing in the tool assumes two modalities."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from harmonic_nas.data import sources
from harmonic_nas.data.audio import SAMPLE_RATE, log_compress, mel_power, read_audio, trim_and_fit
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.images import square_rgb
from harmonic_nas.data.options import CatalogOptions
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.data.splits import stratified_split
from harmonic_nas.data.text import encode, encoder_dim, encoder_version
from harmonic_nas.errors import UserError


class TuxPaintOptions(CatalogOptions):
    speech_language: str = Field("fr", pattern=r"^[a-z]{2}(_[A-Z]{2})?$", description="Locale of the spoken descriptions.")
    spectrogram: int = Field(64, ge=16, le=128)
    duration: float = Field(3.0, gt=0.2, le=10.0, description="Seconds of speech kept (loudest part).")


@dataclass(frozen=True)
class Stamp:
    picture: Path
    speech: Path
    description: str
    category: str


def find_stamps(root: Path, language: str) -> list[Stamp]:
    """Stamps with a bitmap picture, a description and a spoken description in ``language``."""
    stamps = []
    for picture in sorted(root.rglob("*.png")):
        speech = picture.with_name(f"{picture.stem}_desc_{language}.ogg")
        text = picture.with_suffix(".txt")
        if not speech.is_file() or not text.is_file():
            continue
        lines = text.read_text(encoding="utf-8", errors="replace").splitlines()
        if not lines or not lines[0].strip():
            continue
        stamps.append(Stamp(picture, speech, lines[0].strip(), picture.relative_to(root).parts[0]))
    return stamps


class TuxPaint(Recipe):
    name = "tuxpaint"
    modalities = ("image", "text", "speech")
    version = 1
    description = "Tux Paint stamps: picture + description + spoken description (3 modalities)"
    OptionsModel = TuxPaintOptions

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        return {
            f"deb:{sources.TUXPAINT_PACKAGE}": sources.require_debian(sources.TUXPAINT_PACKAGE, "the tuxpaint dataset"),
            "text_encoder": encoder_version(options.text_encoder, options.text_dim),
        }

    def licences(self, options: Any) -> list[str]:
        return ["tuxpaint-stamps-default: GPL-2+ / CC BY-SA (Tux Paint contributors)"]

    def build(self, ctx: BuildContext) -> None:
        opts: TuxPaintOptions = ctx.options
        rng = np.random.default_rng(opts.seed)
        stamps = find_stamps(sources.TUXPAINT_STAMPS, opts.speech_language)
        if opts.max_items is not None and opts.max_items < len(stamps):
            stamps = [stamps[i] for i in np.sort(rng.choice(len(stamps), opts.max_items, replace=False))]
        categories, counts = np.unique([s.category for s in stamps], return_counts=True)
        kept = [str(c) for c, n in zip(categories, counts) if n >= opts.min_items]
        if len(kept) < 2:
            raise UserError(
                f"dataset 'tuxpaint': fewer than 2 categories have >= {opts.min_items} stamps with "
                f"'{opts.speech_language}' speech; lower min_items or change speech_language"
            )
        stamps = [s for s in stamps if s.category in kept]
        labels = np.array([kept.index(s.category) for s in stamps])
        length = int(opts.duration * SAMPLE_RATE)
        step = ctx.progress.step("reading stamps and spoken descriptions", total=len(stamps))
        pictures = np.empty((len(stamps), 3, opts.image_size, opts.image_size), dtype=np.float32)
        clips = np.empty((len(stamps), length), dtype=np.float32)
        for i, stamp in enumerate(stamps):
            try:
                with Image.open(stamp.picture) as image:
                    pictures[i] = square_rgb(image, opts.image_size)
            except (OSError, UnidentifiedImageError) as exc:
                raise UserError(f"{stamp.picture}: unreadable image ({exc})") from None
            clips[i] = trim_and_fit(read_audio(stamp.speech), length)
            step.advance()
        speech = log_compress(mel_power(clips, opts.spectrogram, opts.spectrogram))[:, None]
        step = ctx.progress.step(f"encoding descriptions ({opts.text_encoder})", total=1)
        texts = encode([s.description for s in stamps], opts.text_encoder, opts.text_dim)
        step.advance()
        ctx.declare(
            {
                "image": ModalitySpec("image", (3, opts.image_size, opts.image_size)),
                "text": ModalitySpec("vector", (encoder_dim(opts.text_encoder, opts.text_dim),)),
                "speech": ModalitySpec("audio", (1, opts.spectrogram, opts.spectrogram)),
            },
            task="multiclass", num_classes=len(kept), class_names=kept,
        )
        for split, index in stratified_split(labels, opts.val_fraction, opts.test_fraction, rng).items():
            ctx.writer.put(split, "image", pictures[index])
            ctx.writer.put(split, "text", texts[index])
            ctx.writer.put(split, "speech", speech[index])
            ctx.writer.put_targets(split, labels[index], "multiclass")
            ctx.writer.put_meta(split, "stamp", np.array([str(stamps[i].picture.relative_to(sources.TUXPAINT_STAMPS)) for i in index]))
