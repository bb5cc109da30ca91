"""Repeated source frames: find them while streaming and interpolate across them.

Many real clips repeat frames (a frame-rate conversion by duplication: in UCF101's Basketball
about every other frame, in SoccerJuggling every 6th). Converted as they are, motion stops
for ``factor`` spike frames and then jumps. :class:`GapStream` sits in front of an
:class:`~spikesim.interpolate.Interpolator`: a frame that repeats its predecessor is treated
as missing and the interpolator bridges the gap, so the output keeps the source timeline
(n source frames still give ``(n - 1) * factor + 1`` frames).

A frame is a repeat when its change from the previous frame (:func:`frame_change`: mean
absolute difference of 4x4 block means, which averages compression noise away) is below
``ratio`` times the clip's typical change around it (the ``quantile`` of the changes of
``window`` frames before and after) and below ``ceiling``, an absolute bound of about one
grey level: a copy differs from its original by codec noise only, while a slow or nearly
still stretch of real motion, whose changes are small only relative to the clip's, is not a
copy. Memory is bounded: at most ``window + max_run + 1`` frames are held (the look-ahead
and one run of repeats).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from .checks import whole_number
from .errors import SpikesimError
from .interpolate import Interpolator

__all__ = ["GapStream", "RepeatParams", "find_repeats", "frame_change"]

# Block side of the means compared by frame_change: 4x4 blocks average out most of the
# ringing and mosquito noise of a re-encoded copy while a moving edge still shows.
_BLOCK = 4


def _blocks(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape
    if min(h, w) < 4 * _BLOCK:  # tiny frames: compare the pixels themselves
        return frame
    return cv2.resize(frame, (w // _BLOCK, h // _BLOCK), interpolation=cv2.INTER_AREA)


def frame_change(a: np.ndarray, b: np.ndarray) -> float:
    """How much ``b`` differs from ``a``: mean absolute difference of their 4x4 block means.

    a, b: ``(H, W)`` float32 in [0, 1]. Returns a grey-level difference in [0, 1].
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim != 2 or a.shape != b.shape:
        raise SpikesimError(f"frames must be two (H, W) arrays of one shape: {a.shape}, {b.shape}")
    return float(cv2.norm(_blocks(a), _blocks(b), cv2.NORM_L1)) / max(_blocks(a).size, 1)


@dataclass(frozen=True)
class RepeatParams:
    """When a frame counts as a repeat of its predecessor.

    ``ratio``: a change below ``ratio`` x the typical change is a repeat, if it is also below
    ``ceiling`` (grey levels in [0, 1]; measured: detected copies in the shared UCF101/HMDB51
    clips change by at most 0.0008, frames of slow synthetic motion by 0.0045 and more,
    the copies of tests/spikesim/test_repeats.py with per-pixel noise of 2.5 grey levels
    by about 0.002).
    ``quantile``: which
    quantile of the nearby changes is "typical" (high, because up to half the changes of a
    duplicated clip are ~0). ``window``: frames each side whose changes are looked at (also
    the look-ahead, in frames). ``max_run``: at most this many repeats in a row are bridged;
    a longer still stretch is a scene that did not move, kept as it is (and it bounds memory).
    """

    ratio: float = 0.25
    ceiling: float = 0.004
    quantile: float = 0.75
    window: int = 6
    max_run: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.ratio < 1 or not 0 < self.quantile <= 1 or not 0 < self.ceiling <= 1:
            raise SpikesimError(
                "repeat detection needs 0 < ratio < 1, 0 < ceiling <= 1 and 0 < quantile <= 1"
            )
        whole_number(self.window, "repeat window", minimum=1)
        whole_number(self.max_run, "max_run", minimum=1)


@dataclass
class _Pending:
    frame: np.ndarray
    change: float  # frame_change from the previous source frame (nan for the first)
    time: float | None  # decoded timestamp in seconds, if known


