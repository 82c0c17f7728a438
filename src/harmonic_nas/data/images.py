"""Pictures to fixed-size float arrays: transparent pixels onto white, padded to a square (aspect
kept), resized; (3, S, S) float32 in [0, 1]."""

from __future__ import annotations

import numpy as np
from PIL import Image


def square_rgb(image: Image.Image, size: int) -> np.ndarray:
    rgba = image.convert("RGBA")
    box = rgba.getbbox()
    if box is not None:
        rgba = rgba.crop(box)
    side = max(rgba.size)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(rgba, ((side - rgba.size[0]) // 2, (side - rgba.size[1]) // 2))
    resized = canvas.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 255.0
