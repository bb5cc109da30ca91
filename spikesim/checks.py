"""Argument checks, in one place: sizes, whole numbers, positive numbers, windows, frame ranges.

Every check raises a ``SpikesimError`` (or the subclass passed as ``error``) whose message is
one line naming the argument, the value and what is allowed. Sizes are ``HxW`` strings on the
command line and ``(H, W)`` tuples everywhere else.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from typing import Any

import numpy as np

from .errors import SpikesimError

ErrorType = type[SpikesimError]


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``"240x320"`` into ``(240, 320)`` (height first)."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise SpikesimError(f"size {text!r} is not HxW, e.g. 240x320")
    h, w = (int(p) for p in parts)
    check_size(h, w)
    return h, w


def check_size(height: int, width: int, *, error: ErrorType = SpikesimError) -> tuple[int, int]:
    """``(height, width)`` as ints; raise unless both are positive whole numbers and H·W is a
    multiple of 8 (whole bytes per ``.dat`` frame)."""
    height = whole_number(height, "height", minimum=1, error=error)
    width = whole_number(width, "width", minimum=1, error=error)
    if (height * width) % 8:
        raise error(
            f"size {height}x{width}: H*W = {height * width} is not a multiple of 8, "
            "so frames would not fill whole bytes"
        )
    return height, width


def check_shape(size: Any, *, error: ErrorType = SpikesimError) -> tuple[int, int]:
    """A ``(height, width)`` pair of positive whole numbers (any H·W: images, not ``.dat``)."""
    try:
        h, w = size
        return whole_number(h, "height", minimum=1), whole_number(w, "width", minimum=1)
    except (TypeError, ValueError, SpikesimError):
        raise error(f"size {size!r} must be (height, width) in positive whole pixels") from None


def format_size(height: int, width: int) -> str:
    return f"{height}x{width}"


def is_whole(value: Any) -> bool:
    """True for ints and NumPy integers, never for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def whole_number(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: ErrorType = SpikesimError,
) -> int:
    """``value`` as an int; raise unless it is a whole number (not a bool, not a float) within
    ``[minimum, maximum]``."""
    bounds = _bounds_text(minimum, maximum)
    if isinstance(value, bool):
        raise error(f"{name} must be a whole number{bounds}, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise error(f"{name} must be a whole number{bounds}, got {value!r}") from None
    if (minimum is not None and n < minimum) or (maximum is not None and n > maximum):
        raise error(f"{name} must be a whole number{bounds}, got {n}")
    return n


def positive_number(value: Any, name: str, *, error: ErrorType = SpikesimError) -> float:
    """``value`` as a float; raise unless it is a finite number > 0 (not a bool)."""
    return real_number(value, name, minimum=0, above=True, error=error)


def real_number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: bool = False,
    error: ErrorType = SpikesimError,
) -> float:
    """``value`` as a float; raise unless it is a finite number (not a bool) within
    ``[minimum, maximum]`` (``above``: strictly greater than ``minimum``)."""
    low = "" if minimum is None else f" {'>' if above else '>='} {minimum:g}"
    high = "" if maximum is None else f" <= {maximum:g}"
    what = f"{name} must be a finite number{low}{' and' if low and high else ''}{high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{what}, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise error(f"{what}, got {value}")
    if minimum is not None and (value <= minimum if above else value < minimum):
        raise error(f"{what}, got {value:g}")
    if maximum is not None and value > maximum:
        raise error(f"{what}, got {value:g}")
    return value


def check_unit_range(frames: np.ndarray) -> None:
    """Raise unless every value of a float array is in [0, 1] (NaN is out of range)."""
    ok = (frames >= 0) & (frames <= 1)
    if ok.all():
        return
    bad = frames[~ok]
    n_nan = int(np.isnan(bad).sum())
    finite = bad[~np.isnan(bad)]
    what = []
    if finite.size:
        what.append(f"values from {finite.min():g} to {finite.max():g}")
    if n_nan:
        what.append(f"{n_nan} NaN")
    raise SpikesimError(
        f"float frames must be intensities in [0, 1]; found {' and '.join(what)} "
        "(scale 8-bit images by 1/255, or pass them as uint8)"
    )


def check_window(value: Any, total: int, name: str, method: str) -> int:
    """A half window ``n >= 0`` that leaves at least one output frame of ``total`` (T > 2n)."""
    n = whole_number(value, f"{method} {name}", minimum=0)
    if total == 0:
        raise SpikesimError(f"{method}: the spike stream has no frames")
    if total <= 2 * n:
        raise SpikesimError(
            f"{method} with {name}={n} needs more than {2 * n} frames, got {total}; "
            f"use a {name} of at most {(total - 1) // 2}"
        )
    return n


def frame_range(
    start: Any, count: Any, total: int, where: str, *, error: ErrorType = SpikesimError
) -> tuple[int, int]:
    """Frames ``[start, start + count)`` of ``total`` as ``(start, stop)``; ``count`` None means
    to the end. Every reader of frames takes ``(start, count)`` and checks it here."""
    start = whole_number(start, f"{where}: start", error=error)
    if count is None:
        stop = total
    else:
        stop = start + whole_number(count, f"{where}: count", minimum=0, error=error)
    if not 0 <= start <= stop <= total:
        raise error(
            f"{where}: frames [{start}, {stop}) are out of range; it has {total} frames, "
            f"ask for frames within [0, {total}]"
        )
    return start, stop


def _bounds_text(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def available_memory() -> int | None:
    """Bytes of memory this machine can still give (``MemAvailable``), None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def format_bytes(n: float) -> str:
    """``51200`` -> ``"50.0 KiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # unreachable: the loop returns


def check_memory(nbytes: float, what: str, *, error: ErrorType = SpikesimError) -> None:
    """Refuse, before allocating, ``nbytes`` that this machine does not have: an absurd size
    (a typo, a damaged header) must fail in one line, not after swapping or by the OOM killer.
    ``what`` names the allocation ("the interpolated clip", ...)."""
    free = available_memory()
    if free is not None and nbytes > free:
        raise error(
            f"{what} would need {format_bytes(nbytes)} of memory, but {format_bytes(free)} is "
            "available; check the sizes asked for"
        )
