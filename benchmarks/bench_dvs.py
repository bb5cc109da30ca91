"""DVS simulation speed: the Numba encoder (1 and 2 threads) against a vectorised NumPy port.

    .venv/bin/python -m benchmarks.bench_dvs [--frames 40] [--factor 4] [--repeats 5]

Input: the first ``frames`` frames of a real clip (UCF101 SoccerJuggling, a moving camera)
at 240x320, interpolated ``factor`` times with optical flow (as v2e upsamples before its
pixel model), float32 luma, at factor x the clip's fps. Every measure runs ``repeats``
rounds, interleaved so that load from other processes hits them alike, and keeps the median.
Source frames/s counts the frames fed to the model (after interpolation); events/s the
events it returns. The NumPy port below is the same model vectorised over all pixels, frame
by frame (v2e's own strategy: a loop over the k-th event of every pixel for the refractory
period), with the same counter-based random numbers; the script checks that it returns the
same events as the kernel.
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from benchmarks._report import header
from spikesim import interpolate, iter_frames, probe_video
from spikesim._kernels import dvs as K
from spikesim.dvs import DVS_PRESETS, EVENT_DTYPE, DVSEncoder, DVSModel

CLIP = Path(__file__).resolve().parents[2] / "shared/data/clips/ucf101-mini/SoccerJuggling"

_G = np.uint64(0x9E3779B97F4A7C15)
_M = np.uint64(0xD1B54A32D192ED03)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def _bits(seed: int, stream: int, frame: int, pixels: np.ndarray) -> np.ndarray:
    """The 64 random bits of (seed, stream, frame) for every pixel index, uint64."""
    key = _mix(_mix(np.array([seed], np.uint64) + _G) ^ ((np.uint64(stream) + np.uint64(1)) * _M))
    fk = _mix(key + (np.uint64(frame) + np.uint64(1)) * _G)
    return _mix(fk + (pixels + np.uint64(1)) * _G)


def _unit(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _normal(h: np.ndarray) -> np.ndarray:
    u1 = ((h >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
    u2 = (h & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def numpy_dvs(frames: np.ndarray, fps: float, model: DVSModel, seed: int) -> np.ndarray:
    """The DVS model vectorised with NumPy over all pixels, one frame at a time.

    frames (T, H, W) float32 in [0, 1] -> `EVENT_DTYPE` events sorted by (t, y, x).
    """
    with np.errstate(over="ignore"):  # the hash multiplies modulo 2**64
        return _numpy_dvs(frames, fps, model, seed)


def _numpy_dvs(frames: np.ndarray, fps: float, m: DVSModel, seed: int) -> np.ndarray:
    n_t, height, width = frames.shape
    n = height * width
    pix = np.arange(n, dtype=np.uint64)
    dt = 1.0 / fps
    times = np.rint(np.arange(n_t, dtype=np.float64) * 1e6 / fps).astype(np.int64)
    thr_on = np.full(n, m.threshold_on)
    thr_off = np.full(n, m.threshold_off)
    if m.threshold_sigma > 0:
        z_on = _normal(_bits(seed, K.STREAM_THRESHOLD_ON, 0, pix))
        z_off = _normal(_bits(seed, K.STREAM_THRESHOLD_OFF, 0, pix))
        thr_on = m.threshold_on + m.threshold_sigma * z_on
        thr_off = m.threshold_off + m.threshold_sigma * z_off
    thr_on = np.maximum(thr_on, K.THRESHOLD_FLOOR)
    thr_off = np.maximum(thr_off, K.THRESHOLD_FLOOR)
    leak = np.full(n, m.leak_hz)
    if m.leak_hz > 0 and m.leak_spread_decades > 0:
        z = _normal(_bits(seed, K.STREAM_LEAK_RATE, 0, pix))
        leak = m.leak_hz * 10.0 ** (m.leak_spread_decades * z)
    lowpass_w = 2.0 * math.pi * m.cutoff_hz * dt
    shot_half = m.shot_hz / 2.0 * dt
    refractory = m.refractory_us
    tl = np.full(n, K.NEVER, np.int64)
    parts = []
    for a in range(n_t):
        y = frames[a].reshape(-1).astype(np.float64) * 255.0
        L = np.where(y <= K.LINLOG_KNEE, y * K.LINLOG_SLOPE, np.log(np.maximum(y, K.LINLOG_KNEE)))
        if a == 0:
            lp, b = L, L.copy()
            continue
        if lowpass_w > 0:
            eps = np.minimum(1.0, (y + 20.0) / 275.0 * lowpass_w)
            lp = (1.0 - eps) * lp + eps * L
        else:
            lp = L
        if m.leak_hz > 0:
            rate = leak
            if m.leak_jitter > 0:
                rate = rate * (
                    1.0 - m.leak_jitter * _normal(_bits(seed, K.STREAM_LEAK_JITTER, a, pix))
                )
            b = b - dt * rate * thr_on
        d = lp - b
        on = d > 0
        k = np.where(
            on, np.floor((d + K.TOLERANCE) / thr_on), np.floor((K.TOLERANCE - d) / thr_off)
        )
        k = k.astype(np.int64)
        t_prev, t_now, span = times[a - 1], times[a], times[a] - times[a - 1]
        idx = np.flatnonzero(k)
        kk = k[idx]
        if refractory == 0:  # every candidate passes: all at once
            ev_pix = np.repeat(idx, kk)
            first = np.repeat(np.cumsum(kk) - kk, kk)
            j = np.arange(len(ev_pix)) - first + 1
            ev_t = t_prev + span * j // k[ev_pix]
            tl[idx] = t_now
            emitted = k
        else:  # v2e's loop over the j-th event of every pixel
            emitted = np.zeros(n, np.int64)
            ts, ps = [], []
            for j in range(1, int(kk.max(initial=0)) + 1):
                act = idx[kk >= j]
                t = t_prev + span * j // k[act]
                ok = t - tl[act] >= refractory
                act, t = act[ok], t[ok]
                tl[act] = t
                emitted[act] += 1
                ts.append(t)
                ps.append(act)
            ev_t = np.concatenate(ts) if ts else np.empty(0, np.int64)
            ev_pix = np.concatenate(ps) if ps else np.empty(0, np.int64)
        ev_pol = np.where(on[ev_pix], 1, -1)
        b = np.where(on, b + emitted * thr_on, b - emitted * thr_off)
        if shot_half > 0:
            f = shot_half * ((K.SHOT_BRIGHT_FACTOR - 1.0) * ((y + 20.0) / 275.0) + 1.0)
            p_on = np.minimum(K.SHOT_MAX_PROBABILITY, f * (m.threshold_on / thr_on))
            p_off = np.minimum(K.SHOT_MAX_PROBABILITY, f * (m.threshold_off / thr_off))
            u = _unit(_bits(seed, K.STREAM_SHOT, a, pix))
            s = np.where(u < p_off, -1, np.where(u >= 1.0 - p_on, 1, 0))
            hit = np.flatnonzero((s != 0) & (t_now - tl >= refractory))
            tl[hit] = t_now
            b[hit] = lp[hit]
            ev_t = np.concatenate([ev_t, np.full(len(hit), t_now)])
            ev_pix = np.concatenate([ev_pix, hit])
            ev_pol = np.concatenate([ev_pol, s[hit]])
        order = np.argsort((ev_t - t_prev) * n + ev_pix, kind="stable")  # (t, pixel, emission)
        out = np.empty(len(order), EVENT_DTYPE)
        out["t"] = ev_t[order]
        out["y"] = ev_pix[order] // width
        out["x"] = ev_pix[order] % width
        out["p"] = ev_pol[order]
        parts.append(out)
    return np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)


def load_frames(n_frames: int, factor: int) -> tuple[np.ndarray, float]:
    clip = next(CLIP.glob("*.avi"))
    fps = probe_video(clip).fps * factor
    frames = np.stack(list(itertools.islice(iter_frames(clip, size=(240, 320)), n_frames)))
    if factor > 1:
        frames = interpolate(frames, factor=factor, method="flow")
    return np.ascontiguousarray(frames, dtype=np.float32), fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="source frames of the clip")
    parser.add_argument("--factor", type=int, default=4, help="interpolation factor")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    frames, fps = load_frames(args.frames, args.factor)
    most = numba.config.NUMBA_NUM_THREADS

    def kernel(preset: str, threads: int):
        def run() -> np.ndarray:
            numba.set_num_threads(threads)
            return DVSEncoder(240, 320, fps=fps, preset=preset, seed=0).push(frames)

        return run

    measures = {}
    for preset in DVS_PRESETS:
        measures[(preset, "NumPy port", 1)] = lambda p=preset: numpy_dvs(
            frames, fps, DVS_PRESETS[p], 0
        )
        for threads in sorted({1, min(2, most)}):
            measures[(preset, "Numba kernel", threads)] = kernel(preset, threads)
    events = {key: fn() for key, fn in measures.items()}  # warm-up (compiles), and the output
    times: dict = {key: [] for key in measures}
    for _ in range(args.repeats):
        for key, fn in measures.items():
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    numba.set_num_threads(most)
    print(header("DVS simulation (benchmarks/bench_dvs.py)"))
    print(
        f"{len(frames)} frames of 240x320 float32 ({args.frames} source frames of {CLIP.name} "
        f"x{args.factor} by flow, {fps:.2f} fps); median of {args.repeats} rounds\n"
    )
    print("| preset | implementation | threads | frames/s | events/s | events | vs NumPy |")
    print("|---|---|---|---|---|---|---|")
    for key in measures:
        preset, impl, threads = key
        sec = statistics.median(times[key])
        base = statistics.median(times[(preset, "NumPy port", 1)])
        n_ev = len(events[key])
        print(
            f"| {preset} | {impl} | {threads} | {len(frames) / sec:,.1f} | {n_ev / sec:,.0f} "
            f"| {n_ev:,} | {base / sec:.2f}x |"
        )
    print()
    for preset in DVS_PRESETS:
        a, b = events[(preset, "NumPy port", 1)], events[(preset, "Numba kernel", 1)]
        same = len(a) == len(b) and bool((a == b).all())
        print(
            f"- {preset}: NumPy port and kernel give {'the same' if same else 'DIFFERENT'} events"
        )


if __name__ == "__main__":
    main()
