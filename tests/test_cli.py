"""The command line: every kind of bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from harmonic_nas.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD = """
name: t
modalities:
  image: {type: mbv3, stages: [{width: 16}]}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_check_accepts_every_shipped_config() -> None:
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    assert configs, "configs/ ships at least the demo config"
    for config in configs:
        code, out, err = run("config", "check", str(config))
        assert code == 0, err
        assert "ok" in out


def test_check_show_prints_defaults(tmp_path: Path) -> None:
    code, out, _ = run("config", "check", write(tmp_path, GOOD), "--show", "--set", "supernet.epochs=7")
    assert code == 0
    assert "epochs: 7" in out and "weight_decay: 0.0001" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "supernet: {epoch: 3}\n", "supernet.epoch: unknown key (allowed: batch_size"),
        (GOOD + "supernet: {epochs: ten}\n", "supernet.epochs: Input should be a valid integer"),
        (GOOD.replace("width: 16", "widht: 16"), "modalities.image.stages.0.widht: unknown key"),
        (GOOD.replace("mbv3", "mbv4"), "modalities.image: Input tag 'mbv4'"),
        (GOOD + "fusion: {length: 15}\n", "fusion: length must be a perfect square"),
        (GOOD + "fusion: {operators: [sum, atention]}\n", "fusion.operators: unknown fusion operator 'atention'; known"),
        (GOOD + "fusion: {min_modalities: 2}\n", "fusion.min_modalities is 2, but the experiment has only 1"),
        (GOOD + "  text: {type: maxout}\n  speech: {type: mbv3, stages: [{width: 8}]}\nfusion: {cells: [1, 2]}\n",
         "fusion.cells: a network of 1 cell(s) reads at most 2 taps, fewer than the 3 modalities"),
        ("name: t\nmodalities: [1, 2\n", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping of keys at the top level, found list"),
    ],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    code, out, err = run("config", "check", path)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {path}")
    assert expected in err


