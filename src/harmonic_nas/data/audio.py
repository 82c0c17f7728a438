"""Audio to fixed-size log-mel spectrograms with numpy/scipy (torchaudio does not exist here).

Everything is resampled to 8 kHz: the telephone recordings are 8 kHz, so a common band keeps the source
of a clip from being audible in its spectrogram."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import scipy.fft
import soundfile

from harmonic_nas.errors import UserError

SAMPLE_RATE = 8000
WIN_LENGTH = 256  # 32 ms analysis window
N_FFT = 512  # zero-padded so that 112 mel bands all cover at least one FFT bin
F_MIN, F_MAX = 50.0, 4000.0


def read_audio(path: Path | str, data: bytes | None = None) -> np.ndarray:
    """Mono float32 at SAMPLE_RATE from a file (or its bytes); UserError naming the file if unreadable."""
    import io

    try:
        source = io.BytesIO(data) if data is not None else str(path)
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: unreadable audio ({reason})") from None
    if samples.size == 0:
        raise UserError(f"{path}: unreadable audio (no samples)")
    return resample(samples.mean(axis=1), rate)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    from scipy.signal import resample_poly  # 1.5 s to import: not for every command that names a dataset

    if rate == SAMPLE_RATE:
        return samples.astype(np.float32)
    g = gcd(int(rate), SAMPLE_RATE)
    return resample_poly(samples.astype(np.float64), SAMPLE_RATE // g, int(rate) // g).astype(np.float32)


def trim_silence(samples: np.ndarray, top_db: float = 35.0) -> np.ndarray:
    """Cut the leading and trailing frames more than ``top_db`` below the loudest one."""
    frame = 128
    n = len(samples) // frame
    if n >= 1:
        energy = np.square(samples[: n * frame].reshape(n, frame)).mean(axis=1) + 1e-12
        db = 10 * np.log10(energy)
        loud = np.flatnonzero(db > db.max() - top_db)
        samples = samples[max(loud[0] - 1, 0) * frame : min(loud[-1] + 2, n) * frame]
    return samples


def trim_and_fit(samples: np.ndarray, length: int, top_db: float = 35.0) -> np.ndarray:
    """Cut leading/trailing silence, peak-normalise, then centre-pad, or keep the loudest ``length`` window."""
    samples = trim_silence(samples, top_db)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 0:
        samples = samples / peak
    if len(samples) > length:
        power = np.cumsum(np.concatenate([[0.0], np.square(samples, dtype=np.float64)]))
        start = int(np.argmax(power[length:] - power[:-length]))
        return samples[start : start + length].astype(np.float32)
    out = np.zeros(length, dtype=np.float32)
    offset = (length - len(samples)) // 2
    out[offset : offset + len(samples)] = samples
    return out


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_mels: int) -> np.ndarray:
    """Triangular filters (n_mels, N_FFT // 2 + 1) on the HTK mel scale, each normalised to unit area."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(F_MIN)), _hz_to_mel(np.array(F_MAX)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    weights = np.maximum(0.0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    return weights.astype(np.float32)


def mel_power(clips: np.ndarray, n_mels: int, n_frames: int) -> np.ndarray:
    """Power mel spectrograms (B, n_mels, n_frames) of equal-length clips (B, L), float32."""
    clips = np.asarray(clips, dtype=np.float32)
    length = clips.shape[1]
    hop = length // n_frames
    padded = np.pad(clips, ((0, 0), (WIN_LENGTH // 2, WIN_LENGTH)))
    starts = np.arange(n_frames) * hop
    window = np.hanning(WIN_LENGTH).astype(np.float32)
    bank = mel_filterbank(n_mels)
    out = np.empty((len(clips), n_mels, n_frames), dtype=np.float32)
    index = starts[:, None] + np.arange(WIN_LENGTH)
    for b in range(0, len(clips), 256):
        frames = padded[b : b + 256, index] * window  # (B, F, W)
        spectrum = scipy.fft.rfft(frames, n=N_FFT, axis=-1)  # complex64: float32 in, float32 out
        power = spectrum.real**2 + spectrum.imag**2
        out[b : b + 256] = np.einsum("bfk,mk->bmf", power, bank, optimize=True)
    return out


def log_compress(power: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    """Decibels with a floor: the representation the spectrogram models see."""
    return (10.0 * np.log10(np.maximum(power, floor))).astype(np.float32)