class GapStream:
    """Push decoded frames; get the interpolated frames with repeats bridged.

    ``push(frame, time=None)`` returns ``(k, H, W)`` float32 (k may be 0 while frames wait for
    the look-ahead); ``finish()`` returns the rest. Over a whole clip of n frames the outputs
    add up to ``(n - 1) * factor + 1`` frames, like the bare interpolator. With
    ``drop_repeats=False``, a method that cannot bridge gaps, or ``"none"`` (sample and hold,
    which would put back the very frame a repeat copies) it is the bare interpolator.
    ``time``: the frame's decoded timestamp (seconds); when every frame has one and they
    increase, the in-betweens across a gap are placed by these times instead of frame counts.
    After :meth:`finish`, ``repeats`` is the number of frames bridged.
    """

    def __init__(
        self,
        interpolator: Interpolator,
        *,
        drop_repeats: bool = True,
        params: RepeatParams | None = None,
    ) -> None:
        self.interpolator = interpolator
        self.params = params or RepeatParams()
        # Sample and hold ("none") would only put back the very frame a repeat copies.
        self.drop_repeats = (
            bool(drop_repeats) and interpolator.supports_gaps and interpolator.method != "none"
        )
        self.repeats = 0
        self.frames_in = 0
        self._ahead: deque[_Pending] = deque()  # undecided frames (the look-ahead)
        self._past: deque[float] = deque(maxlen=self.params.window)  # changes already decided
        self._run: list[_Pending] = []  # repeats since the last kept frame
        self._kept: _Pending | None = None  # the last frame given to the interpolator
        self._last: np.ndarray | None = None
        self._still = False  # inside a still stretch longer than max_run
        self._finished = False

    def push(self, frame: np.ndarray, time: float | None = None) -> np.ndarray:
        """Add the next decoded frame ``(H, W)`` float32 in [0, 1]; returns the frames now due."""
        if self._finished:
            raise SpikesimError("this GapStream has finished; make a new one for the next clip")
        f = np.asarray(frame, dtype=np.float32)
        if not self.drop_repeats:
            self.frames_in += 1
            self._last = f
            return self.interpolator.push(f)
        change = np.nan if self._last is None else frame_change(self._last, f)
        self._last = f
        self.frames_in += 1
        self._ahead.append(_Pending(f, change, time))
        out: list[np.ndarray] = []
        while len(self._ahead) > self.params.window:
            out.extend(self._decide())
        return _stack(out, f.shape)

    def finish(self) -> np.ndarray:
        """Decide the frames still waiting and return their output."""
        if self._finished:
            raise SpikesimError("finish() was already called on this GapStream")
        self._finished = True
        if self._last is None:
            return np.empty((0, 0, 0), np.float32)
        if not self.drop_repeats:
            return np.empty((0, *self._last.shape), np.float32)
        out: list[np.ndarray] = []
        while self._ahead:
            out.extend(self._decide())
        # Trailing repeats have no later frame to move towards: they stay as they are.
        for pending in self._run:
            out.append(self.interpolator.push(pending.frame))
        self._run = []
        return _stack(out, self._last.shape)

    def _decide(self) -> list[np.ndarray]:
        head = self._ahead.popleft()
        if self._kept is None:  # the first frame is always kept
            self._kept = head
            return [self.interpolator.push(head.frame)]
        nearby = [*self._past, head.change, *(p.change for p in self._ahead)]
        typical = float(np.quantile(np.asarray(nearby), self.params.quantile))
        self._past.append(head.change)
        if head.change < min(self.params.ratio * typical, self.params.ceiling):
            if self._still:  # the still stretch goes on
                self._kept = head
                return [self.interpolator.push(head.frame)]
            self._run.append(head)
            if len(self._run) <= self.params.max_run:
                return []
            # A long still stretch: the scene did not move; keep those frames as they are.
            out = [self.interpolator.push(p.frame) for p in self._run]
            self._kept, self._run, self._still = self._run[-1], [], True
            return out
        self._still = False
        gap = len(self._run) + 1
        times = self._times(head) if gap > 1 else None
        self.repeats += gap - 1
        out = [self.interpolator.push(head.frame, gap=gap, times=times)]
        self._kept, self._run = head, []
        return out

    def _times(self, head: _Pending) -> np.ndarray | None:
        """Fractions in (0, 1) of the in-betweens across a gap, from decoded timestamps:
        output slot r of source interval k sits at T_k + r/factor (T_k+1 - T_k)."""
        assert self._kept is not None
        stamps = [self._kept.time, *(p.time for p in self._run), head.time]
        if any(t is None or not np.isfinite(t) for t in stamps):
            return None
        t = np.asarray(stamps, np.float64)
        steps = np.diff(t)
        if not np.all(steps > 0):
            return None  # a container that lies: fall back to frame counts
        if steps.max() - steps.min() <= 0.01 * steps.mean():
            return None  # constant frame rate: frame counts give these very times, exactly
        factor = self.interpolator.factor
        r = np.arange(factor, dtype=np.float64) / factor
        slots = (t[:-1, None] + r[None, :] * np.diff(t)[:, None]).reshape(-1)[1:]
        return (slots - t[0]) / (t[-1] - t[0])


def _stack(chunks: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    if not chunks:
        return np.empty((0, *shape), np.float32)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def find_repeats(frames: np.ndarray, params: RepeatParams | None = None) -> np.ndarray:
    """Which frames of a clip :class:`GapStream` bridges as repeats.

    frames: ``(T, H, W)`` float32 in [0, 1]. Returns ``(T,)`` bool, True for a bridged repeat
    (never the first frame; trailing repeats and runs longer than ``max_run`` are not bridged).
    Runs the same decisions as the stream, with a recording interpolator.
    """
    stack = np.asarray(frames, np.float32)
    if stack.ndim != 3 or len(stack) < 1:
        raise SpikesimError(f"frames must be (T, H, W) with T >= 1, got shape {stack.shape}")
    recorder = _Recorder()
    stream = GapStream(recorder, params=params)  # type: ignore[arg-type]
    for f in stack:
        stream.push(f)
    stream.finish()
    out = np.zeros(len(stack), bool)
    pos = 0
    for gap in recorder.gaps:
        out[pos + 1 : pos + gap] = True
        pos += gap
    return out


class _Recorder:
    """Stands in for an Interpolator and only records the gaps it is asked to bridge."""

    factor = 1
    supports_gaps = True
    method = "recorder"

    def __init__(self) -> None:
        self.gaps: list[int] = []
        self._first = True

    def push(self, frame: np.ndarray, *, gap: int = 1, times=None) -> np.ndarray:
        if self._first:
            self._first = False
        else:
            self.gaps.append(gap)
        return np.empty((0, *frame.shape), np.float32)
