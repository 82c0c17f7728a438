"""AV-MNIST style degradations that keep either modality from being enough on its own."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from harmonic_nas.data.audio import trim_silence


def fit_pca(train: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (D,), components (D, D) as columns sorted by variance, and each one's share of variance."""
    x = np.asarray(train, dtype=np.float64)
    mean = x.mean(axis=0)
    cov = np.cov(x - mean, rowvar=False)
    # scipy's divide-and-conquer driver: numpy's eigh took 10 s instead of 0.5 s on a busy 2-core machine
    values, vectors = scipy.linalg.eigh(cov, driver="evd")
    order = np.argsort(values)[::-1]
    values = np.maximum(values[order], 0.0)
    return mean, vectors[:, order], values / values.sum()


def remove_pca_energy(
    x: np.ndarray, mean: np.ndarray, components: np.ndarray, share: np.ndarray, removed: float, keep: str = "leading"
) -> np.ndarray:
    """Remove ``removed`` of the variance (AV-MNIST: 75 %). ``keep="leading"`` projects onto the fewest
    leading components that carry the rest: a blurred digit whose detail is gone for any model, linear
    or not. ``keep="trailing"`` subtracts the leading components instead: a faint digit whose fine
    detail a CNN can still exploit (so fusion matters less)."""
    if removed <= 0:
        return np.asarray(x, dtype=np.float32)
    centred = np.asarray(x, dtype=np.float64) - mean
    cumulative = np.cumsum(share)
    if keep == "leading":
        k = int(np.searchsorted(cumulative, 1.0 - removed) + 1)
        top = components[:, :k]
        return (mean + (centred @ top) @ top.T).astype(np.float32)
    k = int(np.searchsorted(cumulative, removed) + 1)
    top = components[:, :k]
    return (x - (centred @ top) @ top.T).astype(np.float32)


def noise_bank(count: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Noise clips (count, length): white, pink, brown and band-limited noise with slow loudness
    changes, standing in for the environmental noise mixed into AV-MNIST's audio."""
    spectrum_freqs = np.fft.rfftfreq(length)
    spectrum_freqs[0] = spectrum_freqs[1]
    out = np.empty((count, length), dtype=np.float32)
    for i in range(count):
        white = np.fft.rfft(rng.standard_normal(length))
        kind = i % 4
        if kind == 0:
            shape = np.ones_like(spectrum_freqs)
        elif kind == 1:
            shape = spectrum_freqs**-0.5
        elif kind == 2:
            shape = spectrum_freqs**-1.0
        else:
            centre, width = rng.uniform(0.02, 0.4), rng.uniform(0.02, 0.15)
            shape = np.exp(-0.5 * ((spectrum_freqs - centre) / width) ** 2)
        clip = np.fft.irfft(white * shape, n=length)
        envelope = 1.0 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.5, 4.0) * np.arange(length) / length + rng.uniform(0, 6.3))
        clip = clip * envelope
        out[i] = clip / (np.abs(clip).max() + 1e-9)
    return out


def recorded_noise(recordings: list[np.ndarray], length: int, per_clip: int, rng: np.random.Generator) -> np.ndarray:
    """Noise clips (len(recordings) * per_clip, length): random windows of each recording (silence at its
    ends cut, looped when shorter than ``length``), peak-normalised like ``noise_bank``'s."""
    out = np.empty((len(recordings) * per_clip, length), dtype=np.float32)
    for i, recording in enumerate(recordings):
        sound = trim_silence(recording)
        looped = np.tile(sound, -(-(length + len(sound)) // len(sound)))
        for j, start in enumerate(rng.integers(len(sound), size=per_clip)):
            clip = looped[start : start + length]
            out[i * per_clip + j] = clip / (np.abs(clip).max() + 1e-9)
    return out


def mix_power(clean: np.ndarray, noise: np.ndarray, snr_db: np.ndarray) -> np.ndarray:
    """Power spectrograms of speech plus noise at the given SNRs, (B, M, F) each; the cross term of
    the two signals averages out and is left out, so mixing needs no STFT per sample."""
    speech = clean / (clean.mean(axis=(1, 2), keepdims=True) + 1e-12)
    background = noise / (noise.mean(axis=(1, 2), keepdims=True) + 1e-12)
    gain = (10.0 ** (snr_db / 10.0)).reshape(-1, 1, 1)
    return (speech * gain + background).astype(np.float32)
