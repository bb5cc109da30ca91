"""One clip through the pipeline: decode -> interpolate -> encode -> write, streaming.

Per clip the pipeline streams, so memory does not grow with clip length::

    iter_frames (decode, luma, resize + centre-crop) -> Interpolator.push (x factor)
    -> Encoder.push_packed (integrate-and-fire + bit-pack) -> DatWriter.write_packed

A clip with N decoded frames gives (N - 1) * factor + 1 spike frames. ``spikesim convert``
runs this for every clip of a dataset (``spikesim.convert``), ``spikesim encode`` for one video.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .checks import check_size, format_size, positive_number, whole_number
from .dat import DatWriter
from .encode import Encoder
from .errors import SpikesimError, VideoError
from .interpolate import Interpolator
from .repeats import GapStream
from .sidecar import valid_sidecar
from .video import frame_times, iter_frames, probe_video

# Far beyond the x50 of HMDB51; a larger factor is a typo that would fill the disk.
MAX_FACTOR = 1000


@dataclass(frozen=True)
class ConvertSettings:
    """Everything that decides the bytes of a converted clip (besides the video itself)."""

    size: tuple[int, int] = (240, 320)
    factor: int = 10
    interp: str = "flow"
    threshold: float = 5.0
    init: str = "random"
    noise: str | None = None  # a preset name of spikesim.noise.NOISE_PRESETS, or None
    seed: int = 0
    flipud: bool = True
    drop_repeats: bool = True  # bridge source frames that repeat their predecessor

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", check_size(*self.size))
        factor = whole_number(self.factor, "factor", minimum=1, maximum=MAX_FACTOR)
        object.__setattr__(self, "factor", factor)
        object.__setattr__(self, "threshold", positive_number(self.threshold, "threshold"))
        if self.noise == "none":
            object.__setattr__(self, "noise", None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able record (``config.yaml`` -> ``conversion``)."""
        out = asdict(self)
        out["size"] = format_size(*self.size)
        return out

    def clip_meta(self, clip_seed: int, source: str) -> dict[str, Any]:
        """The sidecar keys that must match for a finished clip to be reused."""
        return {
            "height": self.size[0],
            "width": self.size[1],
            "flipud": self.flipud,
            "threshold": self.threshold,
            "init": self.init,
            "noise": self.noise,
            "seed": clip_seed,
            "run_seed": self.seed,
            "interp": self.interp,
            "factor": self.factor,
            "drop_repeats": self.drop_repeats,
            "source": source,
        }


@dataclass(frozen=True)
class ClipResult:
    frames: int  # spike frames written
    source_frames: int  # frames decoded
    source_fps: float | None
    cpu_seconds: float = 0.0  # CPU time of the converting process for this clip
    repeats: int = 0  # source frames that repeated their predecessor and were bridged


def convert_clip(
    video: str | os.PathLike,
    dat: str | os.PathLike,
    settings: ConvertSettings,
    *,
    seed: int,
    source: str,
) -> ClipResult:
    """Convert one video into ``dat`` (+ sidecar), streaming, atomically.

    ``seed`` is the clip's encoder seed (see ``datasets.clip_seed``); ``source`` the video's
    path as recorded in the sidecar. Raises ``VideoError`` for an unreadable or empty video;
    on any error no ``.dat`` is left under ``dat``.
    """
    cpu0 = time.process_time()
    video, dat = Path(video), Path(dat)
    height, width = settings.size
    info = probe_video(video)
    interpolator = Interpolator(settings.factor, settings.interp)
    stream = GapStream(interpolator, drop_repeats=settings.drop_repeats)
    times = frame_times(video)  # None when the container has no usable timestamps
    encoder = Encoder(
        height,
        width,
        threshold=settings.threshold,
        init=settings.init,
        noise=settings.noise,
        seed=seed,
    )
    meta = {k: v for k, v in settings.clip_meta(seed, source).items() if k not in _WRITER_KEYS}
    fps = float(info.fps) if info.fps and math.isfinite(info.fps) and info.fps > 0 else None
    meta.update(encoder=encoder.settings(), source_fps=fps)
    # Remove an old result first: an interruption must not leave an old .dat beside a new sidecar.
    dat.unlink(missing_ok=True)
    n_source = 0
    with DatWriter(dat, height, width, flipud=settings.flipud, meta=meta, overwrite=True) as writer:
        for frame in iter_frames(video, size=settings.size):
            stamp = None if times is None or n_source >= len(times) else float(times[n_source])
            chunk = stream.push(frame, stamp)
            if len(chunk):
                writer.write_packed(encoder.push_packed(chunk, flipud=settings.flipud))
            n_source += 1
        if n_source == 0:
            raise VideoError(f"{video}: no frames could be decoded; the file is empty or corrupt")
        chunk = stream.finish()
        if len(chunk):
            writer.write_packed(encoder.push_packed(chunk, flipud=settings.flipud))
        writer.update_meta(
            repeat_frames=stream.repeats if stream.drop_repeats else None,
            source_times=_times_summary(times, n_source),
        )
        expected = (n_source - 1) * settings.factor + 1
        if writer.frames != expected:
            raise SpikesimError(
                f"{video}: wrote {writer.frames} spike frames, expected {expected} "
                f"from {n_source} source frames; this is a bug, please report it"
            )
        frames = writer.frames
    cpu = time.process_time() - cpu0
    return ClipResult(
        frames=frames,
        source_frames=n_source,
        source_fps=fps,
        cpu_seconds=cpu,
        repeats=stream.repeats,
    )


def _times_summary(times: Any, n_source: int) -> dict[str, Any] | None:
    """The decoded frames' timestamps in a few numbers (seconds), for the sidecar."""
    if times is None or n_source < 2 or len(times) < n_source:
        return None
    steps = [float(x) for x in (times[1:n_source] - times[: n_source - 1])]
    low, high = min(steps), max(steps)
    return {
        "first": round(float(times[0]), 6),
        "last": round(float(times[n_source - 1]), 6),
        "min_step": round(low, 6),
        "max_step": round(high, 6),
        "variable": bool(high - low > 0.01 * (sum(steps) / len(steps))),
    }


_WRITER_KEYS = ("height", "width", "flipud")  # the writer records these itself


def finished_clip(dat: Path, expected: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Whether ``dat`` is a finished conversion with the ``expected`` sidecar values.

    Returns ``(sidecar, None)`` for a finished clip; ``(None, mismatch)`` when it exists but
    was made with other settings (``mismatch`` names the first difference); ``(None, None)``
    when there is nothing usable: no ``.dat``, or a sidecar that is missing, unreadable or
    disagrees with the file size (such a clip is simply converted again).
    """
    if not dat.is_file():
        return None, None
    meta = valid_sidecar(dat)
    if meta is None:
        return None, None
    for key, want in expected.items():
        if meta.get(key) != want:
            return None, f"{key}={meta.get(key)!r} (now {want!r})"
    return meta, None
