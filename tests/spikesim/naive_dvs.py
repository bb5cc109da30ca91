"""Slow, obvious reference for the DVS pixel model: one pixel, one frame, one event at a time.

Plain Python floats and ints, written from the equations in the docstring of `spikesim.dvs`
and the counter-based hash of `spikesim._kernels.rng` (via `naive_encode`), not from the
kernels. Events are collected in a list and sorted by (t, y, x, emission order) at the end.
"""

from __future__ import annotations

import math

import numpy as np

from .naive_encode import draw, normal, unit

STREAM_ON, STREAM_OFF, STREAM_LEAK_RATE, STREAM_LEAK_JITTER, STREAM_SHOT = 16, 17, 18, 19, 20
TOLERANCE = 1e-6
NEVER = -(2**62)


def linlog(y: float) -> float:
    return y * (math.log(20.0) / 20.0) if y <= 20.0 else math.log(y)


def fixed_pattern(seed: int, n: int, model: dict) -> tuple[list, list, list]:
    """Per-pixel ON threshold, OFF threshold and leak rate (lists of n floats)."""
    on, off, leak = [], [], []
    sigma = model["threshold_sigma"]
    for p in range(n):
        a, b = model["threshold_on"], model["threshold_off"]
        if sigma > 0:
            a = model["threshold_on"] + sigma * normal(draw(seed, STREAM_ON, 0, p))
            b = model["threshold_off"] + sigma * normal(draw(seed, STREAM_OFF, 0, p))
        on.append(max(a, 0.01))
        off.append(max(b, 0.01))
        rate = model["leak_hz"]
        if rate > 0 and model["leak_spread_decades"] > 0:
            z = normal(draw(seed, STREAM_LEAK_RATE, 0, p))
            rate = model["leak_hz"] * 10.0 ** (model["leak_spread_decades"] * z)
        leak.append(rate)
    return on, off, leak


def naive_dvs(frames: np.ndarray, *, fps: float, model: dict, seed: int = 0) -> np.ndarray:
    """frames (T, H, W) uint8 (grey levels) or float in [0, 1] -> events (n, 4) int64 rows
    [t us, x, y, p] sorted by (t, y, x, emission order). model: the `DVSModel` fields."""
    n_t, height, width = frames.shape
    n = height * width
    dt = 1.0 / fps
    times = [round(a * 1e6 / fps) for a in range(n_t)]  # Python round: half to even, as rint
    thr_on, thr_off, leak = fixed_pattern(seed, n, model)
    refractory = round(model["refractory_s"] * 1e6)
    lowpass_w = 2.0 * math.pi * model["cutoff_hz"] * dt
    shot_half = model["shot_hz"] / 2.0 * dt
    events = []  # (t, y, x, order, p)
    order = 0
    for r in range(height):
        for c in range(width):
            p = r * width + c
            lp = b = 0.0
            last = NEVER
            for a in range(n_t):
                if frames.dtype == np.uint8:
                    y = float(frames[a, r, c])
                else:
                    y = float(frames[a, r, c]) * 255.0
                L = linlog(y)
                if a == 0:
                    lp = b = L
                    continue
                if lowpass_w > 0:
                    eps = min(1.0, (y + 20.0) / 275.0 * lowpass_w)
                    lp = (1.0 - eps) * lp + eps * L
                else:
                    lp = L
                if model["leak_hz"] > 0:
                    rate = leak[p]
                    if model["leak_jitter"] > 0:
                        z = normal(draw(seed, STREAM_LEAK_JITTER, a, p))
                        rate = rate * (1.0 - model["leak_jitter"] * z)
                    b = b - dt * rate * thr_on[p]
                d = lp - b
                if d > 0:
                    k, pol, theta = math.floor((d + TOLERANCE) / thr_on[p]), 1, thr_on[p]
                else:
                    k, pol, theta = math.floor((TOLERANCE - d) / thr_off[p]), -1, thr_off[p]
                t0, t1 = times[a - 1], times[a]
                emitted = 0
                for j in range(1, k + 1):
                    t = t0 + ((t1 - t0) * j) // k
                    if t - last >= refractory:
                        events.append((t, r, c, order, pol))
                        order += 1
                        last = t
                        emitted += 1
                b = b + emitted * theta if pol > 0 else b - emitted * theta
                if shot_half > 0:
                    f = shot_half * ((0.25 - 1.0) * ((y + 20.0) / 275.0) + 1.0)
                    p_on = min(0.5, f * (model["threshold_on"] / thr_on[p]))
                    p_off = min(0.5, f * (model["threshold_off"] / thr_off[p]))
                    u = unit(draw(seed, STREAM_SHOT, a, p))
                    s = -1 if u < p_off else (1 if u >= 1.0 - p_on else 0)
                    if s and t1 - last >= refractory:
                        events.append((t1, r, c, order, s))
                        order += 1
                        last = t1
                        b = lp
    events.sort()
    out = np.array([(t, x, y, p) for t, y, x, _, p in events], np.int64)
    return out.reshape(-1, 4)
