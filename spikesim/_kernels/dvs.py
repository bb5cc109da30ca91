"""DVS (event camera) pixel kernels: the v2e pixel model on the counter-based RNG.

Private: ``spikesim.dvs`` validates and calls these; the model is described there. Slow
reference for the tests: ``tests/spikesim/naive_dvs.py``.

Three passes per chunk of frames, each parallel over contiguous blocks of pixels (the
layout of ``encode.py``), so that the events never depend on the number of threads:

1. ``_pass_model``: every pixel through every frame of the chunk (state in L1); per frame and
   pixel it stores the signed number of threshold crossings ``kcand`` and the shot-noise
   polarity ``shot`` (both before the refractory period), and per frame and block the number
   of events that pass the refractory period.
2. ``_pass_write``: replays the refractory period from ``kcand``, ``shot`` and the time of each
   pixel's last event, and writes the events at offsets laid out frame by frame, block by
   block: inside a frame they come in pixel order, then in time order inside a pixel.
3. ``_pass_sort``: a stable sort by time inside each frame's segment (all of a frame's
   events lie in its interval), giving the order (t, pixel, order inside the pixel); a
   counting sort over the interval's microseconds when there are enough events.

Passes 1 and 2 share ``_emit``, so they cannot disagree on which events pass.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import JIT, PARALLEL, njit, prange
from .encode import _block, _block_of
from .rng import _frame_key, _normal, _pixel_bits, _stream_key, _unit

# Streams of the DVS draws (the integrate-and-fire encoder uses 0-4).
STREAM_THRESHOLD_ON = 16
STREAM_THRESHOLD_OFF = 17
STREAM_LEAK_RATE = 18
STREAM_LEAK_JITTER = 19
STREAM_SHOT = 20

LINLOG_KNEE = 20.0  # grey level where the linear part meets ln(Y)
LINLOG_SLOPE = math.log(20.0) / 20.0  # so that the two parts meet continuously
THRESHOLD_FLOOR = 0.01  # smallest per-pixel threshold, log units
# A change of exactly n thresholds must give n events, but ln and repeated B += theta are
# rounded; 1e-6 log units (far below one grey level, >= 0.0039) absorbs that.
TOLERANCE = 1e-6
# Shot-noise rate in the brightest pixels relative to the darkest (v2e's intensity factor).
SHOT_BRIGHT_FACTOR = 0.25
SHOT_MAX_PROBABILITY = 0.5  # per polarity and frame, so that ON and OFF never overlap
NEVER = -(2**62)  # time of the last event of a pixel that has not fired yet, microseconds


@njit(**JIT)
def _linlog(y: float) -> float:
    """Lin-log photoreceptor: y * ln(20)/20 up to grey level 20, ln(y) above (y in 0..255)."""
    return y * LINLOG_SLOPE if y <= LINLOG_KNEE else math.log(y)


@njit(**JIT)
def _linlog_table() -> np.ndarray:
    """_linlog of the 256 grey levels, float64 (256,): uint8 frames look L up instead of a log."""
    table = np.empty(256, np.float64)
    for y in range(256):
        table[y] = _linlog(float(y))
    return table


@njit(**JIT)
def _fixed_pattern(
    seed: int,
    n: int,
    theta_on: float,
    theta_off: float,
    sigma: float,
    leak_hz: float,
    spread_decades: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel ON and OFF thresholds and leak rate, float64 (n,) each.

    theta+_p = max(theta_on + sigma * z1, 0.01), theta-_p likewise with z2;
    leak_p = leak_hz * 10 ** (spread_decades * z3) (log-normal spread, in decades);
    z ~ N(0, 1) from frame 0 of each stream. With sigma = 0 (spread = 0) nothing is drawn.
    """
    thr_on = np.empty(n, np.float64)
    thr_off = np.empty(n, np.float64)
    leak = np.empty(n, np.float64)
    k_on = _frame_key(_stream_key(seed, STREAM_THRESHOLD_ON), 0)
    k_off = _frame_key(_stream_key(seed, STREAM_THRESHOLD_OFF), 0)
    k_leak = _frame_key(_stream_key(seed, STREAM_LEAK_RATE), 0)
    for p in range(n):
        a = theta_on
        b = theta_off
        if sigma > 0.0:
            a = theta_on + sigma * _normal(_pixel_bits(k_on, p))
            b = theta_off + sigma * _normal(_pixel_bits(k_off, p))
        thr_on[p] = max(a, THRESHOLD_FLOOR)
        thr_off[p] = max(b, THRESHOLD_FLOOR)
        rate = leak_hz
        if leak_hz > 0.0 and spread_decades > 0.0:
            rate = leak_hz * 10.0 ** (spread_decades * _normal(_pixel_bits(k_leak, p)))
        leak[p] = rate
    return thr_on, thr_off, leak


