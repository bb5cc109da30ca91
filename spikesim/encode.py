"""Integrate-and-fire encoding of grayscale frames into spike streams.

Per pixel and per step: V += I; if V >= threshold, emit a spike and V -= threshold (at most
one spike per pixel per step). I is the frame's intensity in [0, 1] (uint8 frames are divided
by 255, in float32), V is float32. The initial V is uniform in [0, threshold) from the seed
(``init="random"``) or 0 (``init="zero"``). With noise (`spikesim.noise`), a step is:
I -> Poisson(I * s) / s (shot noise), + N(0, std^2) (Gaussian), + the pixel's dark current,
clipped at 0; the threshold is the pixel's own.

Streaming: `Encoder.push` keeps V between calls, so pushing frames in chunks of any sizes
gives exactly the bytes of `encode` on all of them at once, noise included.

Random numbers are counter-based: each draw is a hash (SplitMix64 finaliser) of (seed, noise
stream, absolute frame index, pixel index), see `spikesim._kernels.encode`. Hence they depend
on neither chunking nor thread count: the same inputs and seed give the same bytes. The
initial potential, thresholds and dark current are drawn once per `Encoder` the same way
(frame index 0 of their own streams). The noiseless encoder, random initial potential
included, uses only exactly rounded IEEE arithmetic, so its bytes are the same on every
machine; the noise models also call log/exp/cos, whose last bit can differ between maths
libraries.

Speed: the kernels run on all Numba threads; push chunks of a few frames or more (each call
costs some tens of microseconds besides the work).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numba
import numpy as np

from ._kernels import encode as _k
from .checks import check_size, check_unit_range
from .errors import SpikesimError
from .noise import NoiseModel, resolve_noise
from .sensor import PixelSensor

INITS = ("random", "zero")


class Encoder(PixelSensor):
    """Streaming integrate-and-fire encoder for frames of one size.

    height, width: frame size in pixels. threshold: firing threshold in intensity-steps
    (a white pixel fires every ``threshold`` steps). init: "random" or "zero".
    noise: None, a preset name ("none", "gaussian", "sensor") or a `NoiseModel`.
    seed: non-negative integer; fixes the initial potential and every noise draw.

    Not thread-safe: push from one thread at a time.
    """

    def __init__(
        self,
        height: int,
        width: int,
        *,
        threshold: float = 5.0,
        init: str = "random",
        noise: str | NoiseModel | None = None,
        seed: int = 0,
    ) -> None:
        self._init_sensor(height, width, seed, max_side=None)
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise SpikesimError(f"threshold must be a number, got {threshold!r}")
        if not (math.isfinite(threshold) and threshold > 0):
            raise SpikesimError(f"threshold must be a positive finite number, got {threshold}")
        if init not in INITS:
            raise SpikesimError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self._threshold = float(threshold)
        self._init = init
        self._noise = resolve_noise(noise)
        model = self._noise or NoiseModel()
        v0, thr, dark = _k._fixed_pattern(
            np.uint64(self._seed),
            self._height,
            self._width,
            self._threshold,
            init == "random",
            model.threshold_mismatch,
            model.dark_current,
            model.dark_current_spread,
        )
        n = self._height * self._width
        self._v = v0.reshape(n)
        self._v_next = np.empty_like(self._v)  # the kernel writes here; swapped in on success
        self._thr = thr.reshape(n)
        self._dark = dark.reshape(n)
        self._noisy = self._noise is not None and (
            self._noise.has_step_noise or self._noise.dark_current > 0.0
        )
        self._key_gauss = np.uint64(_k._stream_key(np.uint64(self._seed), _k.STREAM_GAUSS))
        self._key_poisson = np.uint64(_k._stream_key(np.uint64(self._seed), _k.STREAM_POISSON))

    # -- read-only settings and state ---------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def init(self) -> str:
        return self._init

    @property
    def noise(self) -> NoiseModel | None:
        """The resolved noise model, None when noiseless."""
        return self._noise

    @property
    def potential(self) -> np.ndarray:
        """Current membrane potential V, float32 (H, W), a copy."""
        return self._v.reshape(self._height, self._width).copy()

    @property
    def thresholds(self) -> np.ndarray:
        """Per-pixel threshold (with mismatch), float32 (H, W), a copy."""
        return self._thr.reshape(self._height, self._width).copy()

    @property
    def dark_current(self) -> np.ndarray:
        """Per-pixel dark current per step, intensity units, float32 (H, W), a copy."""
        return self._dark.reshape(self._height, self._width).copy()

    def settings(self) -> dict[str, Any]:
        """JSON-able settings for the .dat sidecar: encoder, threshold, init, seed, noise."""
        return {
            "encoder": "integrate-and-fire",
            "threshold": self._threshold,
            "init": self._init,
            "seed": self._seed,
            "noise": None if self._noise is None else self._noise.to_dict(),
        }

    def __repr__(self) -> str:
        return (
            f"Encoder({self._height}, {self._width}, threshold={self._threshold}, "
            f"init={self._init!r}, noise={self._noise!r}, seed={self._seed}) "
            f"at frame {self._frames_done}"
        )

    # -- encoding -------------------------------------------------------------------------------

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Encode the next frames: (t, H, W) uint8 or float32/float64 in [0, 1] -> bool (t, H, W).

        On bad input nothing changes: the error is raised before the state is updated.
        """
        data = self._check_frames(frames, float64=False)
        t = data.shape[0]
        out = np.empty((t, self._height * self._width), np.bool_)
        if t:
            self._run(data, out, packed=False, flipud=False)
        return out.reshape(t, self._height, self._width)

    def push_packed(self, frames: np.ndarray, *, flipud: bool = True) -> np.ndarray:
        """Encode and bit-pack in one pass: -> uint8 (t, H*W // 8) in .dat file order.

        Same spikes as `push`, laid out as ``spikesim.dat.pack_frames`` would: pixels row by
        row (rows bottom-up when flipud), byte j holds pixels 8j..8j+7, least significant bit
        first. Ready for ``DatWriter.write_packed``. Needs H*W to be a multiple of 8.
        """
        check_size(self._height, self._width)
        data = self._check_frames(frames, float64=False)
        t = data.shape[0]
        nbytes = self._height * self._width // 8
        if flipud and self._width % 8:
            # A byte would straddle two rows that flipping separates: pack after the fact.
            spikes = self.push(frames)
            flat = spikes[:, ::-1].reshape(t, -1)
            return np.packbits(flat, axis=1, bitorder="little").reshape(t, nbytes)
        out = np.empty((t, nbytes), np.uint8)
        if t:
            self._run(data, out, packed=True, flipud=bool(flipud))
        return out

    def _run(self, data: np.ndarray, out: np.ndarray, *, packed: bool, flipud: bool) -> None:
        model = self._noise or NoiseModel()
        nblocks = self._blocks()
        bad = np.zeros(nblocks, np.bool_)
        noise_args = (
            self._noisy,
            self._key_gauss,
            model.gaussian_std,
            self._key_poisson,
            model.photons_per_unit,
        )
        is_int = data.dtype == np.uint8
        # Blocks are handed out one at a time, so a thread slowed by other work takes fewer.
        with numba.parallel_chunksize(1):
            if packed:
                _k._encode_packed(
                    data, is_int, self._frames_done, self._width, self._v, self._v_next,
                    self._thr, self._dark, *noise_args, flipud, nblocks, out, bad,
                )  # fmt: skip
            else:
                _k._encode(
                    data, is_int, self._frames_done, self._v, self._v_next,
                    self._thr, self._dark, *noise_args, nblocks, out, bad,
                )  # fmt: skip
        if bad.any():
            check_unit_range(data)  # raises with the offending values; state is untouched
        self._v, self._v_next = self._v_next, self._v
        self._frames_done += data.shape[0]


def encode(
    frames: np.ndarray,
    *,
    threshold: float = 5.0,
    init: str = "random",
    noise: str | NoiseModel | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Encode a whole clip: frames (T, H, W) uint8 or float32/float64 in [0, 1] -> bool (T, H, W).

    Same as ``Encoder(H, W, ...).push(frames)``; see `Encoder` for the parameters.
    """
    if not isinstance(frames, np.ndarray) or frames.ndim != 3:
        shape = getattr(frames, "shape", None)
        raise SpikesimError(f"frames must be a 3-D numpy array (T, H, W), got shape {shape}")
    _, height, width = frames.shape
    if height == 0 or width == 0:
        raise SpikesimError(f"frames must have a positive size, got shape {frames.shape}")
    encoder = Encoder(height, width, threshold=threshold, init=init, noise=noise, seed=seed)
    return encoder.push(frames)
