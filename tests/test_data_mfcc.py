"""The 20 x 20 MFCC of SMIL's loader: frames of a decimated clip, zero padding, the dB and DCT scale."""

from __future__ import annotations

import numpy as np

from harmonic_nas.data.mfcc import slaney_filterbank, smil_mfcc


def test_frames_come_from_every_third_sample_and_the_rest_is_zero_padding() -> None:
    clip = np.random.default_rng(0).normal(size=4000).astype(np.float32)  # 0.5 s at 8 kHz
    mfcc = smil_mfcc(clip)
    assert mfcc.shape == (20, 20) and mfcc.dtype == np.float32
    frames = 1 + (4000 // 3 + 1) // 512  # 1334 samples kept, centred frames every 512
    assert np.all(mfcc[:, :frames] != 0) and np.all(mfcc[:, frames:] == 0)
    long = np.random.default_rng(1).normal(size=8000 * 5)  # 5 s: more than 20 frames, the first 20 kept
    assert np.all(smil_mfcc(long) != 0)


def test_ten_times_louder_moves_only_the_energy_coefficient() -> None:
    """Power in dB then an orthonormal DCT over 128 bands: amplitude x10 is +20 dB in every band, so c0
    grows by 20 * sqrt(128) and the shape coefficients stay."""
    clip = np.random.default_rng(2).normal(size=6000) * 0.01
    quiet, loud = smil_mfcc(clip), smil_mfcc(clip * 10)
    frames = 1 + (6000 // 3) // 512
    assert np.allclose(loud[0, :frames] - quiet[0, :frames], 20 * np.sqrt(128), atol=1e-3)
    assert np.allclose(loud[1:], quiet[1:], atol=1e-3)


def test_slaney_filters_tile_the_band_with_area_normalisation() -> None:
    bank = slaney_filterbank()
    assert bank.shape == (128, 1025) and (bank >= 0).all()
    centres = bank.argmax(axis=1)
    assert np.all(np.diff(centres) >= 0) and centres[0] < 20 and centres[-1] > 980
    # below 1 kHz the Slaney scale is linear: equal widths, so equal peak heights
    low = bank.max(axis=1)[:10]
    assert np.allclose(low, low[0], rtol=0.1)