@njit(**JIT)
def _emit(
    k: int,
    pol: int,
    t_prev: int,
    t_now: int,
    t_last: int,
    refractory: int,
    write: bool,
    pos: int,
    pixel: int,
    ev_t: np.ndarray,
    ev_pix: np.ndarray,
    ev_pol: np.ndarray,
) -> tuple[int, int]:
    """k candidate events of polarity pol at t_prev + (t_now - t_prev) * j // k, j = 1..k.

    A candidate passes if it comes at least ``refractory`` us after the pixel's last event
    t_last. Written at ev_*[pos:] when ``write``. Returns (events passed, new t_last).
    """
    span = t_now - t_prev
    n = 0
    for j in range(1, k + 1):
        t = t_prev + (span * j) // k
        if t - t_last >= refractory:
            if write:
                ev_t[pos + n] = t
                ev_pix[pos + n] = pixel
                ev_pol[pos + n] = pol
            n += 1
            t_last = t
    return n, t_last


@njit(**PARALLEL)
def _pass_model(
    frames: np.ndarray,
    is_int: bool,
    a0: int,
    t_us: np.ndarray,
    dt: float,
    lp_in: np.ndarray,
    b_in: np.ndarray,
    tl_in: np.ndarray,
    lp_out: np.ndarray,
    b_out: np.ndarray,
    tl_out: np.ndarray,
    thr_on: np.ndarray,
    thr_off: np.ndarray,
    leak: np.ndarray,
    theta_on: float,
    theta_off: float,
    lowpass_w: float,
    leak_on: bool,
    leak_jitter: float,
    key_jitter: np.uint64,
    shot_half: float,
    key_shot: np.uint64,
    refractory: int,
    nblocks: int,
    kcand: np.ndarray,
    shot: np.ndarray,
    counts: np.ndarray,
    bad: np.ndarray,
) -> None:
    """Pass 1. frames (T, N) uint8 (grey levels) or float (x in [0, 1], Y = 255 x).

    a0: absolute index of frames[0]; frame a0 + i covers (t_us[i], t_us[i + 1]] us. Frame 0
    only sets the state (low-pass and memorised level to its L). State in: lp_in, b_in
    (float64 log units), tl_in (int64 us); out: *_out. lowpass_w = 2 pi f_c dt (0: off);
    shot_half = R_shot / 2 * dt (0: off). Writes kcand (T, N) int32 (+k ON, -k OFF), shot
    (T, N) int8 (+1, -1, 0), counts (T, nblocks) int64 (events passing the refractory
    period) and bad[b] (a float input of block b outside [0, 1] or NaN).
    """
    n_t, n = frames.shape
    for it in prange(nblocks):
        blk = _block_of(it, nblocks)
        q0, q1 = _block(n, nblocks, blk)
        lp = lp_in[q0:q1].copy()
        bb = b_in[q0:q1].copy()
        tl = tl_in[q0:q1].copy()
        no_t = np.empty(0, np.int64)  # _emit only counts here
        no_pix = np.empty(0, np.int64)
        no_pol = np.empty(0, np.int8)
        table = _linlog_table()
        block_bad = False
        for i in range(n_t):
            a = a0 + i
            t_prev = t_us[i]
            t_now = t_us[i + 1]
            fk_jitter = _frame_key(key_jitter, a)
            fk_shot = _frame_key(key_shot, a)
            count = 0
            for q in range(q1 - q0):
                p = q0 + q
                if is_int:
                    level = int(frames[i, p])  # int(): this branch is typed for floats too
                    y = float(level)
                    L = table[level]
                else:
                    x = float(frames[i, p])
                    if not (x >= 0.0 and x <= 1.0):
                        block_bad = True
                    y = x * 255.0
                    L = _linlog(y)
                if a == 0:
                    lp[q] = L
                    bb[q] = L
                    kcand[i, p] = 0
                    shot[i, p] = 0
                    continue
                if lowpass_w > 0.0:
                    eps = min(1.0, (y + 20.0) / 275.0 * lowpass_w)
                    lp[q] = (1.0 - eps) * lp[q] + eps * L
                else:
                    lp[q] = L
                if leak_on:
                    rate = leak[p]
                    if leak_jitter > 0.0:
                        rate = rate * (1.0 - leak_jitter * _normal(_pixel_bits(fk_jitter, p)))
                    bb[q] = bb[q] - dt * rate * thr_on[p]
                d = lp[q] - bb[q]
                # Most pixels are far from a crossing: skip the division (a_on < 0.999 theta
                # implies a / theta < 1, so k is the same) and the event loop.
                m = 0
                if d > 0.0:
                    a_on = d + TOLERANCE
                    k = math.floor(a_on / thr_on[p]) if a_on >= 0.999 * thr_on[p] else 0
                    if k > 0:
                        m, t_last = _emit(k, 1, t_prev, t_now, tl[q], refractory, False, 0, p,
                                          no_t, no_pix, no_pol)  # fmt: skip
                        bb[q] = bb[q] + m * thr_on[p]
                        tl[q] = t_last
                    kcand[i, p] = k
                else:
                    a_off = TOLERANCE - d
                    k = math.floor(a_off / thr_off[p]) if a_off >= 0.999 * thr_off[p] else 0
                    if k > 0:
                        m, t_last = _emit(k, -1, t_prev, t_now, tl[q], refractory, False, 0, p,
                                          no_t, no_pix, no_pol)  # fmt: skip
                        bb[q] = bb[q] - m * thr_off[p]
                        tl[q] = t_last
                    kcand[i, p] = -k
                s = 0
                if shot_half > 0.0:
                    f = shot_half * ((SHOT_BRIGHT_FACTOR - 1.0) * ((y + 20.0) / 275.0) + 1.0)
                    p_on = min(SHOT_MAX_PROBABILITY, f * (theta_on / thr_on[p]))
                    p_off = min(SHOT_MAX_PROBABILITY, f * (theta_off / thr_off[p]))
                    u = _unit(_pixel_bits(fk_shot, p))
                    if u < p_off:
                        s = -1
                    elif u >= 1.0 - p_on:
                        s = 1
                    if s != 0 and t_now - tl[q] >= refractory:
                        m += 1
                        tl[q] = t_now
                        bb[q] = lp[q]  # a noise event resets the pixel to its input
                shot[i, p] = s
                count += m
            counts[i, blk] = count
        lp_out[q0:q1] = lp
        b_out[q0:q1] = bb
        tl_out[q0:q1] = tl
        bad[blk] = block_bad


