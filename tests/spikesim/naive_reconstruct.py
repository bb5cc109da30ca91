"""Slow, obvious TFI / TFP: the oracles that spikesim.reconstruct is tested against.

Written straight from the definitions, one pixel and one time at a time, with float
division and truncation as in SpikeCV's formulas. Only for small arrays.
"""

from __future__ import annotations

import numpy as np


def naive_tfi(spikes: np.ndarray, window: int) -> np.ndarray:
    """(T, H, W) bool/0-1 -> uint8 (T - 2w, H, W).

    At time t: interval = (first spike at or after t) - (last spike strictly before t);
    value = int(255 / interval), or 0 if either spike does not exist.
    """
    total, height, width = spikes.shape
    out = np.zeros((total - 2 * window, height, width), np.uint8)
    for y in range(height):
        for x in range(width):
            times = [t for t in range(total) if spikes[t, y, x]]
            for t in range(window, total - window):
                before = [s for s in times if s < t]
                after = [s for s in times if s >= t]
                if before and after:
                    out[t - window, y, x] = int(255 / (after[0] - before[-1]))
    return out


def naive_tfp(spikes: np.ndarray, half_window: int) -> np.ndarray:
    """(T, H, W) bool/0-1 -> uint8 (T - 2h, H, W): mean of frames t-h..t+h, x 255, truncated."""
    total, height, width = spikes.shape
    h = half_window
    out = np.zeros((total - 2 * h, height, width), np.uint8)
    for y in range(height):
        for x in range(width):
            for t in range(h, total - h):
                window = [1.0 if spikes[s, y, x] else 0.0 for s in range(t - h, t + h + 1)]
                out[t - h, y, x] = int(sum(window) / len(window) * 255)
    return out
