"""The commands the docs show cannot drift from the command line.

* Every ``harmonic-nas ...`` line in a code block of README.md and docs/quickstart.md runs, in the order the
  page shows it, on the smoke config (the demo config's commands too: same job, a smaller budget), in a
  workspace where the page's run directories are copies of the session's finished smoke run. A line the
  page shows again (a transcript of a command shown above it) runs once: its words are what could drift.
* Every inline ``harmonic-nas ...`` summary in README.md and docs/*.md names a command that exists and only
  options that command has."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_PAGES = [ROOT / "README.md", ROOT / "docs" / "quickstart.md"]
ALL_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```")
INLINE = re.compile(r"`((?:\.venv/bin/)?harmonic-nas [^`]+)`")
# /tmp/NAME on a page: a run directory (a copy of the smoke run) unless the page only writes to it.
TMP_PATH = re.compile(r"/tmp/([\w.-]+)")


def shown_commands(page: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, argv after ``harmonic-nas``) of every command line in the page's code blocks; a
    transcript's ``$ `` prompt and a trailing ``# comment`` are dropped."""
    in_block = False
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line.strip()):
            in_block = not in_block
            continue
        text = line.strip().removeprefix("$ ")
        if in_block and text.startswith(("harmonic-nas ", ".venv/bin/harmonic-nas ")):
            argv = shlex.split(text, comments=True)
            yield number, argv[1:]


def _workspace(tmp_path: Path, smoke_run: Path, commands: list[list[str]]) -> tuple[Path, dict[str, str]]:
    """A working directory that sees the repository's configs and data cache, and the page's /tmp paths
    mapped into it. Every run directory a page names (/tmp/NAME but an --out of export) is the smoke run
    the page tells of: one copy of the finished smoke run, so a command shown twice on two names runs
    once; runs/smoke (where --config without --out writes) is another copy."""
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    for shared in ("configs", ".cache"):
        (ROOT / shared).mkdir(exist_ok=True)
        (work / shared).symlink_to(ROOT / shared)
    shutil.copytree(smoke_run, work / "runs" / "smoke")
    run_copy = work / "tmp" / "run"
    shutil.copytree(smoke_run, run_copy)
    mapping = {}
    for argv in commands:
        for index, token in enumerate(argv):
            for name in TMP_PATH.findall(token):
                written_by_export = argv[0] == "export" and index > 0 and argv[index - 1] == "--out"
                mapping[f"/tmp/{name}"] = str(work / "tmp" / name if written_by_export else run_copy)
    return work, mapping


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: p.name)
def test_every_shown_command_runs(page: Path, smoke_run: Path, tmp_path: Path) -> None:
    shown = list(shown_commands(page))
    assert shown, f"{page.name} shows no harmonic-nas command"
    work, mapping = _workspace(tmp_path, smoke_run, [argv for _, argv in shown])
    env = {**os.environ, "COLUMNS": "120"}
    ran: set[tuple[str, ...]] = set()
    for number, argv in shown:
        args = [TMP_PATH.sub(lambda m: mapping[m.group(0)], a).replace("configs/demo.yaml", "configs/smoke.yaml")
                for a in argv]
        if tuple(args) in ran:
            continue
        ran.add(tuple(args))
        done = subprocess.run([sys.executable, "-m", "harmonic_nas", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{page.name}:{number}: harmonic-nas {shlex.join(argv)}\n{done.stderr[-2000:]}"


def _command(path: list[str]) -> tuple[click.Command, list[str]]:
    """The deepest (sub)command that ``path`` names and the words after it."""
    from harmonic_nas.cli import main

    command: click.Command = main
    words = list(path)
    while words and isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), words[0])
        if sub is None:
            break
        command, words = sub, words[1:]
    return command, words


def inline_summaries() -> Iterator[tuple[str, str]]:
    for page in ALL_PAGES:
        for text in INLINE.findall(page.read_text(encoding="utf-8")):
            yield f"{page.relative_to(ROOT)}", text.removeprefix(".venv/bin/").removeprefix("harmonic-nas ")


@pytest.mark.parametrize(("page", "summary"), list(inline_summaries()))
def test_every_inline_summary_names_real_options(page: str, summary: str) -> None:
    words = summary.replace("\\|", "|").split()
    command, rest = _command(words)
    assert command.name != "main" or not words or words[0].startswith("-"), f"{page}: no command {words[0]!r}"
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)} | {"--help", "-h"}
    named = {w.split("=")[0].strip("[]()|,") for w in rest if w.lstrip("[(").startswith("--")}
    unknown = {o.lstrip("[(") for o in named} - options
    assert not unknown, f"{page}: `harmonic-nas {summary}`: {command.name} has no {', '.join(sorted(unknown))}"
