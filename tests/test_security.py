"""No file a user can hand us runs code: every kind of file we read (supernet, fusion network, training
checkpoint, exported model.pt) is refused with one UserError line when it carries a pickled callable, and
the callable never runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import write_code_running_file

from harmonic_nas.errors import UserError
from harmonic_nas.export.formats import MODEL_FILE, load_model
from harmonic_nas.fusion.discrete import FUSION_FILE, load_fusion
from harmonic_nas.supernet.supernet_file import SUPERNET_FILE, load_supernet
from harmonic_nas.torchfile import load_checkpoint

LOADERS: dict[str, tuple[str, str, Any]] = {
    "supernet": ("image.pt", SUPERNET_FILE.tag, load_supernet),
    "fusion": ("0123abcd.pt", FUSION_FILE.tag, load_fusion),
    "checkpoint": ("image.ckpt", "", load_checkpoint),
    "model.pt": ("model.pt", MODEL_FILE.tag, load_model),
}


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_a_file_that_would_run_code_is_refused_before_it_runs(kind: str, tmp_path: Path) -> None:
    name, fmt, load = LOADERS[kind]
    path, marker = tmp_path / name, tmp_path / "pwned"
    write_code_running_file(path, marker, fmt)
    with pytest.raises(UserError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "refused" in message, message
    assert "posix.system" in message or "os.system" in message, message
    assert not marker.exists(), "the pickled command ran"


def test_supernet_checkpoint_resume_refuses_a_crafted_checkpoint(tmp_path: Path, mnist_pair: Any) -> None:
    """`train-supernet --resume` reads the .ckpt through the same loader."""
    import torch

    from helpers import small_config

    from harmonic_nas.supernet import SupernetTrainer

    cfg = small_config(tmp_path, epochs=1)
    trainer = SupernetTrainer(cfg, "image", mnist_pair, torch.device("cpu"), show_progress=False)
    marker = tmp_path / "pwned"
    write_code_running_file(trainer.files.checkpoint, marker, "")
    with pytest.raises(UserError, match="refused to load"):
        trainer.run(resume=True)
    assert not marker.exists()
