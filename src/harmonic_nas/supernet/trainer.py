"""Once-for-all supernet training for one modality: the sandwich rule (max + min + N random subnets per
step) with in-place distillation from the max subnet, Adam + cosine LR, early stopping on validation,
a checkpoint every epoch, and exact resumption."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config import ExperimentConfig
from harmonic_nas.console import console, make_progress
from harmonic_nas.data import MultimodalDataset
from harmonic_nas.errors import UserError
from harmonic_nas.metrics import distill_loss, metric_name, task_loss
from harmonic_nas.runtime import step_rng
from harmonic_nas.space.encoding import stable_hash
from harmonic_nas.data.batches import iterate_batches
from harmonic_nas.supernet.checkpoint import load_checkpoint, save_atomic
from harmonic_nas.supernet.evaluate import calibration_indices, evaluate_subnet
from harmonic_nas.supernet.store import SupernetFiles, save_supernet

EVAL_BATCH = 128  # larger inference batches were slower on CPU (DESIGN notes)


@dataclass
class EpochStats:
    epoch: int
    loss: float
    lr: float
    samples_per_s: float
    val_max: float
    seconds: float


class SupernetTrainer:
    """Trains the supernet of ``modality``; all state needed to resume lives in one checkpoint file."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        modality: str,
        dataset: MultimodalDataset,
        device: torch.device,
        *,
        show_progress: bool = True,
    ) -> None:
        if modality not in cfg.modalities:
            raise UserError(f"modality {modality!r} is not in the config (has {', '.join(cfg.modalities)})")
        if modality not in dataset.modalities:
            raise UserError(f"modality {modality!r} is not in dataset {dataset.name!r} (has {', '.join(dataset.modalities)})")
        self.cfg = cfg
        self.train_cfg = cfg.supernet
        self.modality = modality
        self.dataset = dataset
        self.device = device
        self.show_progress = show_progress
        self.spec = dataset.modalities[modality]
        self.space_cfg = cfg.modalities[modality]
        self.files = SupernetFiles(cfg.run_dir / "supernets", modality)
        self.seed = cfg.runtime.seed
        self.channels_last = self.train_cfg.channels_last and len(self.spec.shape) == 3
        self.train = dataset.split("train")
        self.val = dataset.split("val")
        calib_idx = calibration_indices(len(self.train), self.train_cfg.bn_calib_samples, self.seed)
        self.calib = np.asarray(self.train.inputs[modality][calib_idx])

        torch.manual_seed(self.seed)
        self.model = build_supernet(self.space_cfg, self.spec.shape, dataset.num_classes).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.space = self.model.space
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.train_cfg.lr, weight_decay=self.train_cfg.weight_decay)
        self.steps_per_epoch = max(1, len(self.train) // self.train_cfg.batch_size)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=self.train_cfg.epochs * self.steps_per_epoch, eta_min=self.train_cfg.min_lr
        )
        self.epoch = 0
        self.best_metric = -1.0
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.finished = False
        self.history: list[dict[str, Any]] = []

    # -- identity of a training run: resuming with other settings would silently mix two runs
    def fingerprint(self) -> str:
        train = self.train_cfg.model_dump(mode="json", exclude={"patience", "eval_random_subnets"})
        return stable_hash(
            {
                "space": self.space_cfg.model_dump(mode="json"),
                "dataset": self.cfg.dataset.model_dump(mode="json", exclude={"cache_dir"}),
                "train": train,
                "seed": self.seed,
                "modality": self.modality,
            }
        )

    def state(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint(),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "bad_epochs": self.bad_epochs,
            "finished": self.finished,
            "history": self.history,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("fingerprint") != self.fingerprint():
            raise UserError(
                f"{self.files.checkpoint}: checkpoint was made with other settings (space, dataset, training or seed); "
                "use --force to start over"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = state["epoch"]
        self.best_metric = state["best_metric"]
        self.best_epoch = state["best_epoch"]
        self.best_state = state["best_state"]
        self.bad_epochs = state["bad_epochs"]
        self.finished = state["finished"]
        self.history = state["history"]

    # -- the sandwich step
    def train_step(self, x: torch.Tensor, y: torch.Tensor, archs: list[dict[str, Any]]) -> float:
        """Accumulate the gradients of every sampled subnet, then take one optimizer step."""
        task = self.dataset.task
        self.optimizer.zero_grad(set_to_none=True)
        self.model.set_active(archs[0])
        teacher = self.model(x).logits
        loss = task_loss(teacher, y, task)
        loss.backward()
        total = loss.item()
        for arch in archs[1:]:
            self.model.set_active(arch)
            logits = self.model(x).logits
            sub_loss = distill_loss(logits, teacher, task) if self.train_cfg.distill else task_loss(logits, y, task)
            sub_loss.backward()
            total += sub_loss.item()
        self.optimizer.step()
        self.scheduler.step()
        return total / len(archs)

    def sandwich(self, epoch: int, step: int) -> list[dict[str, Any]]:
        """max, min and N random subnets; the random ones depend only on (seed, epoch, step)."""
        rng = step_rng(self.seed, epoch, step)
        return [self.space.max(), self.space.min()] + [self.space.sample(rng) for _ in range(self.train_cfg.random_subnets)]

    def train_epoch(self, epoch: int, on_step: Any = None) -> tuple[float, float]:
        """One epoch; returns (mean loss, samples per second)."""
        torch.manual_seed(self.seed * 100_003 + epoch)  # dropout masks independent of resume history
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.train))
        self.model.train()
        losses: list[float] = []
        seen = 0
        start = time.perf_counter()
        batches = iterate_batches(
            self.train.inputs[self.modality],
            self.train.targets,
            self.train_cfg.batch_size,
            self.device,
            order=order,
            channels_last=self.channels_last,
            drop_last=True,
        )
        for step, (x, y) in enumerate(batches):
            losses.append(self.train_step(x, y, self.sandwich(epoch, step)))
            seen += len(y)
            if on_step is not None:
                on_step(losses[-1], seen / (time.perf_counter() - start))
        return float(np.mean(losses)), seen / (time.perf_counter() - start)

    def evaluate(self, arch: dict[str, Any]) -> float:
        return evaluate_subnet(
            self.model,
            arch,
            self.modality,
            self.calib,
            self.val,
            self.dataset.task,
            batch_size=EVAL_BATCH,
            device=self.device,
            channels_last=self.channels_last,
        )

    def end_epoch(self, epoch: int, loss: float, sps: float, seconds: float) -> EpochStats:
        """Channel sorting, validation of the max subnet, early-stopping bookkeeping, checkpoint."""
        every = self.train_cfg.sort_channels_every
        if every and (epoch + 1) % every == 0:
            self.model.sort_channels(self.optimizer)
        val_max = self.evaluate(self.space.max())
        if val_max > self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = val_max, epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
        else:
            self.bad_epochs += 1
        stats = EpochStats(epoch, loss, self.scheduler.get_last_lr()[0], sps, val_max, seconds)
        self.history.append(stats.__dict__)
        self.epoch = epoch + 1
        self.finished = self.epoch >= self.train_cfg.epochs or self.bad_epochs >= self.train_cfg.patience
        save_atomic(self.state(), self.files.checkpoint)
        return stats

    def fit(self) -> None:
        epochs = self.train_cfg.epochs
        with make_progress("loss", "lr", "samples_s", transient=False) as progress:
            task = progress.add_task(
                f"supernet {self.modality}",
                total=epochs * self.steps_per_epoch,
                completed=self.epoch * self.steps_per_epoch,
                loss="-",
                lr="-",
                samples_s="-",
                visible=self.show_progress,
            )

            def on_step(loss: float, sps: float) -> None:
                lr = self.scheduler.get_last_lr()[0]
                progress.update(task, advance=1, loss=f"{loss:.3f}", lr=f"{lr:.1e}", samples_s=f"{sps:.0f}")

            while not self.finished:
                epoch = self.epoch
                start = time.perf_counter()
                loss, sps = self.train_epoch(epoch, on_step)
                stats = self.end_epoch(epoch, loss, sps, time.perf_counter() - start)
                if self.show_progress:
                    console.log(
                        f"{self.modality} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, "
                        f"val {metric_name(self.dataset.task)} (max subnet) {stats.val_max:.4f}, {sps:.0f} samples/s"
                    )
            if self.bad_epochs >= self.train_cfg.patience and self.show_progress:
                console.log(f"early stop: no val improvement for {self.bad_epochs} epochs (best epoch {self.best_epoch + 1})")

    def final_metrics(self) -> dict[str, Any]:
        """Val metric of the max, min and seeded random subnets of the best weights, each BN-recalibrated."""
        rng = step_rng(self.seed, "eval")
        named = [("max", self.space.max()), ("min", self.space.min())]
        named += [(f"random-{i + 1}", self.space.sample(rng)) for i in range(self.train_cfg.eval_random_subnets)]
        subnets = [
            {"name": name, "arch": arch, "hash": self.space.arch_hash(arch), "val": self.evaluate(arch)} for name, arch in named
        ]
        return {
            "modality": self.modality,
            "fingerprint": self.fingerprint(),
            "dataset": self.dataset.name,
            "metric": metric_name(self.dataset.task),
            "epochs_run": self.epoch,
            "best_epoch": self.best_epoch + 1,
            "early_stopped": self.epoch < self.train_cfg.epochs,
            "subnets": subnets,
            "history": self.history,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
        }

    def finished_metrics(self) -> dict[str, Any] | None:
        """The metrics of a finished training with these very settings, None if there is none; a finished
        training with other settings is an error (reusing it would silently mix two experiments)."""
        if not (self.files.supernet.is_file() and self.files.metrics.is_file()):
            return None
        metrics = json.loads(self.files.metrics.read_text(encoding="utf-8"))
        if metrics.get("fingerprint") != self.fingerprint():
            raise UserError(
                f"{self.files.supernet}: trained with other settings (space, dataset, training or seed); "
                "use --force to retrain it"
            )
        return metrics

    def run(self, *, resume: bool = False) -> dict[str, Any]:
        """Train (or continue), then evaluate and write the supernet file and its metrics JSON."""
        if resume:
            self.load_state(load_checkpoint(self.files.checkpoint))
        elif self.files.checkpoint.exists():
            raise UserError(
                f"{self.files.checkpoint}: an earlier training of {self.modality!r} exists; "
                "pass --resume to continue it or --force to start over"
            )
        self.fit()
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        metrics = self.final_metrics()
        save_supernet(self.files, self.model, self.space_cfg, self.spec, self.dataset, metrics)
        self.files.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        return metrics


def remove_outputs(files: SupernetFiles) -> None:
    for path in (files.supernet, files.metrics, files.checkpoint):
        Path(path).unlink(missing_ok=True)
