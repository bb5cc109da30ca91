"""Slow, obvious references for `spikesim.audio`, written from its docstrings.

The STFT is a direct DFT sum per frame and bin; the ON/OFF sensor walks one channel and one
frame at a time with Python floats.
"""

from __future__ import annotations

import math

import numpy as np


def naive_window(name: str, n: int) -> list[float]:
    if name == "hann":
        return [0.5 - 0.5 * math.cos(2 * math.pi * k / n) for k in range(n)]
    if name == "hamming":
        return [0.54 - 0.46 * math.cos(2 * math.pi * k / n) for k in range(n)]
    return [1.0] * n


def naive_power_spectrogram(x, n_fft: int, hop: int, window: str = "hann") -> np.ndarray:
    """Frame t covers samples t*hop - n_fft/2 .. t*hop + n_fft/2 - 1 (zeros outside the
    signal); power of each bin by the DFT's defining sum."""
    x = [float(v) for v in x]
    n = len(x)
    win = naive_window(window, n_fft)
    n_frames = 1 + n // hop
    out = np.zeros((n_frames, n_fft // 2 + 1))
    for t in range(n_frames):
        start = t * hop - n_fft // 2
        frame = [(x[start + i] if 0 <= start + i < n else 0.0) * win[i] for i in range(n_fft)]
        for k in range(n_fft // 2 + 1):
            re = sum(frame[i] * math.cos(2 * math.pi * k * i / n_fft) for i in range(n_fft))
            im = -sum(frame[i] * math.sin(2 * math.pi * k * i / n_fft) for i in range(n_fft))
            out[t, k] = re * re + im * im
    return out


def htk_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def naive_onoff(level: np.ndarray, theta: float, top_db: float) -> np.ndarray:
    """DVS rule per channel on a dB spectrogram (T, C) -> counts (T, 2, C)."""
    t_len, c_len = level.shape
    floor = float(level.max()) - top_db
    out = np.zeros((t_len, 2, c_len), np.int64)
    for c in range(c_len):
        memory = max(float(level[0, c]), floor)
        for t in range(1, t_len):
            now = max(float(level[t, c]), floor)
            k = math.floor(abs(now - memory) / theta)
            if now > memory:
                out[t, 0, c] = k
                memory += k * theta
            elif now < memory:
                out[t, 1, c] = k
                memory -= k * theta
    return out
