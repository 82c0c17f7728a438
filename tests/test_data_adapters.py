"""Adapters on small fixture files in each public format, and one clear line per kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harmonic_nas.config.schema import DatasetConfig
from harmonic_nas.data import load_dataset
from harmonic_nas.data.registry import resolve
from harmonic_nas.errors import UserError
from helpers import write_avmnist, write_harmp, write_mmimdb_hdf5, write_mmimdb_npy, write_soundmnist


def _load(name: str, path: Path, tmp_path: Path, **options: object):  # type: ignore[no-untyped-def]
    return load_dataset(DatasetConfig(name=name, path=path, cache_dir=tmp_path / "cache", options=options), progress=False)


def _error(name: str, path: Path, tmp_path: Path, **options: object) -> str:
    with pytest.raises(UserError) as info:
        _load(name, path, tmp_path, **options)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_avmnist_flat_layout(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av", nested=False)
    dataset = _load("avmnist", root, tmp_path)
    assert dataset.modalities["audio"].shape == (1, 112, 112) and len(dataset.split("test")) == 40


def test_avmnist_mfas_images_folder(tmp_path: Path) -> None:
    """MFAS's loader reads images/ (plural): detected and read, the pixels those of the file."""
    root = write_avmnist(tmp_path / "av", image_dir="images")
    assert not (root / "image").exists()
    recipe, _ = resolve(str(root))
    assert recipe.name == "avmnist"
    dataset = _load("avmnist", root, tmp_path, val_size=20)
    test = dataset.split("test")
    written = np.load(root / "images" / "test_data.npy").reshape(-1, 28, 28)
    # the cache normalises with train statistics: the same pixels up to one affine map
    assert np.corrcoef(test.inputs["image"][:, 0].ravel(), written.ravel())[0, 1] > 0.999
    assert np.array_equal(test.targets, np.load(root / "test_labels.npy"))


