"""Counter-based random numbers for the kernels: a pure function of (seed, stream, frame, pixel).

A SplitMix64 finaliser hashes the counter, so every value is the same whatever the chunking of
the frames or the number of threads. ``draw(key, t, p)``:

    key   = mix(mix(seed + G) ^ ((stream + 1) * M))     one per (seed, stream)
    frame = mix(key + (t + 1) * G)                      one per frame
    h     = mix(frame + (p + 1) * G)                    one per pixel: 64 random bits

with G = 0x9E3779B97F4A7C15, M = 0xD1B54A32D192ED03 and all arithmetic modulo 2**64. ``p`` is
the pixel's index in the image, ``row * width + col``. From h: a uniform is its top 53 bits /
2**53; a normal is Box-Muller on its two 32-bit halves; a Poisson count uses CDF inversion
(lam < 10) or Hormann's PTRS rejection, taking further words mix(h + k*G).

Each kernel module names its own streams (``STREAM_*``); two quantities on different streams
never share a draw. Used by the integrate-and-fire encoder (``encode.py``) and the DVS pixel
model (``dvs.py``).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import JIT, njit

_G = np.uint64(0x9E3779B97F4A7C15)
_M = np.uint64(0xD1B54A32D192ED03)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_ONE = np.uint64(1)

_TWO_PI = 2.0 * math.pi
_POISSON_INVERSION_BELOW = 10.0


@njit(**JIT)
def _mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser: a bijection of 64-bit words that scatters every input bit."""
    z = (z ^ (z >> _S30)) * _C1
    z = (z ^ (z >> _S27)) * _C2
    return z ^ (z >> _S31)


@njit(**JIT)
def _stream_key(seed: int, stream: int) -> np.uint64:
    return _mix64(_mix64(np.uint64(seed) + _G) ^ ((np.uint64(stream) + _ONE) * _M))


@njit(**JIT)
def _frame_key(key: np.uint64, t: int) -> np.uint64:
    return _mix64(key + (np.uint64(t) + _ONE) * _G)


@njit(**JIT)
def _pixel_bits(frame_key: np.uint64, p: int) -> np.uint64:
    return _mix64(frame_key + (np.uint64(p) + _ONE) * _G)


@njit(**JIT)
def _unit(h: np.uint64) -> float:
    """Uniform in [0, 1) from the top 53 bits."""
    return float(h >> _S11) * 1.1102230246251565e-16  # 2**-53


@njit(**JIT)
def _normal(h: np.uint64) -> float:
    """Standard normal by Box-Muller from the two 32-bit halves (tails cut at ~6.7 sigma)."""
    u1 = (float(h >> _S32) + 0.5) * 2.3283064365386963e-10  # in (0, 1): log is finite
    u2 = float(h & _LOW32) * 2.3283064365386963e-10
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(_TWO_PI * u2)


@njit(**JIT)
def _poisson(lam: float, h: np.uint64) -> float:
    """Poisson(lam) from the 64-bit word h; further uniforms are mix(h + k*G), k = 1, 2, ...

    Below lam = 10: inversion of the CDF with one uniform. Above: Hormann's transformed
    rejection (PTRS), whose acceptance needs about 1.1 pairs of uniforms on average.
    """
    if not lam > 0.0:  # also NaN from bad input, which is reported after the kernel
        return 0.0
    if lam < _POISSON_INVERSION_BELOW:
        u = _unit(h)
        k = 0
        p = math.exp(-lam)
        cdf = p
        while u > cdf:
            k += 1
            p = p * lam / k
            if p == 0.0:  # the tail underflowed: u sits in the last ulp below 1
                break
            cdf = cdf + p
        return float(k)
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2.0)
    k = np.uint64(0)
    while True:
        u = _unit(_mix64(h + k * _G)) - 0.5
        v = _unit(_mix64(h + (k + _ONE) * _G))
        k += np.uint64(2)
        us = 0.5 - abs(u)
        if us == 0.0:  # u = -0.5 exactly: outside the hat; reject rather than divide by 0
            continue
        n = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= v_r:
            return n
        if n < 0.0 or (us < 0.013 and v > us):
            continue
        if v == 0.0:  # log(0) = -inf: accepted
            return n
        lhs = math.log(v) + math.log(inv_alpha) - math.log(a / (us * us) + b)
        if lhs <= -lam + n * loglam - math.lgamma(n + 1.0):
            return n
