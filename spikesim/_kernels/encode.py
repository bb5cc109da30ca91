"""Integrate-and-fire kernels and the counter-based random numbers they draw.

Private: ``spikesim.encode`` validates and calls these. Slow reference for the tests:
``tests/spikesim/naive_encode.py``.

Random numbers are a pure function of (seed, stream, frame index, pixel index): a SplitMix64
finaliser hashes the counter, so every value is the same whatever the chunking of the frames
or the number of threads. ``draw(key, t, p)``:

    key   = mix(mix(seed + G) ^ ((stream + 1) * M))     one per (seed, stream)
    frame = mix(key + (t + 1) * G)                      one per frame
    h     = mix(frame + (p + 1) * G)                    one per pixel: 64 random bits

with G = 0x9E3779B97F4A7C15, M = 0xD1B54A32D192ED03 and all arithmetic modulo 2**64.
``p`` is always the pixel's index in the image as given, ``row * width + col`` (never the
file order), so the packed and unpacked paths see the same noise. From h: a uniform is its
top 53 bits / 2**53; a normal is Box-Muller on its two 32-bit halves; a Poisson count uses
CDF inversion (lam < 10) or Hormann's PTRS rejection, taking further words mix(h + k*G).

Parallel layout: the H*W pixels are cut into contiguous blocks; a thread takes a whole block
through every frame of the chunk (its state stays in L1, the input streams in long runs) and
writes only its block's outputs. Results do not depend on the number of blocks.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import JIT, PARALLEL, njit, prange
from .pack import _pack_word

# The RNG lives in rng.py (shared with the DVS kernels); names are re-exported for callers here.
from .rng import _frame_key, _mix64, _normal, _pixel_bits, _poisson, _stream_key, _unit  # noqa: F401

# Streams: each random quantity has its own, so switching one noise on never moves another.
STREAM_INIT = 0
STREAM_THRESHOLD = 1
STREAM_DARK = 2
STREAM_GAUSS = 3
STREAM_POISSON = 4


@njit(**JIT)
def _fixed_pattern(
    seed: int,
    height: int,
    width: int,
    threshold: float,
    init_random: bool,
    mismatch: float,
    dark_mean: float,
    dark_spread: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel initial potential, threshold and dark current, float32 (H, W) each.

    threshold_p = threshold * max(1 + mismatch * z, 0.1), z ~ N(0, 1);
    dark_p is log-normal with mean dark_mean and coefficient of variation dark_spread
    (so never negative); v0_p = u * threshold_p with u ~ U[0, 1), folded back to 0 if the
    float32 rounding reaches threshold_p.
    """
    n = height * width
    v0 = np.zeros(n, np.float32)
    thr = np.empty(n, np.float32)
    dark = np.zeros(n, np.float32)
    k_thr = _frame_key(_stream_key(seed, STREAM_THRESHOLD), 0)
    k_dark = _frame_key(_stream_key(seed, STREAM_DARK), 0)
    k_init = _frame_key(_stream_key(seed, STREAM_INIT), 0)
    sigma = math.sqrt(math.log(1.0 + dark_spread * dark_spread))
    for p in range(n):
        th = threshold
        if mismatch > 0.0:
            th = threshold * max(1.0 + mismatch * _normal(_pixel_bits(k_thr, p)), 0.1)
        thr[p] = np.float32(th)
        if dark_mean > 0.0:
            z = _normal(_pixel_bits(k_dark, p)) if sigma > 0.0 else 0.0
            dark[p] = np.float32(dark_mean * math.exp(sigma * z - 0.5 * sigma * sigma))
        if init_random:
            v = np.float32(_unit(_pixel_bits(k_init, p)) * np.float64(thr[p]))
            v0[p] = v if v < thr[p] else np.float32(0.0)
    return v0.reshape(height, width), thr.reshape(height, width), dark.reshape(height, width)


# The step helpers take 1-D contiguous slices, made once per block and frame: Numba
# vectorises their loops, which it does not do for offset indexing into shared arrays.


@njit(**JIT)
def _load(src: np.ndarray, is_int: bool, buf: np.ndarray) -> bool:
    """buf[:] = intensity of src as float32 (uint8 / 255); True if a float is outside [0, 1]."""
    if is_int:
        for k in range(src.shape[0]):
            buf[k] = np.float32(src[k]) / np.float32(255.0)
        return False
    bad = False
    for k in range(src.shape[0]):
        x = np.float32(src[k])
        bad = bad | (x < 0.0) | (x > 1.0) | (x != x)
        buf[k] = x
    return bad