def test_missing_config_file(tmp_path: Path) -> None:
    code, _, err = run("train-supernet", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and err == f"error: {tmp_path / 'nope.yaml'}: config file not found\n"


def test_unknown_modality_and_contradicting_flags(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    code, _, err = run("train-supernet", "--config", path, "--modality", "audio")
    assert code == 2 and "--modality 'audio' is not in" in err
    code, _, err = run("train-supernet", "--config", path, "--resume", "--force")
    assert code == 2 and "contradict" in err


def test_bad_override_and_bad_device(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    code, _, err = run("config", "check", path, "--set", "supernet.epochs")
    assert code == 2 and "expected KEY.PATH=VALUE" in err
    code, _, err = run("train-supernet", "--config", path, "--device", "cuda:7")
    assert code == 2 and "cuda" in err and err.count("\n") == 1


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "bogus: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "harmonic_nas", "config", "check", path], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.strip().startswith("error:")


def test_config_reference_in_docs_is_current() -> None:
    code, out, _ = run("config", "reference")
    assert code == 0 and "| `epochs` |" in out
    assert (ROOT / "docs" / "config.md").read_text() == out, "regenerate: harmonic-nas config reference > docs/config.md"


# --- one command line: every command's help, its examples, its defaults ---------------------------------
def leaf_commands() -> list[list[str]]:
    """The argv prefix of every command that does something (``data info``, ``search`` ...)."""
    import click

    found = []
    for name in main.list_commands(None):  # type: ignore[arg-type]
        command = main.get_command(None, name)  # type: ignore[arg-type]
        if isinstance(command, click.Group):
            found += [[name, sub] for sub in command.commands]
        else:
            found.append([name])
    return found


def examples(help_text: str) -> list[list[str]]:
    """The harmonic-nas command lines of a help's Examples block (continued lines joined, ``a && b`` split)."""
    import shlex

    block = help_text.split("Examples", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    lines = [part.strip() for line in block.splitlines()[1:] for part in line.split("&&")]
    words = [shlex.split(line)[1:] for line in lines if line.startswith("harmonic-nas ")]
    return [w[: w.index(">")] if ">" in w else w for w in words]  # without a redirection


def parses(command: list[str], args: list[str]) -> None:
    """Parse ``args`` as ``command`` does (options, choices, types, required ones) without running it."""
    import click

    ctx = click.Context(main, info_name="harmonic-nas")
    found: click.Command = main
    for name in command:
        found = found.get_command(ctx, name)  # type: ignore[attr-defined]
        if isinstance(found, click.Group):
            ctx = click.Context(found, info_name=name, parent=ctx)
    found.make_context(command[-1], list(args), parent=ctx)


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_every_command_has_examples_that_parse(command: list[str]) -> None:
    code, out, err = run(*command, "--help")
    assert code == 0, err
    found = examples(out)
    assert command in [args[: len(command)] for args in found], f"no example in {' '.join(command)} --help"
    for args in found:  # an example may first make what the command reads (export before reproduce)
        path = next(c for c in leaf_commands() if args[: len(c)] == c)
        parses(path, args[len(path):])  # a misspelt option, a bad choice, a missing required one raise
    assert "(default" not in out  # one style: click's [default: ...]


@pytest.mark.parametrize("group", [[], ["config"], ["data"], ["lut"]], ids=lambda g: " ".join(["harmonic-nas", *g]))
def test_the_groups_have_examples_that_parse(group: list[str]) -> None:
    code, out, err = run(*group, "--help")
    assert code == 0 and examples(out), err
    for args in examples(out):
        path = next(c for c in leaf_commands() if args[: len(c)] == c)
        parses(path, args[len(path):])


def test_options_choose_from_the_registries() -> None:
    from harmonic_nas.config.schema import RUNTIMES
    from harmonic_nas.model_manifest import FORMATS
    from harmonic_nas.search.executor_names import EXECUTORS
    from harmonic_nas.search.variants import VARIANTS

    search_help = " ".join(run("search", "--help")[1].split())  # as one line: click wraps at 80 columns
    assert f"[{'|'.join(VARIANTS)}]" in search_help and f"[{'|'.join(EXECUTORS)}]" in search_help
    assert "[cpu|cuda|cuda:N|mps]" in search_help and "[default: from runtime.workers]" in search_help
    assert f"[{'|'.join(RUNTIMES)}]" in run("profile", "--help")[1]
    assert f"[{'|'.join(FORMATS)}]" in run("export", "--help")[1]
    code, _, err = run("profile", "--config", "c.yaml", "--runtime", "tflite")
    assert code == 2 and "'tflite' is not one of 'torch', 'onnxruntime'" in err
    code, _, err = run("run", "--config", "c.yaml", "--device", "tpu")
    assert code == 2 and "'tpu' is not one of cpu, cuda, cuda:N, mps" in err


def test_run_takes_the_search_flags(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    _, out, _ = run("run", "--help")
    assert all(flag in out for flag in ("--force", "--workers", "--device"))
    code, _, err = run("run", "--config", path, "--workers", "0")
    assert code == 2 and err == "error: --workers must be at least 1, found 0\n"


def test_help_and_a_typo_never_import_torch() -> None:
    """`harmonic-nas --help`, a mistyped command and every command's --help answer without loading torch."""
    code = f"""
import sys
from click.testing import CliRunner
from harmonic_nas.cli import main
runner = CliRunner()
assert runner.invoke(main, ["--help"]).exit_code == 0
assert runner.invoke(main, ["serch"]).exit_code == 2
for command in {leaf_commands()!r}:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0, (command, result.output)
    assert "torch" not in sys.modules, command
"""
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("args", "expected"), [
    (["statsu"], "error: no such command 'statsu' (see main --help)"),
    (["profile", "--runtime", "tensorrt"],
     "error: invalid value for '--runtime': 'tensorrt' is not one of 'torch', 'onnxruntime', 'onnxruntime-int8' (see main profile --help)"),
    (["data", "info", "--nope"], "error: no such option '--nope' (see main data info --help)"),
    (["--bogus"], "error: no such option '--bogus' (see main --help)"),
])
def test_a_usage_error_is_one_line_naming_the_help(args: list[str], expected: str) -> None:
    """Click's own errors (a typo, a bad choice) read like every other bad input: one line, exit 2."""
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.output.strip() == expected, result.output
