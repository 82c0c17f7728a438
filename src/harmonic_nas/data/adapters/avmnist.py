"""AV-MNIST as released with MFAS / MultiBench: numpy arrays of images (N, 28, 28) or (N, 784),
audio spectrograms (N, 112, 112) and labels (N,), train and test; validation is held out of train
(the last 5000 samples, as MultiBench does, or a share for smaller copies). MultiBench names the image
folder ``image/``, MFAS's own loader ``images/``: both are read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from harmonic_nas.data.adapters.common import (
    as_2d_input, class_count, class_labels, file_fingerprint, first_existing, load_npy, no_empty_class, same_length,
)
from harmonic_nas.data.base import ModalitySpec
from harmonic_nas.data.options import Options
from harmonic_nas.data.recipe import BuildContext, Recipe
from harmonic_nas.errors import UserError


class AVMNISTOptions(Options):
    val_size: int | None = Field(None, ge=1, description="Validation samples taken from the end of train (default 5000, or 1/12 of a small train).")


def _files(root: Path, split: str) -> dict[str, list[Path]]:
    """Accepted names: MultiBench's image/ (MFAS: images/) and audio/ folders, or flat files."""
    return {
        "image": [
            root / "image" / f"{split}_data.npy", root / "images" / f"{split}_data.npy",
            root / f"{split}_data.npy", root / f"{split}_image.npy",
        ],
        "audio": [root / "audio" / f"{split}_data.npy", root / f"{split}_audio.npy"],
        "labels": [root / f"{split}_labels.npy", root / "image" / f"{split}_labels.npy"],
    }


class AVMNIST(Recipe):
    name = "avmnist"
    modalities = ("image", "audio")
    version = 1
    needs_path = True
    description = "AV-MNIST numpy release (image/ or images/, audio/, *_labels.npy)"
    OptionsModel = AVMNISTOptions

    def detect(self, path: Path) -> bool:
        return any(p.exists() for p in _files(path, "train")["audio"])

    def _paths(self, root: Path) -> dict[str, dict[str, Path]]:
        return {
            split: {key: first_existing(names, f"AV-MNIST {split} {key}") for key, names in _files(root, split).items()}
            for split in ("train", "test")
        }

    def sources(self, options: Any, path: Path | None) -> dict[str, str]:
        assert path is not None
        paths = [p for split in self._paths(path).values() for p in split.values()]
        return {"files": file_fingerprint(paths)}

    def licences(self, options: Any) -> list[str]:
        return ["AV-MNIST (MFAS / MultiBench): the licence of your copy (MNIST CC BY-SA 3.0, FSDD CC BY-SA 4.0)"]

    def build(self, ctx: BuildContext) -> None:
        assert ctx.path is not None
        paths = self._paths(ctx.path)
        loaded: dict[str, dict[str, np.ndarray]] = {}
        for split, files in paths.items():
            image = as_2d_input(load_npy(files["image"]), files["image"], channels=1)
            audio = as_2d_input(load_npy(files["audio"]), files["audio"], channels=1)
            labels = class_labels(load_npy(files["labels"]), files["labels"])
            same_length({files["image"]: image, files["audio"]: audio, files["labels"]: labels})
            loaded[split] = {"image": image, "audio": audio, "labels": labels}
        for key in ("image", "audio"):
            train_shape, test_shape = loaded["train"][key].shape[1:], loaded["test"][key].shape[1:]
            if train_shape != test_shape:
                raise UserError(f"{paths['test'][key]}: wrong shape {test_shape} per sample, train has {train_shape}")
        n_train = len(loaded["train"]["labels"])
        num_classes = class_count({paths[s]["labels"]: loaded[s]["labels"] for s in loaded}, n_train)
        names = [str(i) for i in range(num_classes)]
        n_val = ctx.options.val_size or (5000 if n_train > 20000 else max(1, n_train // 12))
        if n_val >= n_train:
            raise UserError(f"{paths['train']['labels']}: val_size={n_val} leaves no training samples of {n_train}")
        splits = {
            "train": {k: v[: n_train - n_val] for k, v in loaded["train"].items()},
            "val": {k: v[n_train - n_val :] for k, v in loaded["train"].items()},
            "test": loaded["test"],
        }
        ctx.declare(
            {"image": ModalitySpec("image", tuple(loaded["train"]["image"].shape[1:])),
             "audio": ModalitySpec("audio", tuple(loaded["train"]["audio"].shape[1:]))},
            task="multiclass", num_classes=num_classes, class_names=names,
        )
        step = ctx.progress.step("copying AV-MNIST arrays", total=3)
        for split, arrays in splits.items():
            no_empty_class(np.bincount(arrays["labels"], minlength=num_classes), paths["train" if split != "test" else "test"]["labels"], names, split)
            ctx.writer.put(split, "image", arrays["image"])
            ctx.writer.put(split, "audio", arrays["audio"])
            ctx.writer.put_targets(split, arrays["labels"], "multiclass")
            step.advance()