def test_avmnist_missing_image_names_every_accepted_place(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av", image_dir="images")
    (root / "images" / "train_data.npy").unlink()
    message = _error("avmnist", root, tmp_path)
    assert f"{root / 'image' / 'train_data.npy'}: missing AV-MNIST train image" in message
    assert f"also looked for images/train_data.npy, train_data.npy, train_image.npy in {root}" in message


def test_soundmnist(tmp_path: Path) -> None:
    root = write_soundmnist(tmp_path / "sm")
    dataset = _load("soundmnist", root, tmp_path, val_fraction=0.2)
    assert dataset.modalities["image"].shape == (1, 28, 28) and dataset.modalities["audio"].shape == (1, 32, 32)
    assert [len(dataset.split(s)) for s in ("train", "val", "test")] == [50, 10, 30]


def _closest(rows: np.ndarray, candidates: dict[str, np.ndarray]) -> list[str]:
    """For each row, the name of the candidate it correlates with most (the cache rescales values)."""
    names = list(candidates)
    table = np.stack([candidates[n].ravel() for n in names])
    return [names[int(np.argmax([np.corrcoef(row.ravel(), c)[0, 1] for c in table]))] for row in rows]


def test_soundmnist_smil_recipe(tmp_path: Path) -> None:
    """SMIL's pairs: per digit the first training images with a third of the clips from jackson, nicolas
    and the other speakers each, the *last* test images; audio the 20 x 20 MFCC of each clip."""
    from harmonic_nas.data.audio import read_audio
    from harmonic_nas.data.mfcc import smil_mfcc

    root = write_soundmnist(tmp_path / "sm", (3, 2), speakers=("jackson", "nicolas", "theo"), images_per_class=(8, 4))
    dataset = _load("soundmnist", root, tmp_path, recipe="smil", per_class=6, test_per_class=2, val_fraction=0.5)
    assert dataset.modalities["audio"].shape == (1, 20, 20)
    assert [len(dataset.split(s)) for s in ("train", "val", "test")] == [30, 30, 20]

    digit = 4
    clips = {p.name: smil_mfcc(read_audio(p)) for p in sorted((root / "sound_450" / "train" / str(digit)).glob("*.wav"))}
    chosen = []
    for split in ("train", "val"):
        data = dataset.split(split)
        chosen += _closest(data.inputs["audio"][data.targets == digit, 0], clips)
    assert sorted(chosen) == [f"4_{s}_{k}.wav" for s in ("jackson", "nicolas", "theo") for k in (0, 1)]

    images = {p.name: np.asarray(Image.open(p), np.float32) for p in sorted((root / "mnist" / "test" / str(digit)).glob("*.png"))}
    test = dataset.split("test")
    assert sorted(_closest(test.inputs["image"][test.targets == digit, 0], images)) == ["00002.png", "00003.png"]
    test_clips = {p.name: smil_mfcc(read_audio(p)) for p in sorted((root / "sound_450" / "test" / str(digit)).glob("*.wav"))}
    assert _closest(test.inputs["audio"][test.targets == digit, 0], test_clips) == ["4_jackson_0.wav", "4_jackson_1.wav"]


def test_soundmnist_smil_recipe_too_few_files(tmp_path: Path) -> None:
    root = write_soundmnist(tmp_path / "sm", (3, 2), speakers=("jackson", "theo"), images_per_class=(8, 4))
    message = _error("soundmnist", root, tmp_path, recipe="smil", per_class=6, test_per_class=2)
    assert f"{root / 'sound_450' / 'train' / '0'}: recipe smil pairs 6 train clips (a third each of jackson, nicolas, the others) a digit, found 4" in message


def test_mmimdb_hdf5(tmp_path: Path) -> None:
    path = write_mmimdb_hdf5(tmp_path / "mm" / "multimodal_imdb.hdf5")
    dataset = _load("mmimdb", path.parent, tmp_path, split_sizes=[46, 23, 23], image_size=[32, 20])
    assert dataset.task == "multilabel" and dataset.num_classes == 23 and dataset.class_names[0] == "Drama"
    assert dataset.modalities["image"].shape == (3, 32, 20) and dataset.modalities["text"] .shape == (300,)
    targets = dataset.split("val").targets
    assert targets.dtype == np.float32 and targets.shape == (23, 23)


def test_mmimdb_224_like_the_authors(tmp_path: Path) -> None:
    """image_size: 224 stretches the 256 x 160 posters to 224 x 224; a poster dark on its left and bright
    on its right stays so, with a smooth edge (interpolated, not repeated pixels)."""
    import h5py

    path = write_mmimdb_hdf5(tmp_path / "mm" / "multimodal_imdb.hdf5")
    with h5py.File(path, "r+") as handle:
        poster = np.zeros((3, 256, 160), np.uint8)
        poster[:, :, 80:] = 255
        handle["images"][0] = poster
    dataset = _load("mmimdb", path.parent, tmp_path, split_sizes=[46, 23, 23], image_size=224)
    assert dataset.modalities["image"].shape == (3, 224, 224)
    image = dataset.split("train").inputs["image"][0, 0]
    assert image.shape == (224, 224)
    row = image[100]
    assert np.allclose(row[:100], row[0]) and np.allclose(row[124:], row[-1]) and row[0] < row[-1]
    assert np.all(np.diff(row) >= -1e-5) and len(np.unique(np.round(row[100:124], 4))) > 2


def test_mmimdb_per_sample_npy(tmp_path: Path) -> None:
    root = write_mmimdb_npy(tmp_path / "mmnpy")
    dataset = _load("mmimdb", root, tmp_path, image_size=[32, 20])
    assert [len(dataset.split(s)) for s in ("train", "val", "test")] == [23, 23, 23]
    assert dataset.modalities["text"].kind == "vector"


def test_harmp_with_hashing_encoder(tmp_path: Path) -> None:
    root = write_harmp(tmp_path / "hp")
    dataset = _load("harmp", root, tmp_path, text_encoder="hashing", text_dim=64, image_size=32)
    assert dataset.class_names == ["not harmful", "somewhat harmful", "very harmful"]
    assert dataset.modalities["image"].shape == (3, 32, 32) and dataset.modalities["text"].shape == (64,)
    assert np.bincount(dataset.split("train").targets).tolist() == [4, 4, 4]


@pytest.mark.parametrize(
    ("writer", "name"),
    [(write_avmnist, "avmnist"), (write_soundmnist, "soundmnist"), (write_mmimdb_npy, "mmimdb"), (write_harmp, "harmp")],
)
def test_layout_is_detected_from_a_path(tmp_path: Path, writer, name: str) -> None:  # type: ignore[no-untyped-def]
    recipe, path = resolve(str(writer(tmp_path / "d")))
    assert recipe.name == name and path is not None


# ------------------------------------------------------------------ bad input: one line, file + problem


def test_missing_file(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    (root / "test_labels.npy").unlink()
    assert "test_labels.npy: missing AV-MNIST test labels (also looked for image/test_labels.npy" in _error("avmnist", root, tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    assert "dataset folder not found" in _error("avmnist", tmp_path / "nowhere", tmp_path)


def test_wrong_shape(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    np.save(root / "image" / "test_data.npy", np.zeros((40, 30), np.float32))
    message = _error("avmnist", root, tmp_path)
    assert "test_data.npy: expected square images, found 30 values per sample" in message


def test_shape_differs_between_splits(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    np.save(root / "audio" / "test_data.npy", np.zeros((40, 64, 64), np.float32))
    assert "audio/test_data.npy: wrong shape (1, 64, 64) per sample, train has (1, 112, 112)" in _error("avmnist", root, tmp_path)


def test_label_mismatch_between_modalities(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    np.save(root / "audio" / "train_data.npy", np.zeros((100, 112, 112), np.float32))
    message = _error("avmnist", root, tmp_path)
    assert "sample counts differ between modalities and labels" in message and "train_data.npy=100" in message


def test_empty_class(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    labels = np.load(root / "test_labels.npy")
    labels[labels == 3] = 4
    np.save(root / "test_labels.npy", labels)
    assert "test_labels.npy: class(es) 3 have no test samples" in _error("avmnist", root, tmp_path)


def test_empty_class_folder_soundmnist(tmp_path: Path) -> None:
    root = write_soundmnist(tmp_path / "sm", (2, 1))
    for clip in (root / "sound_450" / "test" / "7").iterdir():
        clip.unlink()
    assert "sound_450/test/7: class 7 has no test clips" in _error("soundmnist", root, tmp_path)


def test_unreadable_audio(tmp_path: Path) -> None:
    root = write_soundmnist(tmp_path / "sm", (2, 1))
    bad = root / "sound_450" / "train" / "5" / "5_jackson_1.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    assert f"{bad}: unreadable audio" in _error("soundmnist", root, tmp_path)


def test_unreadable_image(tmp_path: Path) -> None:
    root = write_harmp(tmp_path / "hp", (3, 3, 3))
    bad = root / "images" / "val_1.png"
    bad.write_bytes(b"\x89PNG broken")
    assert f"{bad}: unreadable image" in _error("harmp", root, tmp_path, text_encoder="hashing")


def test_harmp_unknown_label(tmp_path: Path) -> None:
    root = write_harmp(tmp_path / "hp", (3, 3, 3))
    path = root / "annotations" / "test.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["labels"] = ["mildly harmful"]
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines))
    assert f"{path}:2: first label 'mildly harmful' is none of" in _error("harmp", root, tmp_path, text_encoder="hashing")


def test_mmimdb_genre_count_mismatch(tmp_path: Path) -> None:
    root = write_mmimdb_npy(tmp_path / "mm")
    np.save(root / "test" / "label_000004.npy", np.ones(20, np.int8))
    assert "test/label_000004.npy: 20 genres, expected 23" in _error("mmimdb", root, tmp_path, image_size=[32, 20])


def test_mmimdb_hdf5_split_sizes(tmp_path: Path) -> None:
    path = write_mmimdb_hdf5(tmp_path / "mm" / "multimodal_imdb.hdf5", sizes=(23, 23, 23))
    message = _error("mmimdb", path.parent, tmp_path)
    assert "multimodal_imdb.hdf5: 69 samples but split_sizes [15552, 2608, 7799]" in message