@njit(**JIT)
def _add_noise(
    buf: np.ndarray,
    p0: int,
    t: int,
    dark: np.ndarray,
    key_gauss: np.uint64,
    gauss_std: float,
    key_poisson: np.uint64,
    photons: float,
) -> None:
    """Noise on buf[k], the float32 intensity of image pixel p0 + k at frame t, in place.

    Shot noise, then Gaussian, then the pixel's dark current dark[k]; the sum is clipped at 0.
    """
    n = buf.shape[0]
    if photons > 0.0:
        fk = _frame_key(key_poisson, t)
        for k in range(n):
            lam = np.float64(buf[k]) * photons
            buf[k] = np.float32(_poisson(lam, _pixel_bits(fk, p0 + k)) / photons)
    if gauss_std > 0.0:
        fk = _frame_key(key_gauss, t)
        for k in range(n):
            buf[k] = np.float32(np.float64(buf[k]) + gauss_std * _normal(_pixel_bits(fk, p0 + k)))
    for k in range(n):
        x = buf[k] + dark[k]
        buf[k] = x if x > np.float32(0.0) else np.float32(0.0)  # a pixel never loses charge


@njit(**JIT)
def _fire(x: np.ndarray, v: np.ndarray, thr: np.ndarray, spikes: np.ndarray) -> None:
    """One step: v += x; where v >= thr, spike and subtract thr."""
    for k in range(v.shape[0]):
        vk = v[k] + x[k]
        s = vk >= thr[k]
        v[k] = vk - thr[k] if s else vk
        spikes[k] = s


@njit(**JIT)
def _load_fire(src: np.ndarray, is_int: bool, v: np.ndarray, thr: np.ndarray, spikes) -> bool:
    """``_load`` then ``_fire`` in one pass: the noiseless path."""
    if is_int:
        for k in range(v.shape[0]):
            vk = v[k] + np.float32(src[k]) / np.float32(255.0)
            s = vk >= thr[k]
            v[k] = vk - thr[k] if s else vk
            spikes[k] = s
        return False
    bad = False
    for k in range(v.shape[0]):
        x = np.float32(src[k])
        bad = bad | (x < 0.0) | (x > 1.0) | (x != x)
        vk = v[k] + x
        s = vk >= thr[k]
        v[k] = vk - thr[k] if s else vk
        spikes[k] = s
    return bad


@njit(**JIT)
def _pack(words: np.ndarray, out: np.ndarray, w0: np.ndarray, j0: np.ndarray, nw: np.ndarray):
    """Pack pieces: out[j0[k] + j] = bits of words[w0[k] + j], j < nw[k], for each piece k.

    words is a uint8 0/1 buffer viewed as uint64 (little-endian), so byte m of a word holds
    pixel 8j+m; ``pack._pack_word`` (the ``.dat`` bit layout, one place) makes the byte.
    Indices are unsigned so that Numba drops its negative-index checks and the loop
    vectorises (about 10x faster).
    """
    for k in range(w0.shape[0]):
        a = np.uint64(w0[k])
        c = np.uint64(j0[k])
        for j in range(np.uint64(nw[k])):
            out[c + j] = _pack_word(words[a + j])


