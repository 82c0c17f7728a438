"""The 20 x 20 MFCC that SMIL's SoundMNIST loader (and the Harmonic-NAS authors' copy of it) feeds its
audio models, reproduced in numpy so that `soundmnist` with `recipe: smil` sees the inputs they saw.

Their steps, as facts: every third sample of the clip is kept (no low-pass filter), then MFCCs are taken
as if the rate were 8 kHz with librosa's defaults before 0.10 (2048-point FFT, hop 512, periodic Hann
window, frames centred by reflection, 128 Slaney mel bands from 0 to 4 kHz with Slaney area
normalisation, power in dB with an 80 dB floor below the peak, orthonormal DCT-II, 20 coefficients);
the frames are padded with zeros to 20 columns (a 1 s clip has 6 frames)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

RATE = 8000
N_FFT, HOP, N_MELS, N_MFCC, FRAMES = 2048, 512, 128, 20, 20
TOP_DB = 80.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz a mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(f < 1000.0, f / (200.0 / 3.0), 15.0 + np.log(np.maximum(f, 1e-12) / 1000.0) / log_step)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(m < 15.0, m * (200.0 / 3.0), 1000.0 * np.exp(log_step * (m - 15.0)))


@lru_cache(maxsize=1)
def slaney_filterbank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangles on Slaney's scale, each scaled by 2 / its width in Hz."""
    freqs = np.linspace(0.0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(RATE / 2)), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def smil_mfcc(samples: np.ndarray) -> np.ndarray:
    """(N_MFCC, FRAMES) float32 MFCCs of one mono clip at 8 kHz; longer clips keep their first frames."""
    y = np.asarray(samples, dtype=np.float64)[::3]
    padded = np.pad(y, N_FFT // 2, mode="reflect") if len(y) > 1 else np.pad(y, N_FFT // 2)
    count = 1 + (len(padded) - N_FFT) // HOP
    index = np.arange(count)[:, None] * HOP + np.arange(N_FFT)[None, :]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    power = np.abs(scipy.fft.rfft(padded[index] * window, axis=1)) ** 2  # (frames, bins)
    decibels = 10.0 * np.log10(np.maximum(slaney_filterbank() @ power.T, 1e-10))
    decibels = np.maximum(decibels, decibels.max() - TOP_DB)
    coefficients = scipy.fft.dct(decibels, type=2, axis=0, norm="ortho")[:N_MFCC]
    out = np.zeros((N_MFCC, FRAMES), dtype=np.float32)
    out[:, : min(count, FRAMES)] = coefficients[:, :FRAMES]
    return out
