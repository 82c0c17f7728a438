"""The trained-supernet file: weights plus everything needed to rebuild the network without the
experiment config (search space, input shape, classes, task), so later stages and other machines
can load it on its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import TypeAdapter, ValidationError
from torch import nn

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config.schema import BackboneSpace
from harmonic_nas.data import ModalitySpec, MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.layout import SupernetFiles
from harmonic_nas.torchfile import FileFormat

SUPERNET_FILE = FileFormat("harmonic-nas-supernet/1", "supernet file")


def save_supernet(
    files: SupernetFiles,
    model: nn.Module,
    space_cfg: BackboneSpace,
    spec: ModalitySpec,
    dataset: MultimodalDataset,
    metrics: dict[str, Any],
) -> None:
    SUPERNET_FILE.save(
        {
            "modality": files.modality,
            "space": space_cfg.model_dump(mode="json"),
            "kind": spec.kind,
            "input_shape": list(spec.shape),
            "num_classes": dataset.num_classes,
            "task": dataset.task,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "metrics": metrics,
        },
        files.supernet,
    )


def load_supernet(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained supernet from its file; returns (model in eval mode, the file's metadata)."""
    data = SUPERNET_FILE.load(path)
    try:
        space_cfg = TypeAdapter(BackboneSpace).validate_python(data["space"])
    except ValidationError as exc:
        raise UserError(f"{path}: stored search space is invalid: {exc.errors()[0]['msg']}") from None
    model = build_supernet(space_cfg, tuple(data["input_shape"]), data["num_classes"])
    model.load_state_dict(data["state_dict"])
    meta = {k: v for k, v in data.items() if k != "state_dict"}
    return model.to(device).eval(), meta
