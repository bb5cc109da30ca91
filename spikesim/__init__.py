"""spikesim: ordinary video to spike-camera streams.

Spike arrays are ``(T, H, W)`` bool (time first); images are ``(H, W)`` float32 in [0, 1]
or uint8. See ``docs/conventions.md``.
"""

from __future__ import annotations

from .errors import DatasetError, DatError, SpikesimError, VideoError
from .sizes import check_size, format_size, parse_size

__version__ = "0.1.0"

__all__ = [
    "DatError",
    "DatasetError",
    "SpikesimError",
    "VideoError",
    "__version__",
    "check_size",
    "format_size",
    "parse_size",
]