@njit(**PARALLEL)
def _pass_write(
    t_us: np.ndarray,
    tl_in: np.ndarray,
    refractory: int,
    kcand: np.ndarray,
    shot: np.ndarray,
    offsets: np.ndarray,
    nblocks: int,
    ev_t: np.ndarray,
    ev_pix: np.ndarray,
    ev_pol: np.ndarray,
) -> None:
    """Pass 2: events of block b in frame i from offsets[i, b] on: ev_t int64 us, ev_pix int64
    (row * width + col), ev_pol int8 (+1 ON, -1 OFF); signal events before the shot event."""
    n_t, n = kcand.shape
    for it in prange(nblocks):
        blk = _block_of(it, nblocks)
        q0, q1 = _block(n, nblocks, blk)
        tl = tl_in[q0:q1].copy()
        for i in range(n_t):
            t_prev = t_us[i]
            t_now = t_us[i + 1]
            pos = offsets[i, blk]
            for q in range(q1 - q0):
                p = q0 + q
                k = kcand[i, p]
                if k != 0:
                    pol = 1 if k > 0 else -1
                    m, t_last = _emit(abs(k), pol, t_prev, t_now, tl[q], refractory, True,
                                      pos, p, ev_t, ev_pix, ev_pol)  # fmt: skip
                    tl[q] = t_last
                    pos += m
                s = shot[i, p]
                if s != 0 and t_now - tl[q] >= refractory:
                    ev_t[pos] = t_now
                    ev_pix[pos] = p
                    ev_pol[pos] = s
                    pos += 1
                    tl[q] = t_now


@njit(**PARALLEL)
def _pass_sort(
    starts: np.ndarray,
    t_us: np.ndarray,
    width: int,
    span_per_event: int,
    span_min: int,
    ev_t: np.ndarray,
    ev_pix: np.ndarray,
    ev_pol: np.ndarray,
    out_t: np.ndarray,
    out_x: np.ndarray,
    out_y: np.ndarray,
    out_p: np.ndarray,
) -> None:
    """Pass 3: stable sort by time of each frame segment [starts[i], starts[i + 1]) (times in
    (t_us[i], t_us[i + 1]]), splitting the pixel index into x (column) and y (row).

    A counting sort over the interval's microseconds when it has at most
    span_per_event * events + span_min of them (O(events + span)), else a merge sort; both
    are stable, so the order is the same either way.
    """
    for i in prange(starts.shape[0] - 1):
        s0 = starts[i]
        s1 = starts[i + 1]
        n = s1 - s0
        t_prev = t_us[i]
        span = t_us[i + 1] - t_prev
        if span <= span_per_event * n + span_min:
            slot = np.zeros(span + 1, np.int64)  # slot[dt]: next place of time t_prev + dt
            for e in range(s0, s1):
                slot[ev_t[e] - t_prev] += 1
            acc = 0
            for dt in range(span + 1):
                c = slot[dt]
                slot[dt] = acc
                acc += c
            for e in range(s0, s1):
                dt = ev_t[e] - t_prev
                j = s0 + slot[dt]
                slot[dt] += 1
                _put(e, j, width, ev_t, ev_pix, ev_pol, out_t, out_x, out_y, out_p)
        else:
            order = np.argsort(ev_t[s0:s1], kind="mergesort")
            for j in range(n):
                _put(s0 + order[j], s0 + j, width, ev_t, ev_pix, ev_pol, out_t, out_x, out_y, out_p)


@njit(**JIT)
def _put(src, dst, width, ev_t, ev_pix, ev_pol, out_t, out_x, out_y, out_p) -> None:
    """Copy event src to place dst of the output columns."""
    pix = ev_pix[src]
    out_t[dst] = ev_t[src]
    out_y[dst] = pix // width
    out_x[dst] = pix % width
    out_p[dst] = ev_pol[src]
