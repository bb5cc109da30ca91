"""Slow, obvious references for the ``.dat`` bit layout: one pixel at a time, as the spec says.

File order: pixels row by row (rows flipped vertically first when ``flipud``); pixel p of a
frame is bit p % 8 (least significant first) of byte p // 8.
"""

from __future__ import annotations

import numpy as np


def naive_pack(spikes: np.ndarray, flipud: bool = True) -> np.ndarray:
    """(T, H, W) bool/uint8 (nonzero = spike) -> uint8 (T, H*W//8) in file order."""
    n_frames, height, width = spikes.shape
    out = np.zeros((n_frames, height * width // 8), dtype=np.uint8)
    for t in range(n_frames):
        frame = spikes[t][::-1] if flipud else spikes[t]
        pixels = frame.reshape(-1)
        for p in range(height * width):
            if pixels[p] != 0:
                out[t, p // 8] |= 1 << (p % 8)
    return out


def naive_unpack(packed: np.ndarray, height: int, width: int, flipud: bool = True) -> np.ndarray:
    """uint8 (T, H*W//8) in file order -> bool (T, H, W) in image order."""
    n_frames = packed.shape[0]
    out = np.zeros((n_frames, height, width), dtype=bool)
    for t in range(n_frames):
        pixels = np.zeros(height * width, dtype=bool)
        for p in range(height * width):
            pixels[p] = (int(packed[t, p // 8]) >> (p % 8)) & 1 == 1
        frame = pixels.reshape(height, width)
        out[t] = frame[::-1] if flipud else frame
    return out
