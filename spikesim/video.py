"""Reading source videos: probe, decode, luma, resize and centre-crop, one frame at a time.

OpenCV (its FFmpeg backend) decodes ``.avi``, ``.mp4``, ``.mkv`` and ``.gif``. Frames come out
as ``(H, W)`` float32 luma in [0, 1]: Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601), computed
in float so no precision is lost to an 8-bit grey image. Frame counts are always counted by
decoding: container headers are not trusted (HMDB51's AVI files report one frame more than
they hold).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .checks import check_shape
from .errors import VideoError

# FFmpeg would otherwise print its decoder complaints ("ac-tex damaged", "moov atom not found")
# on stderr for every damaged clip; we turn damage into one VideoError line instead. It is read
# when the first capture opens, and a value the user set wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# OpenCV's own "[ WARN ] ... Unable to read codec parameters" lines, likewise, unless the user
# asked for logging with OPENCV_LOG_LEVEL.
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

VIDEO_SUFFIXES: tuple[str, ...] = (".avi", ".mp4", ".mkv", ".gif", ".mov", ".webm", ".mpg")
"""File suffixes (lower case) read as videos: by source scanning, the decoder and the CLI."""

# Decoding may stop this many frames short of what the header reports before we call the file
# truncated: HMDB51's AVIs report one extra frame, and some encoders count a trailing
# B-frame that never decodes.
_SHORTFALL_FRAMES = 2
_SHORTFALL_FRACTION = 0.02


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    ``fps`` is 0.0 when the container does not say. ``frames_reported`` is the header's frame
    count, which may be wrong; use :func:`count_frames` for the true number.
    """

    path: Path
    fps: float
    width: int
    height: int
    frames_reported: int


def _open(path: str | os.PathLike[str]) -> tuple[Path, cv2.VideoCapture]:
    p = Path(path)
    if not p.exists():
        if p.is_symlink():  # a dangling link or a loop: say so, not "no such file"
            try:
                p.stat()
            except OSError as err:
                raise VideoError(
                    f"{p}: a symlink that cannot be followed ({err.strerror})"
                ) from None
        raise VideoError(f"{p}: no such video file; check the path")
    if not p.is_file():
        raise VideoError(f"{p}: is not a file; give the path of a video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: the file is empty (0 bytes); re-download or remove it")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"{p}: cannot open it as a video (unknown format or damaged file); "
            "check that it plays, or remove it"
        )
    return p, cap


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Open a video and return its fps, size (pixels) and reported frame count; decodes nothing
    unless the container does not give the size. Raises :class:`VideoError` if it cannot be
    opened."""
    p, cap = _open(path)
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not np.isfinite(fps) or fps <= 0:
            fps = 0.0
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        reported = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        reported = int(reported) if np.isfinite(reported) and reported > 0 else 0
        if width <= 0 or height <= 0:
            ok, frame = cap.read()
            if not ok or frame is None:
                raise VideoError(f"{p}: no frame could be decoded; the video is empty or damaged")
            height, width = frame.shape[:2]
    finally:
        cap.release()
    return VideoInfo(path=p, fps=fps, width=width, height=height, frames_reported=reported)


def to_luma(frame: np.ndarray) -> np.ndarray:
    """Decoded frame -> luma. ``frame``: ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA uint8, or
    ``(H, W)`` grey uint8. Returns ``(H, W)`` float32 in [0, 1] (BT.601 weights, no rounding)."""
    if frame.ndim == 2:
        return frame.astype(np.float32) * np.float32(1 / 255)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise VideoError(f"decoded frame has an unexpected shape {frame.shape}")
    # Convert in float32: BGR2GRAY on uint8 would round to whole grey levels and lose the
    # precision the encoder integrates over. OpenCV's weights are BT.601's.
    code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
    luma = cv2.cvtColor(frame.astype(np.float32) * np.float32(1 / 255), code)
    return np.clip(luma, 0.0, 1.0, out=luma)


def resize_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``(h, w)`` so that it covers ``size = (H, W)`` (the short side, relative to the
    target's aspect, fits exactly), then cut the centred ``(H, W)`` window. Shrinking uses
    area averaging (no aliasing), enlarging bilinear. Returns a C-contiguous float32 array."""
    out_h, out_w = size
    h, w = image.shape[:2]
    scale = max(out_h / h, out_w / w)
    new_h = max(out_h, round(h * scale))
    new_w = max(out_w, round(w * scale))
    if (new_h, new_w) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interp)
    top = (new_h - out_h) // 2
    left = (new_w - out_w) // 2
    return np.ascontiguousarray(image[top : top + out_h, left : left + out_w], dtype=np.float32)


def iter_frames(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int] | None = None,
    strict: bool = True,
) -> Iterator[np.ndarray]:
    """Decode a video one frame at a time; memory does not grow with its length.

    Yields ``(H, W)`` float32 luma in [0, 1] at the decoded size (``size=None``, the default),
    or, with ``size=(H, W)``, resized so the frame covers that size and centre-cropped to it. Raises
    :class:`VideoError` (one line) when the file is missing or cannot be opened, when no frame
    decodes, and, with ``strict``, after the last frame when decoding stopped well short of the
    count in the header (a truncated or damaged file).
    """
    target = None if size is None else check_shape(size, error=VideoError)
    p, cap = _open(path)
    try:
        reported = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        reported = int(reported) if np.isfinite(reported) and reported > 0 else 0
        count = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            luma = to_luma(frame)
            yield luma if target is None else resize_crop(luma, target)
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise VideoError(f"{p}: no frame could be decoded; the video is empty or damaged")
    allowed = max(_SHORTFALL_FRAMES, int(_SHORTFALL_FRACTION * reported))
    if strict and reported - count > allowed:
        raise VideoError(
            f"{p}: decoding stopped after {count} of the {reported} frames its header reports "
            "(truncated or damaged file); re-download it or remove it"
        )


def read_video(path: str | os.PathLike[str], *, size: tuple[int, int] | None = None) -> np.ndarray:
    """Whole clip as ``(T, H, W)`` float32 in [0, 1] (for short clips, tests and benchmarks;
    the conversion pipeline streams with :func:`iter_frames`)."""
    return np.stack(list(iter_frames(path, size=size)))


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of frames that actually decode (the header's count is not trusted). Decodes the
    whole file without converting the frames. Raises :class:`VideoError` if none decodes."""
    p, cap = _open(path)
    count = 0
    try:
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise VideoError(f"{p}: no frame could be decoded; the video is empty or damaged")
    return count


def frame_times(path: str | os.PathLike[str]) -> np.ndarray | None:
    """Presentation times of the video's frames, in seconds, ``(n,)`` float64 increasing, read
    from the container's packets (PyAV demuxes; nothing is decoded, so it is cheap).

    Returns None when the container gives no usable timestamps (a packet without one, or
    repeated times). ``n`` may exceed the frames that decode (HMDB51's AVIs hold one more
    packet); frame k of :func:`iter_frames` has time ``times[k]``. Variable-frame-rate videos
    show uneven steps.
    """
    import av

    p = Path(path)
    try:
        with av.open(str(p), metadata_errors="replace") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            base = stream.time_base
            pts = [pk.pts for pk in container.demux(stream) if pk.size]
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None
    if base is None or not pts or any(t is None for t in pts):
        return None
    times = np.sort(np.asarray(pts, np.float64)) * float(base)
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        return None
    return times
