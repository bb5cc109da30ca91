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

import numpy as np

from .checks import check_size, format_size, positive_number, whole_number
from .dat import DatWriter
from .dvs import DVS_PRESETS, DVSEncoder
from .encode import Encoder
from .errors import SpikesimError, VideoError
from .events import EventWriter
from .files import AtomicOutput
from .interpolate import Interpolator
from .repeats import GapStream
from .sidecar import valid_sidecar
from .video import frame_times, iter_frames, probe_video

# Far beyond the x50 of HMDB51; a larger factor is a typo that would fill the disk.
MAX_FACTOR = 1000
# sensor -> the file suffix of a converted clip
SENSORS = {"spike": ".dat", "dvs": ".h5"}
# Frame rate assumed for a video whose container states none (DVS timestamps need one).
FALLBACK_FPS = 30.0


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
    sensor: str = "spike"  # "spike": integrate-and-fire, .dat; "dvs": event camera, .h5
    dvs_preset: str = "clean"  # with sensor "dvs": a name of spikesim.DVS_PRESETS

    def __post_init__(self) -> None:
        if self.sensor not in SENSORS:
            raise SpikesimError(
                f"sensor {self.sensor!r} is unknown; use one of {', '.join(SENSORS)}"
            )
        if self.sensor == "dvs" and self.dvs_preset not in DVS_PRESETS:
            raise SpikesimError(
                f"DVS preset {self.dvs_preset!r} is unknown; use one of {', '.join(DVS_PRESETS)}"
            )
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
        if self.sensor == "spike":  # the only sensor of earlier conversions: left implicit
            del out["sensor"], out["dvs_preset"]
        return out

    @property
    def suffix(self) -> str:
        """The file of one converted clip: ``.dat`` (spikes) or ``.h5`` (events)."""
        return SENSORS[self.sensor]

    def clip_meta(self, clip_seed: int, source: str) -> dict[str, Any]:
        """The sidecar keys that must match for a finished clip to be reused."""
        meta = {
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
        if self.sensor == "dvs":
            # flipud is a .dat row order; threshold, init and noise belong to the spike encoder
            for key in ("flipud", "threshold", "init", "noise"):
                del meta[key]
            meta.update(sensor=self.sensor, dvs_preset=self.dvs_preset)
        return meta


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
    info = probe_video(video)
    interpolator = Interpolator(settings.factor, settings.interp)
    stream = GapStream(interpolator, drop_repeats=settings.drop_repeats)
    times = frame_times(video)  # None when the container has no usable timestamps
    meta = {k: v for k, v in settings.clip_meta(seed, source).items() if k not in _WRITER_KEYS}
    fps = float(info.fps) if info.fps and math.isfinite(info.fps) and info.fps > 0 else None
    meta["source_fps"] = fps
    # Remove an old result first: an interruption must not leave an old file beside a new sidecar.
    dat.unlink(missing_ok=True)
    n_source = 0
    with _sink(dat, settings, seed, meta, fps) as sink:
        for frame in iter_frames(video, size=settings.size):
            stamp = None if times is None or n_source >= len(times) else float(times[n_source])
            chunk = stream.push(frame, stamp)
            if len(chunk):
                sink.write(chunk)
            n_source += 1
        if n_source == 0:
            raise VideoError(f"{video}: no frames could be decoded; the file is empty or corrupt")
        chunk = stream.finish()
        if len(chunk):
            sink.write(chunk)
        sink.update_meta(
            repeat_frames=stream.repeats if stream.drop_repeats else None,
            source_times=_times_summary(times, n_source),
        )
        expected = (n_source - 1) * settings.factor + 1
        if sink.frames != expected:
            raise SpikesimError(
                f"{video}: wrote {sink.frames} frames, expected {expected} "
                f"from {n_source} source frames; this is a bug, please report it"
            )
        frames = sink.frames
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


class _SpikeSink(AtomicOutput):
    """Frames -> integrate-and-fire spikes -> a bit-packed ``.dat`` (fused encode + pack)."""

    def __init__(self, path: Path, settings: ConvertSettings, seed: int, meta: dict) -> None:
        height, width = settings.size
        self._encoder = Encoder(
            height,
            width,
            threshold=settings.threshold,
            init=settings.init,
            noise=settings.noise,
            seed=seed,
        )
        self._flipud = settings.flipud
        meta = {**meta, "encoder": self._encoder.settings()}
        self._writer = DatWriter(
            path, height, width, flipud=self._flipud, meta=meta, overwrite=True
        )
        self._closed = False

    @property
    def frames(self) -> int:
        return self._writer.frames

    def write(self, frames: np.ndarray) -> None:
        self._writer.write_packed(self._encoder.push_packed(frames, flipud=self._flipud))

    def update_meta(self, **values: Any) -> None:
        """Sidecar keys known only at the end (repeat count, timestamps)."""
        self._writer.update_meta(**values)

    def close(self) -> Path:
        self._closed = True
        return self._writer.close()

    def abort(self) -> None:
        self._closed = True
        self._writer.abort()


class _EventSink(AtomicOutput):
    """Frames -> the DVS pixel model -> an event ``.h5`` (v2e's layout) and its sidecar."""

    def __init__(
        self, path: Path, settings: ConvertSettings, seed: int, meta: dict, fps: float | None
    ) -> None:
        height, width = settings.size
        rate = (fps or FALLBACK_FPS) * settings.factor  # frames after interpolation
        self._encoder = DVSEncoder(height, width, fps=rate, preset=settings.dvs_preset, seed=seed)
        meta = {**meta, "encoder": self._encoder.settings(), "fps_assumed": fps is None}
        self._writer = EventWriter(path, height, width, meta=meta)
        self._extra: dict[str, Any] = {}
        self._closed = False

    @property
    def frames(self) -> int:
        return self._encoder.frames_done

    def write(self, frames: np.ndarray) -> None:
        self._writer.append(self._encoder.push(frames))

    def update_meta(self, **values: Any) -> None:
        """Sidecar keys known only at the end (repeat count, timestamps)."""
        self._extra.update(values)

    def close(self) -> Path:
        self._closed = True
        return self._writer.close(meta={"frames": self.frames, **self._extra})

    def abort(self) -> None:
        self._closed = True
        self._writer.abort()


def _sink(
    path: Path, settings: ConvertSettings, seed: int, meta: dict, fps: float | None
) -> _SpikeSink | _EventSink:
    if settings.sensor == "dvs":
        return _EventSink(path, settings, seed, meta, fps)
    return _SpikeSink(path, settings, seed, meta)


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
