"""Images back from spikes: TFI (texture from inter-spike interval) and TFP (from spike count).

Both follow SpikeCV's ``spikes2images``:

- TFI at time t: interval = (first spike at or after t) - (last spike strictly before t);
  value = trunc(255 / interval) as uint8, and 0 where either side has no spike. The window w
  only crops: the output has T - 2w frames and output[k] is time t = k + w.
- TFP at time t: mean of the 2h + 1 frames t - h .. t + h, times 255, truncated to uint8;
  T - 2h frames, output[k] is time k + h. The count k of spikes is an integer, so this is
  computed exactly as 255 * k // (2h + 1) (the same numbers as the float formula).

``tfi`` / ``tfp`` take a whole ``(T, H, W)`` array. ``iter_tfi`` / ``iter_tfp`` read a long
``DatFile`` (or anything with ``len()``, ``.height``, ``.width`` and ``[a:b]`` slicing) one
chunk at a time, keep memory bounded, and yield chunks that concatenate to exactly the
whole-array result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from ._kernels.reconstruct import FAR, _first_spike, _last_spike, _tfi_chunk, _tfp
from .checks import check_window, positive_number, whole_number
from .errors import SpikesimError

__all__ = ["SpikeSource", "iter_tfi", "iter_tfp", "tfi", "tfp"]

# "First spike at or after the chunk end" not looked up yet (no spike at all is FAR).
_UNKNOWN = -2


class SpikeSource(Protocol):
    """What ``iter_tfi`` / ``iter_tfp`` read: ``spikesim.dat.DatFile`` or a stand-in.

    ``len(src)`` frames of ``src.height`` x ``src.width``; ``src[a:b]`` gives bool or uint8
    ``(b - a, H, W)``.
    """

    height: int
    width: int

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> np.ndarray: ...


def tfi(spikes: np.ndarray, half_window: int = 20) -> np.ndarray:
    """TFI reconstruction of a whole spike array.

    spikes: (T, H, W) bool, or uint8 where nonzero is a spike. half_window: w >= 0 frames
    cropped at each end (SpikeCV's half window; it does not limit how far the search for
    spikes goes).
    Returns uint8 (T - 2w, H, W); output[k] is time k + w. Raises SpikesimError if T <= 2w.
    """
    frames = _as_spikes(spikes, "spikes")
    total, height, width = frames.shape
    w = check_window(half_window, total, "half_window", "TFI")
    out = np.empty((total - 2 * w, height, width), np.uint8)
    no_spike = np.full((height, width), FAR, np.int64)
    _tfi_chunk(frames, 0, -no_spike, no_spike, _tfi_lut(), out, w)
    return out


def tfp(spikes: np.ndarray, half_window: int = 20) -> np.ndarray:
    """TFP reconstruction of a whole spike array.

    spikes: (T, H, W) bool, or uint8 where nonzero is a spike. half_window: h >= 0; each
    image averages the 2h + 1 frames centred on its time.
    Returns uint8 (T - 2h, H, W); output[k] is time k + h. Raises SpikesimError if T <= 2h.
    """
    frames = _as_spikes(spikes, "spikes")
    total, height, width = frames.shape
    h = check_window(half_window, total, "half_window", "TFP")
    out = np.empty((total - 2 * h, height, width), np.uint8)
    _tfp(frames, 2 * h + 1, _tfp_lut(h), out)
    return out


def stretch_top(images: np.ndarray, percentile: float = 99.5) -> float:
    """The grey level that :func:`stretch` maps to white: the ``percentile`` of the nonzero
    values of ``images`` (uint8 (n, H, W)), at least 1. TFI at threshold 5 rarely exceeds
    255 / 5 = 51, so unstretched images are nearly black."""
    values = np.asarray(images)
    nonzero = values[values > 0]
    return max(1.0, float(np.percentile(nonzero, percentile))) if nonzero.size else 1.0


def stretch(images: np.ndarray, top: float) -> np.ndarray:
    """Contrast stretch for viewing: uint8 (n, H, W) scaled so that ``top`` becomes 255
    (values above it clip at 255). Apply one ``top`` to a whole video so it does not flicker."""
    scale = 255.0 / positive_number(top, "top")
    return np.clip(np.asarray(images, np.float32) * scale + 0.5, 0, 255).astype(np.uint8)


def iter_tfi(dat: SpikeSource, half_window: int = 20, *, chunk: int = 256) -> Iterator[np.ndarray]:
    """TFI over a long file in bounded memory: yields uint8 (n, H, W) chunks of ``chunk`` frames
    (the last may be shorter) that concatenate to exactly ``tfi(dat[:], half_window)``.

    Per pixel, the last spike before the chunk is carried over, and the first spike after it
    is found by reading ahead. Memory holds at most ``half_window + 3 * chunk`` frames and a few
    (H, W) arrays. Reading costs one pass over the file while every pixel that spikes does so
    at least once per chunk; in any case at most two passes, plus a re-read of the gap for a
    pixel that is silent for more than ``chunk`` frames between two spikes. (A pixel that
    never spikes again costs one scan to the end of the file in total, not one per chunk.)
    Arguments are checked here, before the first chunk is asked for.
    """
    total, height, width = _source_shape(dat)
    w = check_window(half_window, total, "half_window", "TFI")
    step = whole_number(chunk, "chunk", minimum=1)
    return _iter_tfi(dat, total, height, width, w, step)


def iter_tfp(dat: SpikeSource, half_window: int = 20, *, chunk: int = 256) -> Iterator[np.ndarray]:
    """TFP over a long file in bounded memory: yields uint8 (n, H, W) chunks of ``chunk`` frames
    (the last may be shorter) that concatenate to exactly ``tfp(dat[:], half_window)``.

    The last 2h frames of each read are kept for the next chunk, so every frame is read once
    and memory holds at most ``2 * (chunk + half_window)`` frames.
    Arguments are checked here, before the first chunk is asked for.
    """
    total, height, width = _source_shape(dat)
    h = check_window(half_window, total, "half_window", "TFP")
    step = whole_number(chunk, "chunk", minimum=1)
    return _iter_tfp(dat, total, height, width, h, step)


def _iter_tfi(
    dat: SpikeSource, total: int, height: int, width: int, w: int, step: int
) -> Iterator[np.ndarray]:
    shape = (height, width)
    lut = _tfi_lut()
    prev = np.full(shape, -FAR, np.int64)  # last spike before the next unread frame
    nxt = np.full(shape, _UNKNOWN, np.int64)  # first spike at or after the current chunk end
    # Read-ahead memo: frames [0, horizon) have been scanned, and seen_last holds each pixel's
    # last spike found by read-ahead (only values at or after the current chunk end matter).
    # It tells, without reading again, that a pixel has no spike between the chunk end and
    # the horizon; so a pixel that never spikes again costs one scan to the end, not one per
    # chunk.
    horizon = 0
    seen_last = np.full(shape, -1, np.int64)
    ahead: tuple[int, np.ndarray] | None = None  # the first read-ahead block, reused next chunk
    start = 0  # next frame to feed to the scan
    for out_lo in range(w, total - w, step):
        out_hi = min(out_lo + step, total - w)
        if ahead is not None and ahead[0] == start and len(ahead[1]) >= out_hi - start:
            frames = ahead[1][: out_hi - start]
        else:
            frames = _read(dat, start, out_hi, shape)
        ahead = None

        last = prev.copy()
        _last_spike(frames, start, last)
        horizon = max(horizon, out_hi)

        # Which pixels need their first spike at or after out_hi: those with an open interval
        # (a spike before out_hi) whose memo no longer holds (they spiked in this chunk).
        nxt[last != prev] = _UNKNOWN
        want = (last >= 0) & (nxt == _UNKNOWN)

        # A spike is known to lie in [out_hi, horizon): find it by reading that range again.
        again = (want & (seen_last >= out_hi)).view(np.uint8)
        pos = out_hi
        while again.any() and pos < horizon:
            block = _read(dat, pos, min(pos + step, horizon), shape)
            if ahead is None:
                ahead = (pos, block)
            _first_spike(block, pos, again, nxt)
            pos += len(block)

        # No spike in [out_hi, horizon): look beyond the horizon, extending the memo.
        beyond = (want & (seen_last < out_hi)).view(np.uint8)
        while beyond.any() and horizon < total:
            block = _read(dat, horizon, min(horizon + step, total), shape)
            if ahead is None and horizon == out_hi:
                ahead = (horizon, block)
            _first_spike(block, horizon, beyond, nxt)
            _last_spike(block, horizon, seen_last)
            horizon += len(block)
        nxt[beyond.view(bool)] = FAR

        out = np.empty((out_hi - out_lo, height, width), np.uint8)
        _tfi_chunk(frames, start, prev, nxt, lut, out, out_lo)
        start = out_hi
        yield out


def _iter_tfp(
    dat: SpikeSource, total: int, height: int, width: int, h: int, step: int
) -> Iterator[np.ndarray]:
    shape = (height, width)
    lut = _tfp_lut(h)
    kept = np.zeros((0, height, width), np.uint8)  # the last 2h frames read
    pos = 0
    for out_lo in range(h, total - h, step):
        out_hi = min(out_lo + step, total - h)
        # The windows of times [out_lo, out_hi) cover frames [out_lo - h, out_hi + h).
        fresh = _read(dat, pos, out_hi + h, shape)
        pos = out_hi + h
        block = np.concatenate([kept, fresh]) if len(kept) else fresh
        out = np.empty((out_hi - out_lo, height, width), np.uint8)
        _tfp(block, 2 * h + 1, lut, out)
        kept = block[len(block) - 2 * h :].copy()
        yield out


def _tfi_lut() -> np.ndarray:
    """lut[d] = trunc(255 / d) for an interval of d = 1..255 frames; lut[256] = 0 stands for
    every longer interval, including a missing spike on either side (FAR frames away)."""
    lut = np.zeros(257, np.uint8)
    lut[1:] = 255 // np.arange(1, 257)
    return lut


def _tfp_lut(h: int) -> np.ndarray:
    """lut[k] = trunc(255 * k / (2h + 1)) for k spikes in the window, exact in integers."""
    n = 2 * h + 1
    return (255 * np.arange(n + 1, dtype=np.int64) // n).astype(np.uint8)


def _as_spikes(spikes: Any, what: str) -> np.ndarray:
    """Check a (T, H, W) bool/uint8 array; return a C-contiguous uint8 view (no copy if it can)."""
    arr = np.asarray(spikes)
    if arr.ndim != 3:
        raise SpikesimError(f"{what} must be a (T, H, W) array, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    elif arr.dtype != np.uint8:
        raise SpikesimError(
            f"{what} must be bool or uint8 0/1, got {arr.dtype}; convert with .astype(bool)"
        )
    return np.ascontiguousarray(arr)


def _source_shape(dat: Any) -> tuple[int, int, int]:
    """(T, H, W) of a DatFile-like source."""
    try:
        return len(dat), int(dat.height), int(dat.width)
    except (TypeError, AttributeError):
        raise SpikesimError(
            f"expected a spikesim.dat.DatFile (len, .height, .width, slicing), got "
            f"{type(dat).__name__}; for an in-memory array use tfi() / tfp()"
        ) from None


def _read(dat: SpikeSource, start: int, stop: int, shape: tuple[int, int]) -> np.ndarray:
    """Frames [start, stop) of the source as uint8 (n, H, W), checked against the source's size."""
    block = _as_spikes(dat[start:stop], "frames read from the source")
    if block.shape != (stop - start, *shape):
        raise SpikesimError(
            f"reading frames {start}:{stop} gave shape {block.shape}, expected "
            f"{(stop - start, *shape)}; the file changed or its size is wrong"
        )
    return block
