"""The fixture dataset writers (tests/helpers.py) produce the public layouts the adapters read."""

from __future__ import annotations

from pathlib import Path

from helpers import write_avmnist, write_harmp, write_soundmnist


def test_fixture_layouts(tmp_path: Path) -> None:
    """The writers produce the public layouts the adapters are documented to read."""
    assert (write_avmnist(tmp_path / "av") / "image" / "train_data.npy").is_file()
    assert (write_soundmnist(tmp_path / "sm", (1, 1)) / "sound_450" / "test" / "9" / "9_jackson_0.wav").is_file()
    assert (write_harmp(tmp_path / "hp", (3, 3, 3)) / "annotations" / "val.jsonl").is_file()
