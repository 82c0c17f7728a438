"""Once-for-all supernet training for one modality: the sandwich rule (max + min + N random subnets per
step) with in-place distillation from the max subnet, Adam + cosine LR, early stopping on validation,
a checkpoint every epoch, and exact resumption. Under ``torchrun`` every rank trains its shard of each
global batch (see :mod:`harmonic_nas.supernet.distributed`); rank 0 evaluates and writes the files."""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Iterator
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
from harmonic_nas.jsonfile import write_json
from harmonic_nas.metrics import distill_loss, metric_name, task_loss
from harmonic_nas.runtime import step_rng
from harmonic_nas.space.encoding import stable_hash
from harmonic_nas.data.registry import missing_modalities
from harmonic_nas.data.batches import batch_indices, iterate_batches, to_device
from harmonic_nas.supernet.augment import spec_augment
from harmonic_nas.torchfile import load_checkpoint, save_atomic
from harmonic_nas.supernet.distributed import Dist, Shard, prepare_model, training_shard
from harmonic_nas.supernet.subnets import calibration_inputs, evaluate_subnet
from harmonic_nas.layout import SupernetFiles
from harmonic_nas.supernet.supernet_file import save_supernet

EVAL_BATCH = 128  # larger inference batches were slower on a 2-core CPU
LEGACY_DEFAULTS = {"bf16": False, "warmup_epochs": 0.0, "label_smoothing": 0.0, "spec_masks": 0, "spec_mask_width": 0.15,
                   "max_first_epochs": 0.0, "distill_weight": 1.0}


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
        dist: Dist | None = None,
    ) -> None:
        if modality not in cfg.modalities:
            raise UserError(f"modality {modality!r} is not in the config (has {', '.join(cfg.modalities)})")
        missing_modalities([modality], dataset.modalities, dataset.name)
        self.cfg = cfg
        self.train_cfg = cfg.supernet.for_modality(modality)
        self.modality = modality
        self.dataset = dataset
        self.device = device
        self.dist = dist if dist is not None else Dist(device=device)
        self.show_progress = show_progress and self.dist.is_main
        self.spec = dataset.modalities[modality]
        self.space_cfg = cfg.modalities[modality]
        self.files = cfg.layout.supernet(modality)
        self.seed = cfg.runtime.seed
        self.channels_last = self.train_cfg.channels_last and len(self.spec.shape) == 3
        self.train = dataset.split("train")
        self.val = dataset.split("val")
        self.calib = calibration_inputs(self.train.inputs[modality], self.train_cfg.bn_calib_samples, self.seed)

        torch.manual_seed(self.seed)
        self.model = build_supernet(self.space_cfg, self.spec.shape, dataset.num_classes).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.space = self.model.space
        if self.dist.enabled:
            if self.train_cfg.batch_size < self.dist.world_size:
                raise UserError(
                    f"supernet.batch_size {self.train_cfg.batch_size} is smaller than the {self.dist.world_size} processes: "
                    "every process needs a share of each batch"
                )
            self.dist.broadcast_module(self.model)  # one initialisation for all, whatever each rank's RNG did
            prepare_model(self.model)  # BatchNorm and dropout over the global batch
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.train_cfg.lr, weight_decay=self.train_cfg.weight_decay)
        self.steps_per_epoch = max(1, len(self.train) // self.train_cfg.batch_size)
        self.scheduler = self._schedule()
        self.augments = self.spec.kind == "audio" and self.train_cfg.spec_masks > 0
        self.epoch = 0
        self.best_metric = -1.0
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0
        self.finished = False
        self.history: list[dict[str, Any]] = []

    def _schedule(self) -> torch.optim.lr_scheduler.LRScheduler:
        """Cosine decay to ``min_lr`` over all steps, after a linear warm-up of ``warmup_epochs``."""
        cfg, opt = self.train_cfg, self.optimizer
        total = cfg.epochs * self.steps_per_epoch
        warm = min(total - 1, round(cfg.warmup_epochs * self.steps_per_epoch))
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - max(0, warm), eta_min=cfg.min_lr)
        if warm <= 0:
            return cosine
        ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm)
        return torch.optim.lr_scheduler.SequentialLR(opt, [ramp, cosine], milestones=[warm])

    # -- identity of a training run: resuming with other settings would silently mix two runs
    def fingerprint(self) -> str:
        exclude = {"patience", "eval_random_subnets", "per_modality"}  # this modality's recipe is all it needs
        # Options at their defaults leave the fingerprint as it was before they existed: supernets trained
        # then stay valid.
        exclude |= {k for k, v in LEGACY_DEFAULTS.items() if getattr(self.train_cfg, k) == v}
        train = self.train_cfg.model_dump(mode="json", exclude=exclude)
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
    def train_step(self, x: torch.Tensor, y: torch.Tensor, archs: list[dict[str, Any]], shard: Shard | None = None) -> float:
        """Accumulate the gradients of every sampled subnet, then take one optimizer step. With a ``shard``
        (distributed run) ``x, y`` are this rank's rows of the global batch: each loss is weighted by the
        shard's share and the gradients are summed over the ranks before the step. Returns the mean loss
        of the subnets on ``x``."""
        task = self.dataset.task
        weight = 1.0 if shard is None else shard.weight
        self.optimizer.zero_grad(set_to_none=True)
        self.model.set_active(archs[0])
        with self._forward(shard):
            teacher = self.model(x).logits.float()
            loss = task_loss(teacher, y, task, self.train_cfg.label_smoothing)
        (loss if weight == 1.0 else loss * weight).backward()
        total = loss.item()
        for arch in archs[1:]:
            self.model.set_active(arch)
            with self._forward(shard):
                logits = self.model(x).logits.float()
                sub_loss = self._subnet_loss(logits, teacher, y)
            (sub_loss if weight == 1.0 else sub_loss * weight).backward()
            total += sub_loss.item()
        self.dist.all_reduce_grads(self.model.parameters())
        self.optimizer.step()
        self.scheduler.step()
        return total / len(archs)

    def _subnet_loss(self, logits: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A smaller subnet's loss: distillation from the max subnet, mixed with the task loss by
        ``distill_weight``, or the task loss alone without distillation."""
        task = self.dataset.task
        share = self.train_cfg.distill_weight if self.train_cfg.distill else 0.0
        if share == 1.0:
            return distill_loss(logits, teacher, task)
        labels = task_loss(logits, y, task)
        return labels if share == 0.0 else share * distill_loss(logits, teacher, task) + (1 - share) * labels

    @contextlib.contextmanager
    def _forward(self, shard: Shard | None) -> Iterator[None]:
        """bf16 autocast if ``supernet.bf16``; global-batch BN and dropout on a shard."""
        with contextlib.ExitStack() as stack:
            if self.train_cfg.bf16:
                stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
            if shard is not None:
                stack.enter_context(training_shard(shard))
            yield

    def augment(self, x: torch.Tensor, epoch: int, step: int, shard: Shard | None) -> torch.Tensor:
        """SpecAugment masks drawn from (seed, epoch, step) alone: the same on resume and on every rank."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 100_003 + step)
        cfg = self.train_cfg
        if shard is None:
            return spec_augment(x, cfg.spec_masks, cfg.spec_mask_width, generator)
        return spec_augment(x, cfg.spec_masks, cfg.spec_mask_width, generator, shard.total, shard.offset)

    def sandwich(self, epoch: int, step: int) -> list[dict[str, Any]]:
        """max, min and N random subnets; the random ones depend only on (seed, epoch, step). During the
        first ``max_first_epochs`` the max subnet alone (progressive shrinking's first phase)."""
        if epoch * self.steps_per_epoch + step < round(self.train_cfg.max_first_epochs * self.steps_per_epoch):
            return [self.space.max()]
        rng = step_rng(self.seed, epoch, step)
        return [self.space.max(), self.space.min()] + [self.space.sample(rng) for _ in range(self.train_cfg.random_subnets)]

    def _batches(self, order: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor, Shard | None]]:
        """(x, y, shard) per step: the whole batch in one process, this rank's rows of it otherwise."""
        inputs, targets = self.train.inputs[self.modality], self.train.targets
        if not self.dist.enabled:
            for x, y in iterate_batches(
                inputs, targets, self.train_cfg.batch_size, self.device,
                order=order, channels_last=self.channels_last, drop_last=True,
            ):
                yield x, y, None
            return
        for idx in batch_indices(len(targets), self.train_cfg.batch_size, order=order, drop_last=True):
            shard = self.dist.shard(len(idx))
            rows = idx[shard.offset : shard.offset + shard.size]
            yield (
                to_device(inputs[rows], self.device, self.channels_last),
                to_device(targets[rows], self.device, False),
                shard,
            )

    def train_epoch(self, epoch: int, on_step: Any = None) -> tuple[float, float]:
        """One epoch; returns (mean loss, samples per second), both over the global batches."""
        torch.manual_seed(self.seed * 100_003 + epoch)  # dropout masks independent of resume history
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.train))
        self.model.train()
        losses: list[float] = []
        seen = 0
        start = time.perf_counter()
        for step, (x, y, shard) in enumerate(self._batches(order)):
            if self.augments:
                x = self.augment(x, epoch, step, shard)
            loss = self.train_step(x, y, self.sandwich(epoch, step), shard)
            losses.append(loss if shard is None else loss * shard.weight)
            seen += len(y) if shard is None else shard.total
            if on_step is not None:
                on_step(loss, seen / (time.perf_counter() - start))
        losses = self.dist.all_reduce_sum(losses)  # the shards' weighted losses add up to the batch loss
        return float(np.mean(losses)), seen / (time.perf_counter() - start)

    def evaluate(self, arch: dict[str, Any]) -> float:
        """Val metric of ``arch`` (BN recalibrated), computed by this process alone, in float32."""
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
        """Channel sorting, validation of the max subnet, early-stopping bookkeeping, checkpoint. In a
        distributed run every rank sorts identically, rank 0 validates and writes the checkpoint, and the
        others wait for it."""
        self.dist.broadcast_module(self.model)  # guard: rank 0's weights are the ones checkpointed
        every = self.train_cfg.sort_channels_every
        if every and (epoch + 1) % every == 0:
            self.model.sort_channels(self.optimizer)
        val_max = self.dist.on_main(lambda: self.evaluate(self.space.max()), all_threads=True)
        if val_max > self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = val_max, epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict()) if self.dist.is_main else None
        else:
            self.bad_epochs += 1
        stats = EpochStats(epoch, loss, self.scheduler.get_last_lr()[0], sps, val_max, seconds)
        self.history.append(stats.__dict__)
        self.epoch = epoch + 1
        self.finished = self.epoch >= self.train_cfg.epochs or self.bad_epochs >= self.train_cfg.patience
        if self.dist.is_main:
            save_atomic(self.state(), self.files.checkpoint)
        self.dist.barrier()
        return stats

    def fit(self) -> None:
        epochs = self.train_cfg.epochs
        with make_progress("loss", "lr", "samples_s", transient=False) as progress:
            if not self.dist.is_main:
                progress.disable = True  # one progress display per job
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
                if self.show_progress:  # the validation below takes a while: say what happens meanwhile
                    console.log(f"{self.modality} epoch {epoch + 1}/{epochs} trained: validating the max subnet "
                                f"(BN recalibration, val scoring)")
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
        subnets = []
        with make_progress() as progress:  # a BN recalibration and a val pass each: seconds to minutes
            task = progress.add_task(f"scoring {self.modality} subnets", total=len(named), visible=self.show_progress)
            for name, arch in named:
                subnets.append({"name": name, "arch": arch.to_json(), "hash": self.space.arch_hash(arch),
                                "val": self.evaluate(arch)})
                progress.advance(task)
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
            "processes": self.dist.world_size,
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

    def run(self, *, resume: bool = False, keep_checkpoint: bool = False) -> dict[str, Any]:
        """Train (or continue), then evaluate and write the supernet file and its metrics JSON, and remove
        the epoch checkpoint (4x the supernet file; ``keep_checkpoint`` keeps it). In a distributed run
        rank 0 reads the checkpoint and hands it to the others (so the run directory need only exist on
        its machine), and evaluates and writes alone; every rank returns the metrics."""

        def initial_state() -> dict[str, Any] | None:
            if resume:
                return load_checkpoint(self.files.checkpoint)
            if self.files.checkpoint.exists():
                raise UserError(
                    f"{self.files.checkpoint}: an earlier training of {self.modality!r} exists; "
                    "pass --resume to continue it or --force to start over"
                )
            return None

        state = self.dist.on_main(initial_state)
        if state is not None:
            self.load_state(state)
            if not self.dist.is_main:
                self.best_state = None
        del state
        self.fit()

        def finish() -> dict[str, Any]:
            if self.best_state is not None:
                self.model.load_state_dict(self.best_state)
            metrics = self.final_metrics()
            save_supernet(self.files, self.model, self.space_cfg, self.spec, self.dataset, metrics)
            write_json(self.files.metrics, metrics)
            if not keep_checkpoint:  # the supernet and its metrics are whole on disk: nothing to resume
                self.files.checkpoint.unlink(missing_ok=True)
            return metrics

        return self.dist.on_main(finish, all_threads=True)


def remove_outputs(files: SupernetFiles) -> None:
    for path in (files.supernet, files.metrics, files.checkpoint):
        Path(path).unlink(missing_ok=True)
