"""spikesim: ordinary video to spike-camera streams.

Spike arrays are ``(T, H, W)`` bool (time first); images are ``(H, W)`` float32 in [0, 1]
or uint8. See ``docs/conventions.md``.
"""

from __future__ import annotations

from .dat import DatFile, DatWriter, pack_frames, read_dat, sidecar_path, unpack_frames, write_dat
from .errors import DatasetError, DatError, SpikesimError, VideoError
from .interpolate import Interpolator, available_methods, interpolate, register_method
from .reconstruct import SpikeSource, iter_tfi, iter_tfp, tfi, tfp
from .sizes import check_size, format_size, parse_size
from .synth import CLASS_SPECS, class_names, render_clip, synthesize
from .video import VideoInfo, iter_frames, probe_video
from .writers import FrameWriter, NpyWriter, save_npy

__version__ = "0.1.0"

__all__ = [
    "CLASS_SPECS",
    "DatError",
    "DatFile",
    "DatWriter",
    "DatasetError",
    "FrameWriter",
    "Interpolator",
    "NpyWriter",
    "SpikeSource",
    "SpikesimError",
    "VideoError",
    "VideoInfo",
    "__version__",
    "available_methods",
    "check_size",
    "class_names",
    "format_size",
    "interpolate",
    "iter_frames",
    "iter_tfi",
    "iter_tfp",
    "pack_frames",
    "parse_size",
    "probe_video",
    "read_dat",
    "register_method",
    "render_clip",
    "save_npy",
    "sidecar_path",
    "synthesize",
    "tfi",
    "tfp",
    "unpack_frames",
    "write_dat",
]
