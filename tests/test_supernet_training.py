"""Supernet training: sandwich rule, outputs, BN recalibration, exact resumption, clear refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import small_config
from torch import nn

from harmonic_nas.errors import UserError
from harmonic_nas.metrics import distill_loss, score, task_loss
from harmonic_nas.layout import RunLayout
from harmonic_nas.supernet import SupernetTrainer, load_supernet, recalibrate_bn
from harmonic_nas.supernet.augment import spec_augment
from harmonic_nas.torchfile import load_checkpoint

DEVICE = torch.device("cpu")


def test_training_writes_supernet_and_metrics(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=3, lr=1e-2)  # 48 steps in all: a high lr to learn anything
    metrics = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False).run()
    files = RunLayout(cfg.run_dir).supernet("image")
    assert files.supernet.is_file() and files.metrics.is_file()
    assert not files.checkpoint.exists()  # the epoch checkpoint (4x the supernet) goes once the supernet is whole
    on_disk = json.loads(files.metrics.read_text())
    assert [s["name"] for s in on_disk["subnets"]] == ["max", "min", "random-1", "random-2"]
    assert on_disk == json.loads(json.dumps(metrics))
    assert len(on_disk["history"]) == 3
    # 1024 MNIST digits, 3 short epochs: far above the 10 % of chance for the max and the min subnet.
    vals = {s["name"]: s["val"] for s in on_disk["subnets"]}
    assert vals["max"] > 0.6 and vals["min"] > 0.3, vals
    # The loss went down over training.
    losses = [h["loss"] for h in on_disk["history"]]
    assert losses[-1] < losses[0]


def test_maxout_supernet_trains(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=3, batch_size=32, lr=1e-2)
    metrics = SupernetTrainer(cfg, "thumb", mnist_pair, DEVICE, show_progress=False).run()
    assert {s["name"] for s in metrics["subnets"]} == {"max", "min", "random-1", "random-2"}
    assert min(s["val"] for s in metrics["subnets"]) > 0.5


def test_saved_supernet_reloads_to_the_same_function(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=1)
    trainer = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    trainer.run()
    model, meta = load_supernet(trainer.files.supernet)
    assert meta["input_shape"] == [1, 28, 28] and meta["num_classes"] == 10 and meta["task"] == "multiclass"
    x = torch.from_numpy(mnist_pair.split("val").inputs["image"][:8])
    for arch in (trainer.space.max(), trainer.space.min()):
        trainer.model.eval().set_active(arch)
        model.set_active(arch)
        assert torch.allclose(model(x).logits, trainer.model(x.contiguous(memory_format=torch.channels_last)).logits, atol=1e-5)


def test_sandwich_depends_only_on_seed_epoch_and_step(tmp_path: Path, mnist_pair: Any) -> None:
    trainer = SupernetTrainer(small_config(tmp_path, random_subnets=3), "image", mnist_pair, DEVICE, show_progress=False)
    archs = trainer.sandwich(4, 7)
    assert archs[0] == trainer.space.max() and archs[1] == trainer.space.min() and len(archs) == 5
    assert trainer.sandwich(4, 7) == archs
    assert any(trainer.sandwich(4, 8)[i] != archs[i] for i in range(2, 5))


def _snapshot(trainer: SupernetTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_resume_after_interrupt_gives_the_same_next_epoch(tmp_path: Path, mnist_pair: Any) -> None:
    straight = SupernetTrainer(small_config(tmp_path / "a", patience=10), "image", mnist_pair, DEVICE, show_progress=False)
    straight.fit()
    expected = _snapshot(straight)

    cfg = small_config(tmp_path / "b", patience=10)
    interrupted = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    loss, sps = interrupted.train_epoch(0)
    interrupted.end_epoch(0, loss, sps, 1.0)  # writes the epoch-1 checkpoint; the process "dies" here
    del interrupted

    resumed = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    resumed.load_state(load_checkpoint(resumed.files.checkpoint))  # the loader `--resume` uses
    assert resumed.epoch == 1
    resumed.fit()
    got = _snapshot(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert [h["val_max"] for h in resumed.history] == [h["val_max"] for h in straight.history]


def test_existing_checkpoint_needs_resume_or_force(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=1)
    SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False).run(keep_checkpoint=True)
    with pytest.raises(UserError, match="--resume .* --force"):
        SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False).run()


def test_resume_with_other_settings_is_refused(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=1)
    SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False).run(keep_checkpoint=True)
    changed = small_config(tmp_path, epochs=1, lr=0.01)
    with pytest.raises(UserError, match="other settings"):
        SupernetTrainer(changed, "image", mnist_pair, DEVICE, show_progress=False).run(resume=True)


def test_early_stopping_stops_when_val_stalls(tmp_path: Path, mnist_pair: Any) -> None:
    # lr 0 (and min_lr 0): weights never change, so val never improves after the first epoch.
    cfg = small_config(tmp_path, epochs=10, patience=2, lr=1e-12)
    trainer = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    trainer.fit()
    assert trainer.epoch == 3 and trainer.best_epoch == 0


def test_unknown_modality_is_one_clear_error(tmp_path: Path, mnist_pair: Any) -> None:
    with pytest.raises(UserError, match="'audio' is not in the config"):
        SupernetTrainer(small_config(tmp_path), "audio", mnist_pair, DEVICE)


def test_bn_recalibration_sets_exact_statistics() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(3))
    inputs = (torch.randn(300, 3, 4, 4) * 2 + 5).numpy()
    model.train()
    model(torch.zeros(8, 3, 4, 4))  # pollute the running statistics first
    recalibrate_bn(model, inputs, 64, DEVICE, channels_last=False)
    bn = model[0]
    assert not model.training
    assert torch.allclose(bn.running_mean, torch.from_numpy(inputs).mean(dim=(0, 2, 3)), atol=1e-5)
    # Per-batch unbiased variances averaged: close to the population variance.
    assert torch.allclose(bn.running_var, torch.from_numpy(inputs).var(dim=(0, 2, 3)), rtol=0.05)


def test_weighted_f1_on_a_hand_computed_case() -> None:
    targets = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 0]], dtype=torch.float32)
    logits = torch.tensor([[3, -1], [2, -2], [-1, 1], [-3, 2]], dtype=torch.float32)
    # label 0: tp=2 fp=0 fn=1 -> f1 = 4/5, support 3; label 1: tp=1 fp=1 fn=1 -> f1 = 1/2, support 2
    assert score(logits, targets, "multilabel") == pytest.approx((0.8 * 3 + 0.5 * 2) / 5)
    assert score(logits, torch.tensor([0, 1, 1, 1]), "multiclass") == pytest.approx(0.75)
    assert np.isclose(score(logits, torch.zeros(4, 2), "multilabel"), 0.0)


def test_bn_recalibration_ignores_dropout() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(4))
    inputs = (torch.randn(256, 4) + 3).numpy()
    recalibrate_bn(model, inputs, 64, DEVICE, channels_last=False)
    # With dropout active the mean would be about half (zeros in half the entries, the rest doubled: same
    # mean) but the variance would be far larger; eval-mode activations are the inputs themselves.
    assert torch.allclose(model[1].running_var, torch.from_numpy(inputs).var(dim=0), rtol=0.05)
    assert model[0].training is False


def test_a_finished_supernet_is_reused_only_with_the_same_settings(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=1)
    trainer = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    assert trainer.finished_metrics() is None
    metrics = trainer.run()
    again = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False).finished_metrics()
    assert again == json.loads(json.dumps(metrics))
    changed = SupernetTrainer(small_config(tmp_path, epochs=2), "image", mnist_pair, DEVICE, show_progress=False)
    with pytest.raises(UserError, match="trained with other settings.*--force"):
        changed.finished_metrics()


# the small-budget recipe ----------------------------------------------------------------------------------
def test_warmup_then_cosine(tmp_path: Path, mnist_pair: Any) -> None:
    cfg = small_config(tmp_path, epochs=2, lr=1e-2, min_lr=1e-4, warmup_epochs=0.5)
    trainer = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    steps, warm = 2 * trainer.steps_per_epoch, trainer.steps_per_epoch // 2
    lrs = []
    for _ in range(steps):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert lrs[0] == pytest.approx(1e-2 / warm)
    assert all(a < b for a, b in zip(lrs[:warm], lrs[1 : warm + 1])) and lrs[warm] == pytest.approx(1e-2)
    assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1 :])) and lrs[-1] < 2e-3


def test_label_smoothing_reaches_the_max_subnets_loss() -> None:
    logits, targets = torch.randn(8, 10), torch.randint(0, 10, (8,))
    smooth = task_loss(logits, targets, "multiclass", 0.1)
    by_hand = (0.9 * torch.nn.functional.cross_entropy(logits, targets)
               - 0.1 * logits.log_softmax(-1).mean(-1).mean())
    assert smooth == pytest.approx(float(by_hand), rel=1e-5)
    assert task_loss(logits, targets, "multiclass") == pytest.approx(float(torch.nn.functional.cross_entropy(logits, targets)))


def test_distill_weight_mixes_distillation_and_task_loss(tmp_path: Path, mnist_pair: Any) -> None:
    logits, teacher, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    kd, ce = distill_loss(logits, teacher, "multiclass"), task_loss(logits, y, "multiclass")

    def loss(**supernet: Any) -> float:
        trainer = SupernetTrainer(small_config(tmp_path, **supernet), "image", mnist_pair, DEVICE, show_progress=False)
        return float(trainer._subnet_loss(logits, teacher, y))

    assert loss() == pytest.approx(float(kd))  # the paper's: distillation alone
    assert loss(distill_weight=0.25) == pytest.approx(float(0.25 * kd + 0.75 * ce))
    assert loss(distill_weight=0.0) == pytest.approx(float(ce)) == loss(distill=False, distill_weight=0.5)


def test_spec_augment_masks_bands_alike_in_one_process_or_in_shards() -> None:
    x = torch.ones(6, 1, 20, 30)
    whole = spec_augment(x, 2, 0.2, torch.Generator().manual_seed(3))
    parts = [spec_augment(x[o : o + 3], 2, 0.2, torch.Generator().manual_seed(3), total=6, offset=o) for o in (0, 3)]
    assert torch.equal(whole, torch.cat(parts))
    zeroed = (whole == 0).float().mean()
    assert 0.0 < zeroed < 0.6  # some bands, never the whole spectrogram
    rows, cols = (whole[:, 0] == 0).all(dim=2), (whole[:, 0] == 0).all(dim=1)
    assert rows.any() and cols.any()  # whole frequency rows and whole time columns
    assert not torch.equal(whole, spec_augment(x, 2, 0.2, torch.Generator().manual_seed(4)))


def test_new_recipe_options_at_their_defaults_keep_old_fingerprints(tmp_path: Path, mnist_pair: Any) -> None:
    from harmonic_nas.space.encoding import stable_hash

    cfg = small_config(tmp_path)
    trainer = SupernetTrainer(cfg, "image", mnist_pair, DEVICE, show_progress=False)
    old_keys = set(cfg.supernet.model_dump()) - {"warmup_epochs", "label_smoothing", "spec_masks", "spec_mask_width",
                                                 "max_first_epochs", "distill_weight",
                                                 "bf16", "patience", "eval_random_subnets", "per_modality"}
    before = stable_hash({"space": cfg.modalities["image"].model_dump(mode="json"),
                          "dataset": cfg.dataset.model_dump(mode="json", exclude={"cache_dir"}),
                          "train": cfg.supernet.model_dump(mode="json", include=old_keys),
                          "seed": cfg.runtime.seed, "modality": "image"})
    assert trainer.fingerprint() == before
    changed = SupernetTrainer(small_config(tmp_path, label_smoothing=0.1), "image", mnist_pair, DEVICE,
                              show_progress=False)
    assert changed.fingerprint() != before


def test_max_first_epochs_train_the_max_subnet_alone_then_the_sandwich(tmp_path: Path, mnist_pair: Any) -> None:
    trainer = SupernetTrainer(small_config(tmp_path, max_first_epochs=1.5, random_subnets=2), "image", mnist_pair,
                              DEVICE, show_progress=False)
    half = round(0.5 * trainer.steps_per_epoch)
    assert trainer.sandwich(0, 0) == [trainer.space.max()] and trainer.sandwich(1, half - 1) == [trainer.space.max()]
    opened = trainer.sandwich(1, half)
    assert opened[:2] == [trainer.space.max(), trainer.space.min()] and len(opened) == 4


def test_per_modality_keys_change_one_supernet_and_leave_the_others_as_they_were(tmp_path: Path, mnist_pair: Any) -> None:
    def trainer(modality: str, **supernet: Any) -> SupernetTrainer:
        return SupernetTrainer(small_config(tmp_path, **supernet), modality, mnist_pair, DEVICE, show_progress=False)

    longer = {"thumb": {"epochs": 7, "max_first_epochs": 2}}
    image, thumb = trainer("image", per_modality=longer), trainer("thumb", per_modality=longer)
    assert image.fingerprint() == trainer("image").fingerprint() and image.train_cfg.epochs == 2
    assert (thumb.train_cfg.epochs, thumb.train_cfg.max_first_epochs) == (7, 2)
    # the same recipe given to every modality trains (and resumes) the same supernet
    assert thumb.fingerprint() == trainer("thumb", epochs=7, max_first_epochs=2).fingerprint()
    assert thumb.fingerprint() != trainer("thumb").fingerprint()


@pytest.mark.parametrize(("per_modality", "expected"), [
    ({"thumb": {"epochs": 0}}, "per_modality.thumb.epochs: Input should be greater than 0"),
    ({"thumb": {"epochz": 3}}, "per_modality.thumb.epochz: Extra inputs are not permitted"),
    ({"thumb": {"bn_calib_samples": 64}}, "per_modality.thumb: bn_calib_samples cannot differ per modality"),
    ({"audio": {"epochs": 3}}, "supernet.per_modality names audio, not a modality of the experiment (image, thumb)"),
])
def test_a_bad_per_modality_key_is_one_line_naming_it(tmp_path: Path, per_modality: Any, expected: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape(expected)):
        small_config(tmp_path, per_modality=per_modality)
