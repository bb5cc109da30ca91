"""DVS (event camera) simulation: the v2e pixel model, from frames to ON/OFF events.

Per pixel, from 8-bit luma Y (0..255; float frames x in [0, 1] give Y = 255 x) at a frame
interval dt = 1 / fps seconds, frame a at time T_a = round(a * 1e6 / fps) microseconds:

- lin-log photoreceptor: L = Y ln(20) / 20 for Y <= 20, else ln Y;
- optional first-order low-pass, faster in brighter pixels: lp += eps (L - lp) with
  eps = min(1, ((Y + 20) / 275) * 2 pi f_c dt) (``cutoff_hz`` f_c; 0 = off, lp = L);
- the memorised level B starts at the first frame's lp (frame 0 gives no events); per-pixel
  thresholds theta+/- = max(N(threshold_on/off, sigma^2), 0.01) (mismatch), drawn once;
- leak: B -= dt * R_p * (1 - j z) * theta+_p each interval, R_p = ``leak_hz`` *
  10 ** (``leak_spread_decades`` z') per pixel (fixed), z fresh per frame (``leak_jitter`` j);
  a lower B makes the pixel fire ON events at about R_p;
- d = lp - B; k+ = floor((max(d, 0) + 1e-6) / theta+), k- likewise with -d and theta- (the
  1e-6 log units absorb rounding so that a change of exactly n thresholds gives n events);
  candidate j = 1..k at T_{a-1} + (T_a - T_{a-1}) j // k (evenly spread, the last at T_a);
- refractory period: a candidate less than ``refractory_s`` after the pixel's last event is
  dropped; B moves by the emitted events only: B += m theta+ (or -= m theta-) for m emitted;
- shot noise: with probability f * theta_nominal / theta_p (capped at 0.5) per polarity, where
  f = (``shot_hz`` / 2) dt ((0.25 - 1) (Y + 20) / 275 + 1) is 4x lower at white than at black,
  one noise event at T_a (after the signal events, subject to the refractory period), which
  resets B to lp.

Events come as a structured array (`EVENT_DTYPE`): t int64 microseconds, x uint16 column,
y uint16 row, p int8 (+1 ON, -1 OFF), sorted by t, then y, then x (then emission order).

Random numbers are counter-based (``spikesim._kernels.rng``): a draw is a hash of (seed,
stream, absolute frame index, pixel index), so pushing frames in chunks of any sizes, on any
number of threads, gives the same bytes. Presets: `DVS_PRESETS` (``clean``, ``noisy`` and
``v2e``; see docs/events.md for their sources).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from types import MappingProxyType
from typing import Any

import numba
import numpy as np

from ._kernels import dvs as _k
from ._kernels.rng import _stream_key
from .checks import check_unit_range, real_number
from .errors import SpikesimError
from .sensor import PixelSensor

__all__ = ["DVS_PRESETS", "EVENT_DTYPE", "DVSEncoder", "DVSModel", "dvs", "resolve_dvs"]

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "i1")])
"""One event: t microseconds, x column, y row, p +1 (ON) or -1 (OFF)."""

# (low, high) of every field: keeps the model meaningful and its integers in range.
_LIMITS = {
    "threshold_on": (_k.THRESHOLD_FLOOR, 5.0),
    "threshold_off": (_k.THRESHOLD_FLOOR, 5.0),
    "threshold_sigma": (0.0, 1.0),
    "cutoff_hz": (0.0, 1e6),
    "leak_hz": (0.0, 1e3),
    "leak_jitter": (0.0, 1.0),
    "leak_spread_decades": (0.0, 2.0),
    "shot_hz": (0.0, 1e5),
    "refractory_s": (0.0, 10.0),
}
_MAX_SIDE = 2**16  # x and y are uint16
_MAX_FPS = 1e6  # frames at least 1 us apart
# Frames per kernel run: at most 32, and at most 4 M pixel-frames, which bounds the
# (frames, H*W) work arrays to 20 MB whatever the frame size.
_CHUNK_FRAMES = 32
_CHUNK_PIXELS = 1 << 22


@dataclass(frozen=True)
class DVSModel:
    """Parameters of the DVS pixel model (equations in the module docstring); log units are
    natural-log intensity.

    threshold_on, threshold_off: nominal ON / OFF contrast thresholds, log units (>= 0.01).
    threshold_sigma: pixel-to-pixel std of the thresholds, log units.
    cutoff_hz: photoreceptor low-pass cutoff at white, Hz (0 = no low-pass).
    leak_hz: mean leak (ON) event rate per pixel, Hz (0 = none).
    leak_jitter: relative std of the leak rate from frame to frame.
    leak_spread_decades: pixel-to-pixel std of log10 of the leak rate.
    shot_hz: shot-noise event rate (ON + OFF) per pixel at black, Hz; 4x lower at white.
    refractory_s: refractory period, seconds (0 = none); resolved to whole microseconds.
    """

    threshold_on: float = 0.2
    threshold_off: float = 0.2
    threshold_sigma: float = 0.0
    cutoff_hz: float = 0.0
    leak_hz: float = 0.0
    leak_jitter: float = 0.0
    leak_spread_decades: float = 0.0
    shot_hz: float = 0.0
    refractory_s: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            low, high = _LIMITS[f.name]
            value = real_number(getattr(self, f.name), f"dvs {f.name}", minimum=low, maximum=high)
            object.__setattr__(self, f.name, value)  # ints stored as floats: same JSON

    @property
    def refractory_us(self) -> int:
        """The refractory period in whole microseconds (event times are whole microseconds)."""
        return round(self.refractory_s * 1e6)

    def to_dict(self) -> dict[str, float]:
        """The fields as a JSON-able dict; ``DVSModel(**d)`` rebuilds the model."""
        return asdict(self)


DVS_PRESETS: Mapping[str, DVSModel] = MappingProxyType(
    {
        # v2e's `--dvs_params clean` (EventEmulator.set_dvs_params): no noise, no low-pass,
        # small threshold mismatch.
        "clean": DVSModel(threshold_sigma=0.02),
        # v2e's `--dvs_params noisy`: limited bandwidth, leak and shot noise (no refractory).
        "noisy": DVSModel(
            threshold_sigma=0.05,
            cutoff_hz=30.0,
            leak_hz=0.1,
            leak_jitter=0.1,
            leak_spread_decades=0.1,
            shot_hz=5.0,
        ),
        # v2e's command-line defaults (v2ecore/v2e_args.py, SensorsINI/v2e at cac6384, Oct
        # 2025): --pos_thres 0.2 --neg_thres 0.2 --sigma_thres 0.03 --cutoff_hz 300
        # --leak_rate_hz 0.01 --leak_jitter_fraction 0.1 --noise_rate_cov_decades 0.1
        # --shot_noise_rate_hz 0.001 --refractory_period 0.0005. At 30 fps a 300 Hz cutoff
        # never filters (eps = 1): v2e expects frames upsampled to ~1 ms first.
        "v2e": DVSModel(
            threshold_sigma=0.03,
            cutoff_hz=300.0,
            leak_hz=0.01,
            leak_jitter=0.1,
            leak_spread_decades=0.1,
            shot_hz=0.001,
            refractory_s=0.0005,
        ),
    }
)


def resolve_dvs(
    preset: str | DVSModel | Mapping[str, float] = "clean", **overrides: float
) -> tuple[str | None, DVSModel]:
    """A preset name, a model or a dict of its fields, then field overrides -> (name, model).

    name is the preset's name when no override changes it, else None (a custom model).
    """
    known = {f.name for f in fields(DVSModel)}
    name: str | None = None
    if isinstance(preset, str):
        key = preset.strip().lower()
        if key not in DVS_PRESETS:
            raise SpikesimError(
                f"unknown dvs preset {preset!r}; choose one of: {', '.join(DVS_PRESETS)}"
            )
        model, name = DVS_PRESETS[key], key
    elif isinstance(preset, DVSModel):
        model = preset
    elif isinstance(preset, Mapping):
        _check_fields(preset, known)
        model = DVSModel(**preset)
    else:
        raise SpikesimError(
            f"preset must be a preset name, a DVSModel or a dict, got {type(preset).__name__}"
        )
    if overrides:
        _check_fields(overrides, known)
        changed = replace(model, **overrides)
        if changed != model:
            model, name = changed, None
    return name, model


def _check_fields(given: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(map(str, given)) - known)
    if unknown:
        raise SpikesimError(
            f"unknown dvs setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )


class DVSEncoder(PixelSensor):
    """Streaming DVS simulator for frames of one size (model in the module docstring).

    height, width: frame size in pixels (at most 65536 each). fps: source frame rate, Hz
    (sets dt = 1/fps and the event times). preset: "clean", "noisy", "v2e", a `DVSModel` or a
    dict of its fields; overrides: `DVSModel` fields replacing the preset's (``shot_hz=0``).
    seed: non-negative integer; fixes the thresholds and every noise draw.

    ``push(frames)`` returns the events of those frames; pushing a clip in chunks of any sizes
    gives exactly the events of one push. Not thread-safe: push from one thread at a time.

    >>> enc = DVSEncoder(240, 320, fps=30.0, preset="noisy", seed=1)
    >>> for chunk in chunks:                  # (t, 240, 320) uint8 or float32 in [0, 1]
    ...     writer.append(enc.push(chunk))
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        fps: float,
        preset: str | DVSModel | Mapping[str, float] = "clean",
        seed: int = 0,
        **overrides: float,
    ) -> None:
        self._init_sensor(height, width, seed, max_side=_MAX_SIDE)
        self._fps = real_number(fps, "fps", minimum=0, above=True, maximum=_MAX_FPS)
        self._preset, self._model = resolve_dvs(preset, **overrides)
        m = self._model
        n = self._height * self._width
        self._thr_on, self._thr_off, self._leak = _k._fixed_pattern(
            np.uint64(self._seed),
            n,
            m.threshold_on,
            m.threshold_off,
            m.threshold_sigma,
            m.leak_hz,
            m.leak_spread_decades,
        )
        self._dt = 1.0 / self._fps
        self._key_jitter = np.uint64(_stream_key(np.uint64(self._seed), _k.STREAM_LEAK_JITTER))
        self._key_shot = np.uint64(_stream_key(np.uint64(self._seed), _k.STREAM_SHOT))
        # State: low-passed log intensity, memorised level (log units), last event time (us).
        self._lp = np.zeros(n, np.float64)
        self._b = np.zeros(n, np.float64)
        self._tl = np.full(n, _k.NEVER, np.int64)
        # Counting sort of a frame's events when its interval has at most 4 us per event
        # + 65536 us, else merge sort (same order; tests force each).
        self._sort_modes = (4, 65536)

    # -- read-only settings and state ---------------------------------------------------------

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def preset(self) -> str | None:
        """The preset's name, or None when overrides made a custom model."""
        return self._preset

    @property
    def model(self) -> DVSModel:
        return self._model

    @property
    def thresholds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel (ON, OFF) thresholds with mismatch, float64 (H, W) each, log units."""
        shape = (self._height, self._width)
        return self._thr_on.reshape(shape).copy(), self._thr_off.reshape(shape).copy()

    @property
    def leak_rates(self) -> np.ndarray:
        """Per-pixel mean leak rate, float64 (H, W), Hz."""
        return self._leak.reshape(self._height, self._width).copy()

    @property
    def memorised_level(self) -> np.ndarray:
        """The memorised log level B, float64 (H, W) (zeros before the first frame)."""
        return self._b.reshape(self._height, self._width).copy()

    def frame_time_us(self, index: int) -> int:
        """Time of frame ``index`` (absolute), microseconds: round(index * 1e6 / fps)."""
        return int(self._frame_times(int(index), int(index) + 1)[0])

    def _frame_times(self, start: int, stop: int) -> np.ndarray:
        """int64 round(a * 1e6 / fps) for a in [start, stop), each from a alone (so the same
        whatever the chunking)."""
        return np.rint(np.arange(start, stop, dtype=np.float64) * 1e6 / self._fps).astype(np.int64)

    def settings(self) -> dict[str, Any]:
        """JSON-able settings for the sidecar: encoder, preset, fps, seed, model fields."""
        return {
            "encoder": "dvs",
            "preset": self._preset,
            "fps": self._fps,
            "seed": self._seed,
            "time_unit": "us",
            "model": self._model.to_dict(),
        }

    def __repr__(self) -> str:
        what = repr(self._preset) if self._preset else repr(self._model)
        return (
            f"DVSEncoder({self._height}, {self._width}, fps={self._fps:g}, preset={what}, "
            f"seed={self._seed}) at frame {self._frames_done}"
        )

    # -- encoding -------------------------------------------------------------------------------

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Simulate the next frames and return their events.

        frames: (t, H, W) uint8 luma (grey levels), float32/float64 luma in [0, 1], or
        (t, H, W, 3) uint8 BGR (converted to luma as ``spikesim.video`` does, BT.601).
        Returns `EVENT_DTYPE` (n,) sorted by (t, y, x); the first frame ever pushed gives
        none. On bad input nothing changes: the error is raised before the state is updated.
        """
        data = self._check_frames(frames, colour=True)
        step = max(1, min(_CHUNK_FRAMES, _CHUNK_PIXELS // (self._height * self._width)))
        parts = [self._run(data[a : a + step]) for a in range(0, data.shape[0], step)]
        if not parts:
            return np.empty(0, EVENT_DTYPE)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _run(self, data: np.ndarray) -> np.ndarray:
        """Events of frames data (t, H*W), t >= 1; the state moves on only on success."""
        m = self._model
        n_t, n = data.shape
        a0 = self._frames_done
        nblocks = self._blocks()
        t_us = self._frame_times(a0 - 1, a0 + n_t)
        lp, b, tl = np.empty_like(self._lp), np.empty_like(self._b), np.empty_like(self._tl)
        kcand = np.empty((n_t, n), np.int32)
        shot = np.empty((n_t, n), np.int8)
        counts = np.zeros((n_t, nblocks), np.int64)
        bad = np.zeros(nblocks, np.bool_)
        lowpass_w = 2.0 * math.pi * m.cutoff_hz * self._dt
        shot_half = m.shot_hz / 2.0 * self._dt
        refractory = m.refractory_us
        # Blocks are handed out one at a time, so a thread slowed by other work takes fewer.
        with numba.parallel_chunksize(1):
            _k._pass_model(
                data, data.dtype == np.uint8, a0, t_us, self._dt,
                self._lp, self._b, self._tl, lp, b, tl,
                self._thr_on, self._thr_off, self._leak, m.threshold_on, m.threshold_off,
                lowpass_w, m.leak_hz > 0.0, m.leak_jitter, self._key_jitter,
                shot_half, self._key_shot, refractory, nblocks, kcand, shot, counts, bad,
            )  # fmt: skip
            if bad.any():
                check_unit_range(data)  # raises with the offending values; state is untouched
            # Frame-major, then block: each frame's events are one segment in pixel order.
            flat = counts.reshape(-1)
            offsets = np.zeros(flat.size + 1, np.int64)
            np.cumsum(flat, out=offsets[1:])
            total = int(offsets[-1])
            ev_t = np.empty(total, np.int64)
            ev_pix = np.empty(total, np.int64)
            ev_pol = np.empty(total, np.int8)
            _k._pass_write(
                t_us, self._tl, refractory, kcand, shot,
                offsets[:-1].reshape(n_t, nblocks), nblocks, ev_t, ev_pix, ev_pol,
            )  # fmt: skip
            starts = offsets[::nblocks].copy()  # segment of frame i: [starts[i], starts[i+1])
            cols = (np.empty(total, np.int64), np.empty(total, np.uint16),
                    np.empty(total, np.uint16), np.empty(total, np.int8))  # fmt: skip
            _k._pass_sort(starts, t_us, self._width, *self._sort_modes, ev_t, ev_pix, ev_pol, *cols)
        events = np.empty(total, EVENT_DTYPE)
        for name, col in zip(EVENT_DTYPE.names, cols, strict=True):
            events[name] = col
        self._lp, self._b, self._tl = lp, b, tl
        self._frames_done += n_t
        return events


def dvs(
    frames: np.ndarray,
    *,
    fps: float,
    preset: str | DVSModel | Mapping[str, float] = "clean",
    seed: int = 0,
    **overrides: float,
) -> np.ndarray:
    """Events of a whole clip: frames (T, H, W) uint8 / float in [0, 1] or (T, H, W, 3) uint8
    BGR -> `EVENT_DTYPE` (n,) sorted by (t, y, x). Same as ``DVSEncoder(H, W, ...).push``;
    see `DVSEncoder` for the parameters."""
    if not isinstance(frames, np.ndarray) or frames.ndim not in (3, 4):
        shape = getattr(frames, "shape", None)
        raise SpikesimError(f"frames must be a numpy array (T, H, W), got shape {shape}")
    encoder = DVSEncoder(
        frames.shape[1], frames.shape[2], fps=fps, preset=preset, seed=seed, **overrides
    )
    return encoder.push(frames)
