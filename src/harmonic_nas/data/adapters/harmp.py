"""Harm-P (MOMENTA): {train,val,test}.jsonl annotation files whose records carry id, image, text and
labels (the first label is the harmfulness: not / somewhat / very harmful), plus an image folder.
Images are resized; text goes through the pluggable text encoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from harmonic_nas.data.adapters.common import file_fingerprint, no_empty_class, require
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.options import Options
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.data.text import Encoder, encode, encoder_dim, encoder_version
from harmonic_nas.errors import UserError

CLASSES = ["not harmful", "somewhat harmful", "very harmful"]
SPLIT_FILES = {"train": ("train.jsonl",), "val": ("val.jsonl", "dev.jsonl"), "test": ("test.jsonl",)}


class HarmPOptions(Options):
    image_size: int = Field(112, ge=8, le=512, description="Images are resized to 3 x S x S.")
    text_encoder: Encoder = "minilm"
    text_dim: int = Field(256, ge=8, description="Size of the hashing encoder's vectors (minilm: 384).")


def _annotations(root: Path) -> Path:
    for folder in (root, root / "annotations", root / "defaults" / "annotations"):
        if (folder / "train.jsonl").is_file():
            return folder
    raise UserError(f"{root / 'annotations' / 'train.jsonl'}: missing Harm-P annotations (train/val/test.jsonl)")


def _images(root: Path, annotations: Path) -> Path:
    for folder in (root / "images", annotations.parent / "images", annotations / "images"):
        if folder.is_dir():
            return folder
    raise UserError(f"{root / 'images'}: missing Harm-P image folder")


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise UserError(f"{path}:{number}: invalid JSON ({exc})") from None
        for key in ("image", "text", "labels"):
            if key not in record:
                raise UserError(f"{path}:{number}: record lacks {key!r}")
        labels = record["labels"]
        first = (labels[0] if isinstance(labels, list) and labels else labels)
        if not isinstance(first, str) or first.strip().lower() not in CLASSES:
            raise UserError(f"{path}:{number}: first label {first!r} is none of {', '.join(CLASSES)}")
        record["_class"] = CLASSES.index(first.strip().lower())
        record["_where"] = f"{path}:{number}"
        records.append(record)
    if not records:
        raise UserError(f"{path}: no records")
    return records


def _read_image(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except FileNotFoundError:
        raise UserError(f"{path}: missing image") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise UserError(f"{path}: unreadable image ({exc})") from None
    return np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0


class HarmP(Recipe):
    name = "harmp"
    modalities = ("image", "text")
    version = 1
    needs_path = True
    description = "Harm-P / MOMENTA (jsonl annotations + images), 3 classes"
    OptionsModel = HarmPOptions

    def detect(self, path: Path) -> bool:
        try:
            _annotations(path)
            return True
        except UserError:
            return False

    def _split_files(self, root: Path) -> dict[str, Path]:
        folder = _annotations(root)
        out = {}
        for split, names in SPLIT_FILES.items():
            out[split] = next((folder / n for n in names if (folder / n).is_file()), folder / names[0])
            require(out[split], f"Harm-P {split} annotations")
        return out

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        assert path is not None
        files = self._split_files(path)
        return {"annotations": file_fingerprint(list(files.values())), "text_encoder": encoder_version(options.text_encoder, options.text_dim)}

    def licences(self, options: Any) -> list[str]:
        return ["Harm-P (Pramanick et al. 2021, MOMENTA): research use, your copy"]

    def build(self, ctx: BuildContext) -> None:
        assert ctx.path is not None
        opts: HarmPOptions = ctx.options
        files = self._split_files(ctx.path)
        images_dir = _images(ctx.path, next(iter(files.values())).parent)
        records = {split: _records(path) for split, path in files.items()}
        dim = encoder_dim(opts.text_encoder, opts.text_dim)
        ctx.declare(
            {"image": ModalitySpec("image", (3, opts.image_size, opts.image_size)), "text": ModalitySpec("vector", (dim,))},
            task="multiclass", num_classes=len(CLASSES), class_names=CLASSES,
        )
        step = ctx.progress.step("reading Harm-P images", total=sum(len(r) for r in records.values()))
        for split, items in records.items():
            labels = np.array([r["_class"] for r in items])
            no_empty_class(np.bincount(labels, minlength=len(CLASSES)), files[split], CLASSES, split)
            out = ctx.writer.allocate(split, "image", (len(items), 3, opts.image_size, opts.image_size))
            for i, record in enumerate(items):
                out[i] = _read_image(images_dir / str(record["image"]), opts.image_size)
                step.advance()
            out.flush()
            del out
            ctx.writer.put(split, "text", encode([str(r["text"]) for r in items], opts.text_encoder, opts.text_dim))
            ctx.writer.put_targets(split, labels, "multiclass")
