"""Frame interpolation: put ``factor - 1`` new frames between each pair of source frames.

n source frames give ``(n - 1) * factor + 1`` frames; source frame k reappears, unchanged, at
output index ``k * factor``. Frames are ``(H, W)`` float32 luma in [0, 1] (uint8 is divided by
255). Methods:

- ``"flow"`` (default): dense optical flow both ways (OpenCV DIS), backward warping from both
  neighbours, occlusion-aware blending, and a fall-back to the cross-fade wherever the flow
  does not explain the pair better than "nothing moved" beyond a noise floor, or does not
  carry one frame onto the other (see ``docs/interpolation.md``).
- ``"linear"``: cross-fade ``(1 - t) f0 + t f1``.
- ``"none"``: sample and hold (each source frame repeated ``factor`` times).

Other methods (e.g. a RIFE- or EMA-VFI-style network with weights the user supplies; nothing
is downloaded) plug in with :func:`register_method`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from ._kernels.warp import _fb_confidence, _occlusion_blend, _time_maps, _trust_blend
from .checks import check_memory, whole_number
from .errors import SpikesimError

PairFunction = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""``(f0, f1, ts) -> frames``: f0, f1 ``(H, W)`` float32 in [0, 1]; ts ``(k,)`` float64 times
strictly between 0 and 1; returns ``(k, H, W)`` float32 in [0, 1], frame i at time ts[i]."""


@runtime_checkable
class FrameStream(Protocol):
    """A stateful interpolator with the :class:`Interpolator` push protocol: the first push
    returns ``(1, H, W)`` (the frame), every later push ``(factor, H, W)`` ending with it."""

    def push(self, frame: np.ndarray) -> np.ndarray: ...


MethodFactory = Callable[[int], "FrameStream | PairFunction"]
"""``factory(factor)`` -> a :class:`FrameStream` or a :data:`PairFunction`."""


# ---------------------------------------------------------------------------------------------
# Built-in pair interpolators


