"""spikesim: ordinary video to spike-camera streams.

Spike arrays are ``(T, H, W)`` bool (time first); images are ``(H, W)`` float32 in [0, 1]
or uint8. See ``docs/conventions.md``.
"""

from __future__ import annotations

from .dat import DatFile, DatWriter, pack_frames, read_dat, sidecar_path, unpack_frames, write_dat
from .errors import DatasetError, DatError, SpikesimError, VideoError
from .reconstruct import SpikeSource, iter_tfi, iter_tfp, tfi, tfp
from .sizes import check_size, format_size, parse_size
from .synth import CLASS_SPECS, class_names, render_clip, synthesize
from .writers import FrameWriter, NpyWriter, save_npy

__version__ = "0.1.0"

__all__ = [
    "CLASS_SPECS",
    "DatError",
    "DatFile",
    "DatWriter",
    "DatasetError",
    "FrameWriter",
    "NpyWriter",
    "SpikeSource",
    "SpikesimError",
    "VideoError",
    "__version__",
    "check_size",
    "class_names",
    "format_size",
    "iter_tfi",
    "iter_tfp",
    "pack_frames",
    "parse_size",
    "read_dat",
    "render_clip",
    "save_npy",
    "sidecar_path",
    "synthesize",
    "tfi",
    "tfp",
    "unpack_frames",
    "write_dat",
]