@njit(**JIT)
def _block(n: int, nblocks: int, b: int) -> tuple[int, int]:
    """Pixels [q0, q1) of block b of n: whole multiples of 64 pixels (so whole bytes once
    packed, and whole cache lines of float32), the last block taking the rest."""
    lines = n // 64
    q0 = 64 * (lines * b // nblocks)
    q1 = n if b == nblocks - 1 else 64 * (lines * (b + 1) // nblocks)
    return q0, q1


@njit(**JIT)
def _block_of(it: int, nblocks: int) -> int:
    """Block for iteration ``it`` of the parallel loop: even blocks first, then odd ones.

    Threads take iterations in order, so blocks running at the same time are never
    neighbours, and never write the two halves of one cache line at once (false sharing;
    a packed block writes only a few hundred bytes per frame, so its edges matter).
    """
    half = (nblocks + 1) // 2
    return 2 * it if it < half else 2 * (it - half) + 1


@njit(**JIT)
def _step_block(
    src: np.ndarray,
    is_int: bool,
    q0: int,
    t: int,
    v: np.ndarray,
    thr: np.ndarray,
    dark: np.ndarray,
    noisy: bool,
    key_gauss: np.uint64,
    gauss_std: float,
    key_poisson: np.uint64,
    photons: float,
    buf: np.ndarray,
    spikes: np.ndarray,
) -> bool:
    """Frame t for the block of image pixels q0 ..: src, v, thr, dark, buf, spikes are its
    slices. Returns True on a float input outside [0, 1]."""
    if not noisy:
        return _load_fire(src, is_int, v, thr, spikes)
    bad = _load(src, is_int, buf)
    _add_noise(buf, q0, t, dark, key_gauss, gauss_std, key_poisson, photons)
    _fire(buf, v, thr, spikes)
    return bad


@njit(**PARALLEL)
def _encode(
    frames: np.ndarray,
    is_int: bool,
    t0: int,
    v_in: np.ndarray,
    v_out: np.ndarray,
    thr: np.ndarray,
    dark: np.ndarray,
    noisy: bool,
    key_gauss: np.uint64,
    gauss_std: float,
    key_poisson: np.uint64,
    photons: float,
    nblocks: int,
    out: np.ndarray,
    bad: np.ndarray,
) -> None:
    """frames (T, N) uint8|float32 -> out (T, N) bool; v_in -> v_out, (N,) float32.

    N = H*W pixels in image order, cut into nblocks contiguous blocks. A thread takes its
    block through every frame: the block's potential stays in cache, the input streams in
    long runs, and the thread writes only its own slices of out and v_out, and bad[b].
    bad[b] is set if a float input of block b is outside [0, 1] or NaN; the caller then
    discards out and v_out. thr and dark are per pixel (N,) float32; t0 is the absolute index
    of frames[0], which the noise draws depend on.
    """
    n_t, n = frames.shape
    for it in prange(nblocks):
        b = _block_of(it, nblocks)
        q0, q1 = _block(n, nblocks, b)
        v = v_in[q0:q1].copy()
        th = thr[q0:q1].copy()
        dk = dark[q0:q1].copy()
        buf = np.empty(q1 - q0 if noisy else 0, np.float32)
        block_bad = False
        for i in range(n_t):
            block_bad |= _step_block(
                frames[i, q0:q1], is_int, q0, t0 + i, v, th, dk,
                noisy, key_gauss, gauss_std, key_poisson, photons, buf, out[i, q0:q1],
            )  # fmt: skip
        v_out[q0:q1] = v
        bad[b] = block_bad


@njit(**PARALLEL)
def _encode_packed(
    frames: np.ndarray,
    is_int: bool,
    t0: int,
    width: int,
    v_in: np.ndarray,
    v_out: np.ndarray,
    thr: np.ndarray,
    dark: np.ndarray,
    noisy: bool,
    key_gauss: np.uint64,
    gauss_std: float,
    key_poisson: np.uint64,
    photons: float,
    flipud: bool,
    nblocks: int,
    out: np.ndarray,
    bad: np.ndarray,
) -> None:
    """As ``_encode`` but writes the .dat layout, out (T, N // 8) uint8. Needs N % 8 == 0,
    and width % 8 == 0 when flipud.

    Blocks are computed in image order as in ``_encode``, into a buffer, then packed: without
    flipud the file order is the image order; with it, image row r is file row H-1-r, and each
    piece of a row in a block is whole bytes because width and the block edges are multiples
    of 8. No two blocks write the same byte.
    """
    n_t, n = frames.shape
    height = n // width
    for it in prange(nblocks):
        b = _block_of(it, nblocks)
        q0, q1 = _block(n, nblocks, b)
        v = v_in[q0:q1].copy()
        th = thr[q0:q1].copy()
        dk = dark[q0:q1].copy()
        buf = np.empty(q1 - q0 if noisy else 0, np.float32)
        spikes = np.empty(q1 - q0, np.uint8)
        words = spikes.view(np.uint64)  # 8 pixels per word, for _pack
        # Where each piece of the block goes in a packed frame: the whole block when the
        # file order is the image order, else one piece per image row it touches.
        n_pieces = 1
        if flipud:
            n_pieces = (q1 - 1) // width - q0 // width + 1 if q1 > q0 else 0
        w0 = np.empty(n_pieces, np.int64)  # first word in `words`
        j0 = np.empty(n_pieces, np.int64)  # first byte in the packed frame
        nw = np.empty(n_pieces, np.int64)  # bytes (= words) in the piece
        if not flipud:
            w0[0], j0[0], nw[0] = 0, q0 // 8, (q1 - q0) // 8
        else:
            q = q0
            for k in range(n_pieces):
                r = q // width
                end = min(q1, (r + 1) * width)
                w0[k] = (q - q0) // 8
                j0[k] = ((height - 1 - r) * width + q - r * width) // 8
                nw[k] = (end - q) // 8
                q = end
        block_bad = False
        for i in range(n_t):
            block_bad |= _step_block(
                frames[i, q0:q1], is_int, q0, t0 + i, v, th, dk,
                noisy, key_gauss, gauss_std, key_poisson, photons, buf, spikes,
            )  # fmt: skip
            _pack(words, out[i], w0, j0, nw)
        v_out[q0:q1] = v
        bad[b] = block_bad
