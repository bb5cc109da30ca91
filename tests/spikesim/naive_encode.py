"""Slow, obvious reference for the integrate-and-fire encoder: one pixel, one step at a time.

Plain Python and NumPy scalars, written from the definitions in `spikesim.encode`,
`spikesim.noise` and the docstring of `spikesim._kernels.encode` (the counter-based hash),
not from the kernels. The tests compare the kernels against it.
"""

from __future__ import annotations

import math

import numpy as np

MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15
STREAM_MUL = 0xD1B54A32D192ED03
STREAM_INIT, STREAM_THRESHOLD, STREAM_DARK, STREAM_GAUSS, STREAM_POISSON = range(5)


def mix64(z: int) -> int:
    """SplitMix64 finaliser on a Python int (mod 2**64)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def draw(seed: int, stream: int, t: int, p: int) -> int:
    """The 64 random bits for (seed, stream, frame t, pixel p)."""
    key = mix64(mix64((seed + GOLDEN) & MASK) ^ (((stream + 1) * STREAM_MUL) & MASK))
    frame = mix64((key + (t + 1) * GOLDEN) & MASK)
    return mix64((frame + (p + 1) * GOLDEN) & MASK)


def unit(h: int) -> float:
    return (h >> 11) * 2.0**-53


def normal(h: int) -> float:
    u1 = ((h >> 32) + 0.5) * 2.0**-32
    u2 = (h & 0xFFFFFFFF) * 2.0**-32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def poisson(lam: float, h: int) -> float:
    """Inversion below lam = 10; PTRS transformed rejection above, uniforms mix(h + k*G)."""
    if not lam > 0.0:
        return 0.0
    if lam < 10.0:
        u = unit(h)
        k, p = 0, math.exp(-lam)
        cdf = p
        while u > cdf:
            k += 1
            p = p * lam / k
            if p == 0.0:
                break
            cdf = cdf + p
        return float(k)
    slam, loglam = math.sqrt(lam), math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    k = 0
    while True:
        u = unit(mix64((h + k * GOLDEN) & MASK)) - 0.5
        v = unit(mix64((h + (k + 1) * GOLDEN) & MASK))
        k += 2
        us = 0.5 - abs(u)
        if us == 0.0:
            continue
        n = float(math.floor((2.0 * a / us + b) * u + lam + 0.43))
        if us >= 0.07 and v <= v_r:
            return n
        if n < 0.0 or (us < 0.013 and v > us):
            continue
        if v == 0.0:
            return n
        lhs = math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b)
        if lhs <= -lam + n * loglam - math.lgamma(n + 1.0):
            return n


def naive_fixed_pattern(
    seed: int,
    height: int,
    width: int,
    threshold: float,
    init: str,
    noise: dict | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial potential, threshold and dark current per pixel, float32 (H, W) each."""
    noise = noise or {}
    mismatch = noise.get("threshold_mismatch", 0.0)
    dark_mean = noise.get("dark_current", 0.0)
    spread = noise.get("dark_current_spread", 0.0)
    sigma = math.sqrt(math.log(1.0 + spread * spread))
    v0 = np.zeros((height, width), np.float32)
    thr = np.zeros((height, width), np.float32)
    dark = np.zeros((height, width), np.float32)
    for r in range(height):
        for c in range(width):
            p = r * width + c
            th = threshold
            if mismatch > 0:
                z = normal(draw(seed, STREAM_THRESHOLD, 0, p))
                th = threshold * max(1.0 + mismatch * z, 0.1)
            thr[r, c] = np.float32(th)
            if dark_mean > 0:
                z = normal(draw(seed, STREAM_DARK, 0, p)) if sigma > 0 else 0.0
                dark[r, c] = np.float32(dark_mean * math.exp(sigma * z - 0.5 * sigma * sigma))
            if init == "random":
                v = np.float32(unit(draw(seed, STREAM_INIT, 0, p)) * float(thr[r, c]))
                v0[r, c] = v if v < thr[r, c] else np.float32(0.0)
    return v0, thr, dark


def naive_encode(
    frames: np.ndarray,
    *,
    threshold: float = 5.0,
    init: str = "random",
    noise: dict | None = None,
    seed: int = 0,
    t0: int = 0,
) -> np.ndarray:
    """frames (T, H, W) uint8 or float in [0, 1] -> spikes bool (T, H, W), pixel by pixel.

    noise is a dict of `NoiseModel` fields (or None). t0 is the absolute index of frames[0].
    """
    n_t, height, width = frames.shape
    noise = noise or {}
    gauss_std = noise.get("gaussian_std", 0.0)
    photons = noise.get("photons_per_unit", 0.0)
    v, thr, dark = naive_fixed_pattern(seed, height, width, threshold, init, noise)
    out = np.zeros(frames.shape, bool)
    for t in range(n_t):
        for r in range(height):
            for c in range(width):
                p = r * width + c
                if frames.dtype == np.uint8:
                    x = np.float32(frames[t, r, c]) / np.float32(255)
                else:
                    x = np.float32(frames[t, r, c])
                if photons > 0 or gauss_std > 0 or dark[r, c] > 0:
                    if photons > 0:
                        n = poisson(float(x) * photons, draw(seed, STREAM_POISSON, t0 + t, p))
                        x = np.float32(n / photons)
                    if gauss_std > 0:
                        z = normal(draw(seed, STREAM_GAUSS, t0 + t, p))
                        x = np.float32(float(x) + gauss_std * z)
                    x = x + dark[r, c]
                    x = max(x, np.float32(0.0))
                vv = np.float32(v[r, c] + x)
                if vv >= thr[r, c]:
                    out[t, r, c] = True
                    vv = np.float32(vv - thr[r, c])
                v[r, c] = vv
    return out
