"""``data baseline``'s late fusion: modalities weighted by validation log-loss with no bound, so that an
over-confident strong modality is neither left flat beside a weak one nor outscored by the fusion."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.data import load_dataset
from harmonic_nas.data.baseline import fusion_weights, linear_baseline, score
from test_data_fixtures import write_avmnist


def test_late_fusion_keeps_up_with_a_much_stronger_modality(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av", n_train=600, n_test=400, misleading=0.3, audio_signal=0.5)
    dataset = load_dataset(DatasetConfig(name="avmnist", path=root, cache_dir=tmp_path / "cache", options={"val_size": 400}), progress=False)
    scores = linear_baseline(dataset)
    assert scores["image"]["val"] > scores["audio"]["val"] + 0.2, scores  # the case: one modality much stronger
    for split in ("val", "test"):
        assert scores["late"][split] >= scores["image"][split], scores


def _logits(y: torch.Tensor, strength: float, scale: float, generator: torch.Generator) -> torch.Tensor:
    """Noisy class scores whose true class is raised by ``strength``, multiplied by ``scale``."""
    return scale * (torch.randn(len(y), 10, generator=generator) + strength * F.one_hot(y, 10))


def test_an_overconfident_modality_is_scaled_down_as_far_as_needed() -> None:
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(10, (2000,), generator=generator)
    strong = _logits(y, 2.5, 1000.0, generator)  # logits in the thousands, as a nearly separable modality gives
    weak = _logits(y, 1.5, 1.0, generator)
    weights = fusion_weights([strong, weak], y, multilabel=False)
    assert (weights > 0).all() and 1e-4 < weights[0] / weights[1] < 1e-2, weights  # about 1/1000: no bound hit
    fused = score(weights[0] * strong + weights[1] * weak, y, multilabel=False)
    assert fused > score(strong, y, multilabel=False) + 0.05 and fused > score(weak, y, multilabel=False)
