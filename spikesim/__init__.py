"""spikesim: ordinary video to spike-camera streams.

Spike arrays are ``(T, H, W)`` bool (time first); images are ``(H, W)`` float32 in [0, 1]
or uint8. See ``docs/conventions.md``.
"""

from __future__ import annotations

from .convert import ConvertSettings, convert_dataset
from .dat import DatFile, DatWriter, pack_frames, read_dat, sidecar_path, unpack_frames, write_dat
from .dataset import ClipRecord, ConvertedDataset, open_dataset
from .datasets import scan_source
from .encode import Encoder, encode
from .errors import DatasetError, DatError, SpikesimError, VideoError
from .h5 import pack_dataset
from .interpolate import Interpolator, available_methods, interpolate, register_method
from .noise import NOISE_PRESETS, NoiseModel, resolve_noise
from .reconstruct import SpikeSource, iter_tfi, iter_tfp, tfi, tfp
from .sizes import check_size, format_size, parse_size
from .synth import CLASS_SPECS, class_names, render_clip, synthesize
from .video import VideoInfo, iter_frames, probe_video
from .writers import FrameWriter, NpyWriter, save_npy

__version__ = "0.1.0"

__all__ = [
    "CLASS_SPECS",
    "NOISE_PRESETS",
    "ClipRecord",
    "ConvertSettings",
    "ConvertedDataset",
    "DatError",
    "DatFile",
    "DatWriter",
    "DatasetError",
    "Encoder",
    "FrameWriter",
    "Interpolator",
    "NoiseModel",
    "NpyWriter",
    "SpikeSource",
    "SpikesimError",
    "VideoError",
    "VideoInfo",
    "__version__",
    "available_methods",
    "check_size",
    "class_names",
    "convert_dataset",
    "encode",
    "format_size",
    "interpolate",
    "iter_frames",
    "iter_tfi",
    "iter_tfp",
    "open_dataset",
    "pack_dataset",
    "pack_frames",
    "parse_size",
    "probe_video",
    "read_dat",
    "register_method",
    "render_clip",
    "resolve_noise",
    "save_npy",
    "scan_source",
    "sidecar_path",
    "synthesize",
    "tfi",
    "tfp",
    "unpack_frames",
    "write_dat",
]
