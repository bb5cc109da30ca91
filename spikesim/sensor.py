"""What the streaming pixel encoders share (`spikesim.encode.Encoder`, the spike camera, and
`spikesim.dvs.DVSEncoder`, the event camera): the frame size and seed they are built for,
the count of frames pushed so far (the absolute frame index their counter-based random
numbers hash), the check that turns a chunk of frames into the (t, H*W) array the Numba
kernels read, and how a frame is split into pixel blocks for the threads.
"""

from __future__ import annotations

import numba
import numpy as np

from .checks import check_unit_range, whole_number
from .errors import SpikesimError

# Pixels per block: the block's state stays in L1 while the input still streams in runs of
# many kB.
BLOCK_PIXELS = 2048


class PixelSensor:
    """Base of the streaming encoders: ``height`` x ``width`` pixels, ``seed``, and
    ``frames_done``. Subclasses call :meth:`_init_sensor` first and move ``_frames_done``
    on when a push succeeds."""

    _height: int
    _width: int
    _seed: int
    _frames_done: int
    _nblocks: int | None

    def _init_sensor(self, height: int, width: int, seed: int, *, max_side: int | None) -> None:
        self._height = whole_number(height, "height", minimum=1, maximum=max_side)
        self._width = whole_number(width, "width", minimum=1, maximum=max_side)
        self._seed = whole_number(seed, "seed", minimum=0, maximum=2**64 - 1)
        self._frames_done = 0
        self._nblocks = None  # None: from the thread count (tests pin it)

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def frames_done(self) -> int:
        """Frames pushed so far: the absolute index of the next frame."""
        return self._frames_done

    def _blocks(self) -> int:
        """Pixel blocks the kernels hand out to threads one at a time: a multiple of the
        thread count, each about BLOCK_PIXELS pixels."""
        if self._nblocks is not None:
            return self._nblocks
        threads = max(1, numba.get_num_threads())
        n = self._height * self._width
        return threads * max(1, round(n / (threads * BLOCK_PIXELS)))

    def _check_frames(
        self, frames: np.ndarray, *, colour: bool = False, float64: bool = True
    ) -> np.ndarray:
        """Validate a chunk; return it C-contiguous as (t, H*W) uint8, float32 or (when
        ``float64``) float64. Without ``float64``, float64 input is range-checked exactly and
        rounded to float32. ``colour``: (t, H, W, 3|4) uint8 BGR(A) is accepted and turned
        into luma as `spikesim.video` does (BT.601)."""
        if not isinstance(frames, np.ndarray):
            raise SpikesimError(
                f"frames must be a numpy array (t, H, W), got {type(frames).__name__}"
            )
        size = (self._height, self._width)
        if colour and frames.ndim == 4 and frames.shape[1:3] == size and frames.shape[3] in (3, 4):
            if frames.dtype != np.uint8:
                raise SpikesimError(f"colour frames must be uint8 BGR, got {frames.dtype}")
            from .video import to_luma  # late: video imports OpenCV

            luma = np.empty((frames.shape[0], *size), np.float32)
            for i, frame in enumerate(frames):
                luma[i] = to_luma(frame)
            frames = luma
        if frames.ndim != 3:
            hint = "; use frames[None] for a single frame" if frames.ndim == 2 else ""
            what = "(t, H, W) luma or (t, H, W, 3) BGR" if colour else "3-D (t, H, W)"
            raise SpikesimError(f"frames must be {what}, got shape {frames.shape}{hint}")
        if frames.shape[1:] != size:
            raise SpikesimError(
                f"frames are {frames.shape[1]}x{frames.shape[2]} but the encoder is "
                f"{self._height}x{self._width}"
            )
        if frames.dtype not in (np.uint8, np.float32, np.float64):
            raise SpikesimError(
                f"frames must be uint8, float32 or float64, got {frames.dtype}; "
                "convert them to grayscale (luma) first"
            )
        if frames.dtype == np.float64 and not float64:
            check_unit_range(frames)  # exact check before rounding to float32
            frames = frames.astype(np.float32)
        return np.ascontiguousarray(frames).reshape(frames.shape[0], self._height * self._width)
