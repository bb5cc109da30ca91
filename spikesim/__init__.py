"""spikesim: ordinary video to spike-camera streams.

Spike arrays are ``(T, H, W)`` bool (time first); images are ``(H, W)`` float32 in [0, 1]
or uint8. See ``docs/conventions.md``.
"""

from __future__ import annotations

from ._version import __version__
from .audio import (
    AudioInfo,
    audio_spikes,
    mel_filterbank,
    mel_spectrogram,
    mux_sound,
    onoff_events,
    probe_audio,
    read_audio,
    stft_spectrogram,
    write_wav,
)
from .checks import check_memory, check_size, format_size, parse_size
from .convert import ConvertSettings, convert_dataset, merge_shards, parse_shard
from .converted import ClipRecord, ConvertedDataset, open_dataset, pack_dataset
from .converted.layout import write_spikecv_view
from .converted.tonic import FrameView
from .dat import DatFile, DatWriter, pack_frames, read_dat, unpack_frames, write_dat
from .dvs import DVS_PRESETS, EVENT_DTYPE, DVSEncoder, DVSModel, dvs, resolve_dvs
from .encode import Encoder, encode
from .errors import AudioError, DatasetError, DatError, EventsError, SpikesimError, VideoError
from .events import (
    EventFile,
    EventWriter,
    event_count_frames,
    event_grey_frame,
    event_time_bins,
    read_events,
    write_events,
)
from .executors import EXECUTORS, check_executor
from .files import AtomicOutput, read_text, temp_name, write_atomic, write_json
from .glyphs import (
    GLYPH_CLASSES,
    GLYPH_TEMPLATES,
    GlyphSample,
    GlyphSet,
    GlyphSpec,
    glyph_names,
    glyph_prompts,
    make_glyph_set,
    render_glyph,
    spike_rate_frame,
)
from .interpolate import Interpolator, available_methods, interpolate, register_method
from .noise import NOISE_PRESETS, NoiseModel, resolve_noise
from .pipeline import convert_clip
from .reconstruct import SpikeSource, iter_tfi, iter_tfp, stretch, stretch_top, tfi, tfp
from .repeats import GapStream, RepeatParams, find_repeats, frame_change
from .sidecar import read_sidecar, sidecar_path
from .sources import scan_source
from .splits import ValHoldout, carve_val, clip_group, splits_record
from .stats import SpikeStatistics, compare_statistics, dataset_statistics, pick_spread
from .synth import CLASS_SPECS, class_names, render_clip, synthesize
from .synth.audio import snr_noise, sound_path
from .video import VIDEO_SUFFIXES, VideoInfo, frame_times, iter_frames, probe_video, read_video
from .writers import FrameWriter, NpyWriter, save_npy

__all__ = [
    "CLASS_SPECS",
    "DVS_PRESETS",
    "EVENT_DTYPE",
    "EXECUTORS",
    "GLYPH_CLASSES",
    "GLYPH_TEMPLATES",
    "NOISE_PRESETS",
    "VIDEO_SUFFIXES",
    "AtomicOutput",
    "AudioError",
    "AudioInfo",
    "ClipRecord",
    "ConvertSettings",
    "ConvertedDataset",
    "DVSEncoder",
    "DVSModel",
    "DatError",
    "DatFile",
    "DatWriter",
    "DatasetError",
    "Encoder",
    "EventFile",
    "EventWriter",
    "EventsError",
    "FrameView",
    "FrameWriter",
    "GapStream",
    "GlyphSample",
    "GlyphSet",
    "GlyphSpec",
    "Interpolator",
    "NoiseModel",
    "NpyWriter",
    "RepeatParams",
    "SpikeSource",
    "SpikeStatistics",
    "SpikesimError",
    "ValHoldout",
    "VideoError",
    "VideoInfo",
    "__version__",
    "audio_spikes",
    "available_methods",
    "carve_val",
    "check_executor",
    "check_memory",
    "check_size",
    "class_names",
    "clip_group",
    "compare_statistics",
    "convert_clip",
    "convert_dataset",
    "dataset_statistics",
    "dvs",
    "encode",
    "event_count_frames",
    "event_grey_frame",
    "event_time_bins",
    "find_repeats",
    "format_size",
    "frame_change",
    "frame_times",
    "glyph_names",
    "glyph_prompts",
    "interpolate",
    "iter_frames",
    "iter_tfi",
    "iter_tfp",
    "make_glyph_set",
    "mel_filterbank",
    "mel_spectrogram",
    "merge_shards",
    "mux_sound",
    "onoff_events",
    "open_dataset",
    "pack_dataset",
    "pack_frames",
    "parse_shard",
    "parse_size",
    "pick_spread",
    "probe_audio",
    "probe_video",
    "read_audio",
    "read_dat",
    "read_events",
    "read_sidecar",
    "read_text",
    "read_video",
    "register_method",
    "render_clip",
    "render_glyph",
    "resolve_dvs",
    "resolve_noise",
    "save_npy",
    "scan_source",
    "sidecar_path",
    "snr_noise",
    "sound_path",
    "spike_rate_frame",
    "splits_record",
    "stft_spectrogram",
    "stretch",
    "stretch_top",
    "synthesize",
    "temp_name",
    "tfi",
    "tfp",
    "unpack_frames",
    "write_atomic",
    "write_dat",
    "write_events",
    "write_json",
    "write_spikecv_view",
    "write_wav",
]