def _hold(f0: np.ndarray, f1: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Sample and hold: every in-between frame is a copy of f0."""
    return np.repeat(f0[None], len(ts), axis=0)


def _crossfade(f0: np.ndarray, f1: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Linear cross-fade ``(1 - t) f0 + t f1``, in float64 like the ``flow`` kernels, so that
    ``flow`` on a still scene gives these very values."""
    t = ts[:, None, None]
    return ((1.0 - t) * f0[None] + t * f1[None]).astype(np.float32)


@dataclass(frozen=True)
class FlowParams:
    """Settings of the ``flow`` method (defaults chosen on the real clips; see the docs).

    Flow is estimated by OpenCV's DIS at ``dis_preset`` with the overrides below, on the
    frames rounded to uint8. ``still`` / ``moving``: implied motion over the pair, in pixels,
    below which the flow is ignored (plain cross-fade) and above which it is fully used.
    ``sigma``: forward-backward round-trip error (pixels) at which a pixel's confidence falls
    to 1/e. ``floor``: confidence every warped pixel keeps, so two occluded sides still blend.
    ``window``: side (pixels) of the box over which the flow and the cross-fade are compared.
    ``estimator``: ``"dis"`` or ``"farneback"`` (slower and worse here; kept for comparison).
    ``noise_floor``: grey levels (of 255) of frame change taken for codec or sensor noise,
    not motion. ``photometric``: weight of the flow's own photometric error (each frame
    warped onto the other by it) against the warp; 0 turns the check off. These three
    (``still``/``moving``, ``noise_floor``, ``photometric``) were tuned on the synthetic
    degraded clips of ``benchmarks.tuning_clips``, never on the real scoring clips.
    """

    estimator: str = "dis"
    dis_preset: int = cv2.DISOPTICAL_FLOW_PRESET_FAST
    dis_finest_scale: int = 1
    dis_patch_size: int = 8
    dis_patch_stride: int = 4
    dis_gradient_iterations: int = 12
    dis_refinement_iterations: int = 3
    still: float = 1.0
    moving: float = 2.0
    sigma: float = 1.5
    floor: float = 0.05
    window: int = 7
    noise_floor: float = 3.0
    photometric: float = 2.0

    def __post_init__(self) -> None:
        if self.estimator not in ("dis", "farneback"):
            raise SpikesimError(f"flow estimator {self.estimator!r}: use 'dis' or 'farneback'")
        if not 0 <= self.still < self.moving:
            raise SpikesimError("flow thresholds need 0 <= still < moving (pixels)")
        if self.sigma <= 0 or self.floor < 0 or self.window < 1:
            raise SpikesimError("flow settings need sigma > 0, floor >= 0 and window >= 1")
        if self.noise_floor < 0 or self.photometric < 0:
            raise SpikesimError("flow settings need noise_floor >= 0 and photometric >= 0")


# DIS refuses images not larger than its patch; such tiny frames are simply cross-faded.
_MIN_FLOW_SIDE = 16


class FlowPairs:
    """The ``flow`` method as a :data:`PairFunction`: ``FlowPairs(params)(f0, f1, ts)``.

    Per pair: flow f0->f1 and f1->f0 (once each), their forward-backward confidences, then per
    time t one warp-and-blend pass (Numba). Holds an OpenCV DIS object, so one instance per
    thread or worker.
    """

    def __init__(self, params: FlowParams | None = None) -> None:
        self.params = params or FlowParams()
        p = self.params
        self._dis = None
        if p.estimator == "dis":
            dis = cv2.DISOpticalFlow_create(p.dis_preset)
            dis.setFinestScale(p.dis_finest_scale)
            dis.setPatchSize(p.dis_patch_size)
            dis.setPatchStride(p.dis_patch_stride)
            dis.setGradientDescentIterations(p.dis_gradient_iterations)
            dis.setVariationalRefinementIterations(p.dis_refinement_iterations)
            self._dis = dis

    def flows(self, f0: np.ndarray, f1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense flows ``(f0 -> f1, f1 -> f0)``, each ``(H, W, 2)`` float32 pixels (x, y)."""
        h, w = f0.shape
        if min(h, w) < _MIN_FLOW_SIDE:
            zero = np.zeros((h, w, 2), np.float32)
            return zero, zero.copy()
        u0 = cv2.convertScaleAbs(f0, alpha=255.0)  # rounds and saturates to uint8
        u1 = cv2.convertScaleAbs(f1, alpha=255.0)
        if self._dis is not None:
            return self._dis.calc(u0, u1, None), self._dis.calc(u1, u0, None)
        args = (None, 0.5, 3, 15, 3, 5, 1.2, 0)
        return (
            cv2.calcOpticalFlowFarneback(u0, u1, *args),
            cv2.calcOpticalFlowFarneback(u1, u0, *args),
        )

    def __call__(self, f0: np.ndarray, f1: np.ndarray, ts: np.ndarray) -> np.ndarray:
        flow01, flow10 = self.flows(f0, f1)
        return warp_frames(f0, f1, flow01, flow10, ts, params=self.params)


def warp_frames(
    f0: np.ndarray,
    f1: np.ndarray,
    flow01: np.ndarray,
    flow10: np.ndarray,
    ts: np.ndarray,
    *,
    params: FlowParams | None = None,
) -> np.ndarray:
    """In-between frames from two frames and their flows (the second half of ``flow``).

    f0, f1: ``(H, W)`` float32 in [0, 1]. flow01, flow10: ``(H, W, 2)`` float32 displacements in
    pixels, channel 0 along x (columns), channel 1 along y (rows); ``flow01[y, x]`` takes pixel
    (y, x) of f0 to f1. ts: times strictly inside (0, 1). Returns ``(len(ts), H, W)`` float32 in
    [0, 1]. Any flow estimator (e.g. a network) can feed this.
    """
    p = params or FlowParams()
    f0 = np.ascontiguousarray(f0, dtype=np.float32)
    f1 = np.ascontiguousarray(f1, dtype=np.float32)
    flow01 = np.ascontiguousarray(flow01, dtype=np.float32)
    flow10 = np.ascontiguousarray(flow10, dtype=np.float32)
    ts = np.asarray(ts, dtype=np.float64).reshape(-1)
    if f0.ndim != 2 or f0.shape != f1.shape:
        raise SpikesimError(
            f"frames must be two (H, W) arrays of one shape: {f0.shape}, {f1.shape}"
        )
    if flow01.shape != (*f0.shape, 2) or flow10.shape != flow01.shape:
        raise SpikesimError(f"flows must be {(*f0.shape, 2)}, got {flow01.shape} {flow10.shape}")
    if not (np.all(np.isfinite(flow01)) and np.all(np.isfinite(flow10))):
        raise SpikesimError("flows must be finite")
    if ts.size and not (ts.min() > 0 and ts.max() < 1):
        raise SpikesimError("times must lie strictly between 0 and 1")
    h, w = f0.shape
    out = np.empty((ts.size, h, w), np.float32)
    if ts.size == 0:
        return out
    inv_sigma2 = 1.0 / (p.sigma * p.sigma)
    conf0 = np.empty((h, w), np.float32)
    conf1 = np.empty((h, w), np.float32)
    _fb_confidence(flow01, flow10, inv_sigma2, conf0)
    _fb_confidence(flow10, flow01, inv_sigma2, conf1)
    # Image and confidence side by side, so one remap warps both.
    src0 = np.dstack([f0, conf0])
    src1 = np.dstack([f1, conf1])
    box = (p.window, p.window)
    diff = f0 - f1
    resid_still = cv2.blur(diff * diff, box)  # "nothing moved": the cross-fade's disagreement
    if p.noise_floor > 0:  # changes within a few grey levels are codec noise, not motion
        resid_still = np.maximum(resid_still - np.float32((p.noise_floor / 255.0) ** 2), 0)
    photo = None
    if p.photometric > 0:
        # Does the flow really carry one frame onto the other? Its local photometric error
        # counts against the warp: blocky, noisy or smeared footage makes flow that does not.
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        rep = cv2.BORDER_REPLICATE
        back1 = cv2.remap(f1, gx + flow01[..., 0], gy + flow01[..., 1], cv2.INTER_LINEAR, None, rep)
        back0 = cv2.remap(f0, gx + flow10[..., 0], gy + flow10[..., 1], cv2.INTER_LINEAR, None, rep)
        miss = 0.5 * ((f0 - back1) ** 2 + (f1 - back0) ** 2)
        photo = np.float32(p.photometric) * cv2.blur(miss, box)
    map0 = np.empty((h, w, 2), np.float32)
    map1 = np.empty((h, w, 2), np.float32)
    strength = np.empty((h, w), np.float32)
    warped = np.empty((h, w), np.float32)
    resid = np.empty((h, w), np.float32)
    for n, t in enumerate(ts):
        _time_maps(flow01, flow10, t, p.still, p.moving, map0, map1, strength)
        warp0 = cv2.remap(src0, map0, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        warp1 = cv2.remap(src1, map1, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        _occlusion_blend(warp0, warp1, strength, t, p.floor, warped, resid)
        rf = cv2.blur(resid, box)
        if photo is not None:
            rf += photo
        _trust_blend(f0, f1, t, warped, rf, resid_still, 1e-6, out[n])
    return out


# ---------------------------------------------------------------------------------------------
# Registry


_BUILT_IN: dict[str, MethodFactory] = {
    "none": lambda factor: _hold,
    "linear": lambda factor: _crossfade,
    "flow": lambda factor: FlowPairs(),
}
_METHODS: dict[str, MethodFactory] = dict(_BUILT_IN)


ENTRY_POINT_GROUP = "spikesim.interpolators"
"""Installed packages can offer methods without any import by the user: an entry point
``name = "package.module:factory"`` in this group (seen by convert's worker processes too)."""


def register_method(name: str, factory: MethodFactory, *, replace: bool = False) -> None:
    """Make ``method=name`` available to :func:`interpolate` and :class:`Interpolator`.

    ``factory(factor)`` is called once per :class:`Interpolator` (once per clip) and returns
    either a :data:`PairFunction` ``(f0, f1, ts) -> (len(ts), H, W)``, called once per source
    pair with ``ts = [1/factor, ..., (factor-1)/factor]``, or an object with the
    :class:`FrameStream` push protocol. Load weights inside the factory from a path the user
    gives; nothing is ever downloaded. Example::

        register_method("rife", lambda factor: MyRife("weights/rife.safetensors"))

    Registration lives in this process; for ``spikesim convert --workers N`` (worker processes)
    publish the factory as an entry point in :data:`ENTRY_POINT_GROUP` instead.
    """
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise SpikesimError(f"method name {name!r}: use letters, digits, '-' and '_'")
    if name in _METHODS and not replace:
        raise SpikesimError(f"interpolation method {name!r} exists; pass replace=True")
    if not callable(factory):
        raise SpikesimError(f"factory for {name!r} must be callable as factory(factor)")
    _METHODS[name] = factory


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_methods() -> list[str]:
    """Names accepted as ``method``: built-ins, then registered ones, then entry points."""
    return list(_METHODS) + [n for n in _entry_points() if n not in _METHODS]


def _factory(method: str) -> MethodFactory:
    if method in _METHODS:
        return _METHODS[method]
    ep = _entry_points().get(method)
    if ep is None:
        raise SpikesimError(
            f"unknown interpolation method {method!r}; choose one of "
            + ", ".join(available_methods())
        )
    try:
        factory = ep.load()
    except Exception as exc:  # a broken plug-in must not surface as a traceback
        raise SpikesimError(
            f"interpolation method {method!r}: its plug-in {ep.value} failed to load ({exc})"
        ) from exc
    register_method(method, factory)
    return factory


def _as_frame(frame: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """One frame as C-contiguous ``(H, W)`` float32 in [0, 1] (uint8 is divided by 255)."""
    a = np.asarray(frame)
    if a.ndim != 2:
        raise SpikesimError(f"a frame must be (H, W), got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise SpikesimError(f"frame shape {a.shape} differs from the first frame's {shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255)
    if not np.issubdtype(a.dtype, np.floating):
        raise SpikesimError(f"frames must be float in [0, 1] or uint8, got {a.dtype}")
    a = np.array(a, dtype=np.float32, order="C")  # a copy: the caller may reuse its buffer
    lo, hi = float(a.min()), float(a.max())
    if not (lo >= 0.0 and hi <= 1.0):  # also catches NaN
        raise SpikesimError(f"float frames must lie in [0, 1], got values in [{lo}, {hi}]")
    return a


class Interpolator:
    """Streaming interpolation: push source frames one at a time.

    The first :meth:`push` returns ``(1, H, W)`` (the frame itself); each later one returns
    ``(factor, H, W)``: the ``factor - 1`` frames between the previous source frame and this
    one, then this frame unchanged. So n pushes give ``(n - 1) * factor + 1`` frames, the same
    values as :func:`interpolate` on the whole clip, holding only one source frame.
    """

    def __init__(self, factor: int, method: str = "flow") -> None:
        self.factor = whole_number(factor, "factor", minimum=1)
        # Each push returns `factor` frames at once, and the in-between times take 8 bytes
        # each: a factor of a billion is refused here, not by the OOM killer.
        check_memory(16 * self.factor, f"an interpolation by x{self.factor}")
        self.method = method
        factory = _factory(method)
        self._trusted = _BUILT_IN.get(method) is factory  # plug-in output gets checked
        made = factory(self.factor)
        self._stream: FrameStream | None = None
        self._pair: PairFunction | None = None
        if isinstance(made, FrameStream):
            self._stream = made
        elif callable(made):
            self._pair = made
        else:
            raise SpikesimError(
                f"method {method!r}: its factory returned {type(made).__name__}, "
                "not a pair function or an object with .push(frame)"
            )
        self._ts = np.arange(1, self.factor, dtype=np.float64) / self.factor
        self._prev: np.ndarray | None = None
        self.frames_in = 0
        self.frames_out = 0

    @property
    def supports_gaps(self) -> bool:
        """Whether :meth:`push` accepts ``gap > 1`` (pair methods do; frame streams do not)."""
        return self._pair is not None

    def push(
        self, frame: np.ndarray, *, gap: int = 1, times: np.ndarray | None = None
    ) -> np.ndarray:
        """Add the next source frame ``(H, W)`` (float32 in [0, 1] or uint8); returns the
        ``(k, H, W)`` float32 frames now complete (k = 1 on the first push, else
        ``gap * factor``).

        ``gap``: source frame intervals since the previous push (> 1 when the frames between
        were repeats left out: the pair is then bridged by ``gap * factor - 1`` in-betweens).
        ``times``: optional ``(gap * factor - 1,)`` increasing fractions in (0, 1) where those
        in-betweens sit (e.g. from decoded timestamps); default ``m / (gap * factor)``.
        """
        f = _as_frame(frame, None if self._prev is None else self._prev.shape)
        if self._prev is None:  # the frame size is known now: one push's frames must fit
            check_memory(
                self.factor * f.size * 8, f"x{self.factor} frames of {f.shape[0]}x{f.shape[1]}"
            )
        gap = whole_number(gap, "gap", minimum=1)
        if gap > 1 and self._pair is None:
            raise SpikesimError(
                f"interpolation method {self.method!r} streams frames and cannot bridge a gap; "
                "keep repeated frames (--keep-repeats)"
            )
        expected = 1 if self._prev is None else self.factor * gap
        ts = self._ts if gap == 1 and times is None else _gap_times(expected - 1, times)
        if self._stream is not None:
            out = self._checked(self._stream.push(f), expected, f.shape)
        else:
            out = np.empty((expected, *f.shape), np.float32)
            if expected > 1:
                assert self._pair is not None and self._prev is not None
                out[:-1] = self._checked(self._pair(self._prev, f, ts), expected - 1, f.shape)
        out[-1] = f  # the source frame reappears exactly, whatever the method
        self._prev = f
        self.frames_in += gap if self.frames_out else 1
        self.frames_out += expected
        return out

    def _checked(self, frames: np.ndarray, count: int, shape: tuple[int, ...]) -> np.ndarray:
        """A method's output as float32 in [0, 1]; plug-ins are checked, not trusted."""
        a = np.asarray(frames, dtype=np.float32)
        if self._trusted:
            return a
        if a.shape != (count, *shape):
            raise SpikesimError(
                f"interpolation method {self.method!r} returned shape {a.shape}, "
                f"expected {(count, *shape)}"
            )
        if not np.all(np.isfinite(a)):
            raise SpikesimError(f"interpolation method {self.method!r} returned NaN or inf")
        return np.clip(a, 0.0, 1.0)


def _gap_times(count: int, times: np.ndarray | None) -> np.ndarray:
    """``count`` in-between times in (0, 1): evenly spaced, or ``times`` checked."""
    if times is None:
        return np.arange(1, count + 1, dtype=np.float64) / (count + 1)
    ts = np.asarray(times, dtype=np.float64).reshape(-1)
    if ts.size != count:
        raise SpikesimError(f"times must hold {count} values (gap * factor - 1), got {ts.size}")
    if ts.size and not (ts[0] > 0 and ts[-1] < 1 and np.all(np.diff(ts) > 0)):
        raise SpikesimError("times must increase strictly inside (0, 1)")
    return ts


def interpolate(frames: np.ndarray, *, factor: int, method: str = "flow") -> np.ndarray:
    """Interpolate a whole clip.

    frames: ``(T, H, W)`` float32 in [0, 1] (or uint8, divided by 255), T >= 1. Returns
    ``((T - 1) * factor + 1, H, W)`` float32 in [0, 1]; ``out[k * factor] == frames[k]``.
    ``factor=1`` returns the frames unchanged (as float32). Same values as pushing the frames
    one by one into an :class:`Interpolator`.
    """
    factor = whole_number(factor, "factor", minimum=1)
    stack = np.asarray(frames)
    if stack.ndim != 3 or stack.shape[0] < 1:
        raise SpikesimError(f"frames must be (T, H, W) with T >= 1, got shape {stack.shape}")
    t, h, w = stack.shape
    total = ((t - 1) * factor + 1) * h * w * 4
    check_memory(total, f"interpolating {t} frames of {h}x{w} by x{factor}")
    interp = Interpolator(factor, method)
    out = np.empty(((t - 1) * factor + 1, h, w), np.float32)
    pos = 0
    for frame in stack:
        chunk = interp.push(frame)
        out[pos : pos + len(chunk)] = chunk
        pos += len(chunk)
    return out
