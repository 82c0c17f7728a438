"""``harmonic-nas data``: prepare, info, options from a config and --option, errors as one line."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from harmonic_nas.cli import main
from helpers import write_avmnist


def test_prepare_info_and_errors(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    cache = tmp_path / "cache"
    runner = CliRunner()
    result = runner.invoke(main, ["data", "prepare", str(root), "--cache-dir", str(cache), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "prepared avmnist" in result.output
    result = runner.invoke(main, ["data", "prepare", str(root), "--cache-dir", str(cache), "--quiet"])
    assert "already prepared" in result.output
    result = runner.invoke(main, ["data", "info", str(root), "--cache-dir", str(cache), "--verify"])
    assert result.exit_code == 0, result.output
    for expected in ("avmnist", "1x112x112", "train", "licence", "files"):
        assert expected in result.output
    result = runner.invoke(main, ["data", "prepare", str(root), "--cache-dir", str(cache), "--option", "val_size=30", "--quiet"])
    assert result.exit_code == 0 and "prepared" in result.output
    result = runner.invoke(main, ["data", "prepare", str(root), "--cache-dir", str(cache), "--option", "val_sise=30"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "unknown option" in result.output
    listing = runner.invoke(main, ["data", "list"])
    assert all(name in listing.output for name in ("av-digits", "emoji", "tuxpaint", "avmnist", "soundmnist", "mmimdb", "harmp"))
    result = runner.invoke(main, ["data", "prepare", "no-such-dataset"])
    assert result.exit_code == 2 and "unknown dataset 'no-such-dataset'" in result.output


def test_options_from_config(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    config = tmp_path / "exp.yaml"
    config.write_text(
        "name: t\nmodalities: {image: {type: mbv3, stages: [{width: 8}]}}\n"
        f"dataset: {{name: avmnist, path: {root}, cache_dir: {tmp_path / 'cache'}, options: {{val_size: 20}}}}\n"
    )
    runner = CliRunner()
    result = runner.invoke(main, ["data", "info", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert '"val_size": 20' in result.output and '"n": 20' in result.output


def test_set_changes_the_config_of_every_data_command(tmp_path: Path) -> None:
    root = write_avmnist(tmp_path / "av")
    config = tmp_path / "exp.yaml"  # the dataset's folder and options come from --set, not the file
    config.write_text(f"name: t\nmodalities: {{image: {{type: mbv3, stages: [{{width: 8}}]}}}}\n"
                      f"dataset: {{name: avmnist, path: /nowhere, cache_dir: {tmp_path / 'cache'}}}\n")
    sets = ["--set", f"dataset.path={root}", "--set", "dataset.options={val_size: 30}"]
    runner = CliRunner()
    result = runner.invoke(main, ["data", "prepare", "--config", str(config), *sets, "--quiet"])
    assert result.exit_code == 0 and "prepared avmnist" in result.output, result.output
    result = runner.invoke(main, ["data", "info", "--config", str(config), *sets, "--json"])
    assert result.exit_code == 0 and '"val_size": 30' in result.output, result.output
    result = runner.invoke(main, ["data", "baseline", "--config", str(config), *sets, "--json"])
    assert result.exit_code == 0 and '"late"' in result.output, result.output
    result = runner.invoke(main, ["data", "info", "avmnist", "--set", f"dataset.path={root}"])
    assert result.exit_code == 2
    assert result.stderr == f"error: --set 'dataset.path={root}' needs --config FILE (it overrides a key of that config)\n"


def test_usage_line_shows_the_dataset_argument_as_optional() -> None:
    for command in ("prepare", "info", "baseline"):
        usage = CliRunner().invoke(main, ["data", command, "--help"]).output.splitlines()[0]
        assert usage == f"Usage: main data {command} [OPTIONS] [NAME|PATH]"
