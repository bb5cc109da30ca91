"""Sound: read a video's sound track or a WAV file, spectrograms, and audio to spikes.

Reading uses PyAV (FFmpeg inside; ``pip install av``), imported on first use so the rest of
spikesim works without it. Samples are float32 in [-1, 1] at ``sample_rate`` Hz; several
channels come as ``(C, N)``, mono as ``(N,)`` (the plain mean of the channels, not FFmpeg's
-3 dB downmix, so a mono file reads back unchanged).

Spectrograms (NumPy): frame ``t`` is centred on sample ``t * hop_length`` of the signal padded
with ``n_fft // 2`` zeros on each side, so a signal of N samples gives ``1 + N // hop_length``
frames (n_fft even). Power ``|X|^2`` of the windowed frame's real DFT, in dB
(``10 log10(power + eps)``) when ``log``. The mel filterbank uses the HTK mel scale
``m = 2595 log10(1 + f / 700)`` with triangles of peak 1 (no area normalisation).

Audio to spikes (`audio_spikes`), on a dB spectrogram (T frames, C channels):

- ``"if"``: each frame becomes an intensity row in [0, 1] by
  ``I = clip((S - (ref - top_db)) / top_db, 0, 1)`` with ``ref`` the clip's loudest value
  (so the encoding does not depend on the recording level), and the integrate-and-fire
  encoder (`spikesim.encode.Encoder`, one "pixel" per channel) turns it into spikes.
- ``"onoff"``: a cochlea-style ON/OFF sensor, the rule of a DVS pixel applied to each
  channel's dB level L: a memorised level B starts at the first frame; at each frame
  ``k = floor(|L - B| / theta)`` events of the sign of ``L - B`` are emitted and B moves by
  ``k * theta`` toward L. Levels are floored at ``ref - top_db`` first, so silence (and the
  numerical dust under it) emits nothing.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .checks import positive_number, real_number, whole_number
from .encode import Encoder
from .errors import AudioError, SpikesimError, VideoError
from .files import temp_file, temp_name

__all__ = [
    "AUDIO_MODES",
    "WINDOWS",
    "AudioError",
    "AudioInfo",
    "audio_spikes",
    "mel_filterbank",
    "mel_spectrogram",
    "mux_sound",
    "n_spectrogram_frames",
    "onoff_events",
    "probe_audio",
    "read_audio",
    "spectrogram_intensity",
    "stft_spectrogram",
    "write_wav",
]

WINDOWS = ("hann", "hamming", "rect")
AUDIO_MODES = ("if", "onoff")
_EPS = 1e-10  # power floor for the dB scale: -100 dB, far below 16-bit quantisation noise


@dataclass(frozen=True)
class AudioInfo:
    """What the container says about a file's first sound track.

    ``sample_rate`` (Hz), ``channels`` and ``duration`` (seconds) are 0 when ``has_audio`` is
    False. ``duration`` is the track's own when the container records it (MP4, WAV), else the
    container's (Matroska: that of its longest stream), 0.0 when neither is known; decode
    with `read_audio` for the exact length. ``codec`` is FFmpeg's decoder name ("" when none).
    """

    path: Path
    has_audio: bool
    sample_rate: int
    channels: int
    duration: float
    codec: str


# ---------------------------------------------------------------------------------------------
# Reading and writing


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise SpikesimError(
            "reading sound needs PyAV; install it with `pip install av` (or spikesim[audio])"
        ) from None
    return av


def _open(path: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Open ``path`` with PyAV; AudioError (one line) if it is missing or not a media file."""
    p = Path(path)
    if not p.is_file():
        what = "is not a file" if p.exists() else "no such file"
        raise AudioError(f"{p}: {what}; give the path of a video or WAV file")
    av = _av()
    try:
        # "replace": UCF101's AVIs carry metadata that is not valid UTF-8
        return p, av.open(str(p), metadata_errors="replace")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise AudioError(
            f"{p}: cannot open it as a media file ({type(exc).__name__}); check that it plays"
        ) from None


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Sample rate, channels and duration of the first sound track; decodes nothing.

    A file without sound gives ``has_audio=False`` (no error); a file that cannot be opened
    raises `AudioError`.
    """
    p, container = _open(path)
    with container:
        if not container.streams.audio:
            return AudioInfo(p, False, 0, 0, 0.0, "")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE: microseconds
        else:
            duration = 0.0
        channels = len(ctx.layout.channels) if ctx.layout is not None else 0
        return AudioInfo(p, True, int(ctx.sample_rate or 0), channels, duration, ctx.name)


def read_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int | None = 16000,
    mono: bool = True,
    start: float | None = None,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode the first sound track of a video (any container FFmpeg opens) or a WAV file.

    Returns ``(samples, rate)``: float32 ``(N,)`` when ``mono`` (mean of the channels) or
    ``(C, N)``, in [-1, 1] (resampling overshoot is clipped), at ``sample_rate`` Hz
    (``None`` keeps the file's rate). ``start`` (seconds after the track's first sample) and
    ``duration`` (seconds) cut a window, exact to the sample: ``x[round(start * rate):][:
    round(duration * rate)]`` of the whole track. The track is decoded from its beginning
    (sound decodes fast; container timestamps are not precise enough to seek by). A window
    past the end gives fewer samples; no samples at all is an error.

    Raises `AudioError` (a `VideoError`) if the file has no sound track, cannot be opened or
    its sound cannot be decoded; `SpikesimError` for bad arguments.
    """
    rate = _check_rate(sample_rate, allow_none=True)
    start = _check_seconds("start", start, positive=False)
    duration = _check_seconds("duration", duration, positive=True)
    p, container = _open(path)
    av = _av()
    with container:
        if not container.streams.audio:
            raise AudioError(f"{p}: has no sound track; use a video with audio, or a WAV file")
        stream = container.streams.audio[0]
        rate = rate or int(stream.codec_context.sample_rate)
        # planar float at the target rate, same channels: mono is our own mean below
        resampler = av.AudioResampler(format="fltp", layout=None, rate=rate)
        # Samples are counted from the first one decoded, not placed by container timestamps,
        # which some containers (Matroska) round to 1 ms: a window is exact to the sample.
        window = _Window(
            0 if start is None else round(start * rate),
            None if duration is None else round(duration * rate),
        )
        try:
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    window.take(out)
                if window.done:
                    break
            else:
                for out in resampler.resample(None):  # the resampler's buffered tail
                    window.take(out)
        except av.FFmpegError as exc:
            raise AudioError(
                f"{p}: its sound track cannot be decoded ({type(exc).__name__}); "
                "the file may be damaged"
            ) from None
    chunks = window.chunks
    if not chunks:
        where = "" if start is None else f" after {start:g} s"
        raise AudioError(f"{p}: the sound track holds no samples{where}; check start/duration")
    samples = np.concatenate(chunks, axis=1)
    np.clip(samples, -1.0, 1.0, out=samples)
    if mono:
        samples = samples.mean(axis=0, dtype=np.float64).astype(np.float32)
    return samples, rate


def _frames(container: Any, stream: Any):
    """Decoded audio frames, the decoder flushed at the end."""
    for packet in container.demux(stream):
        yield from packet.decode()


class _Window:
    """Collects the resampled samples whose indices (from 0, the first decoded sample) lie in
    [first, first + length); ``length=None``: to the end."""

    def __init__(self, first: int, length: int | None) -> None:
        self.first, self.length = first, length
        self.cursor = 0  # index of the next sample
        self.chunks: list[np.ndarray] = []

    @property
    def done(self) -> bool:
        return self.length is not None and self.cursor >= self.first + self.length

    def take(self, out: Any) -> None:
        data = out.to_ndarray().astype(np.float32, copy=False)  # fltp: (C, n)
        lo = max(self.first - self.cursor, 0)
        hi = data.shape[1]
        if self.length is not None:
            hi = min(self.first + self.length - self.cursor, hi)
        if hi > lo:
            self.chunks.append(data[:, lo:hi])
        self.cursor += data.shape[1]


def write_wav(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    overwrite: bool = False,
) -> Path:
    """Write 16-bit PCM WAV atomically; returns the path.

    ``samples``: float ``(N,)`` or ``(C, N)`` in [-1, 1] (clipped, then rounded to
    ``round(x * 32767)``). Raises `AudioError` if ``path`` exists and not ``overwrite``.
    """
    rate = _check_rate(sample_rate)
    x = _check_wave(samples, "samples", allow_channels=True)
    p = Path(path)
    if p.exists() and not overwrite:
        raise AudioError(f"{p} exists; choose another path or pass overwrite=True")
    if not p.parent.is_dir():
        raise AudioError(f"{p.parent}: no such folder; create it first")
    x2 = x[None] if x.ndim == 1 else x
    pcm = np.round(np.clip(x2, -1.0, 1.0) * 32767.0).astype("<i2")
    fd, tmp = temp_file(p)
    try:
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as wav:
            wav.setnchannels(pcm.shape[0])
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(np.ascontiguousarray(pcm.T).tobytes())  # interleaved
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def mux_sound(
    video: str | os.PathLike[str],
    out: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    overwrite: bool = False,
) -> Path:
    """Give a silent video a sound track: copy the video packets of ``video`` unchanged (no
    re-encoding, so the footage is the original's) into ``out`` (Matroska, ``.mkv``) with
    ``samples`` (float ``(N,)`` or ``(C, N)`` in [-1, 1], clipped) as a 16-bit PCM track at
    ``sample_rate`` Hz, which reads back exactly. Written atomically; returns ``out``.

    For clips that were recorded without sound (the shared UCF101 clips): the sound path of
    an audio-visual pipeline can then start from a real container. Raises `AudioError` if
    ``out`` exists and not ``overwrite``, `VideoError` if ``video`` has no video stream.
    """
    rate = _check_rate(sample_rate)
    x = _check_wave(samples, "samples", allow_channels=True)
    x2 = x[None] if x.ndim == 1 else x
    if x2.shape[0] > 2:
        raise AudioError(f"samples have {x2.shape[0]} channels; give mono or stereo")
    p = Path(out)
    if p.suffix.lower() != ".mkv":
        raise AudioError(f"{p}: the output must be .mkv (Matroska keeps any video stream)")
    if p.exists() and not overwrite:
        raise AudioError(f"{p} exists; choose another path or pass overwrite=True")
    if not p.parent.is_dir():
        raise AudioError(f"{p.parent}: no such folder; create it first")
    src, inp = _open(video)
    av = _av()
    layout = "stereo" if x2.shape[0] == 2 else "mono"
    pcm = np.round(np.clip(x2, -1.0, 1.0) * 32767.0).astype(np.int16)
    interleaved = np.ascontiguousarray(pcm.T).reshape(1, -1)  # packed s16: L R L R ...
    step = 1024  # samples per channel in one audio frame
    tmp = temp_name(p, ".mkv")
    try:
        with inp, av.open(str(tmp), "w", format="matroska") as dst:
            if not inp.streams.video:
                raise VideoError(f"{src}: has no video stream to copy")
            vin = inp.streams.video[0]
            vout = dst.add_stream_from_template(vin)
            aout = dst.add_stream("pcm_s16le", rate=rate, layout=layout)
            for packet in inp.demux(vin):
                if packet.dts is None:  # the demuxer's final empty packet
                    continue
                packet.stream = vout
                dst.mux(packet)
            channels = x2.shape[0]
            for i in range(0, pcm.shape[1], step):
                chunk = interleaved[:, i * channels : (i + step) * channels]
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chunk), format="s16", layout=layout
                )
                frame.sample_rate = rate
                frame.pts = i
                for packet in aout.encode(frame):
                    dst.mux(packet)
            for packet in aout.encode(None):
                dst.mux(packet)
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _check_wave(x: Any, name: str, *, allow_channels: bool = False) -> np.ndarray:
    """A finite real float array (N,) (or (C, N) when allowed), as float64."""
    if not isinstance(x, np.ndarray):
        raise SpikesimError(f"{name} must be a numpy array, got {type(x).__name__}")
    dims = (1, 2) if allow_channels else (1,)
    if x.ndim not in dims or x.shape[-1] == 0:
        want = "(N,) or (C, N)" if allow_channels else "(N,) mono"
        raise SpikesimError(f"{name} must be a non-empty {want} array, got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise SpikesimError(f"{name} must be a real float array, got {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise SpikesimError(f"{name} holds NaN or infinite values; clean the signal first")
    return x


# ---------------------------------------------------------------------------------------------
# Spectrograms


def n_spectrogram_frames(n_samples: int, hop_length: int) -> int:
    """Frames of a spectrogram of ``n_samples`` samples: ``1 + n_samples // hop_length``."""
    return 1 + int(n_samples) // int(hop_length)


def _window(name: str, n: int) -> np.ndarray:
    """Periodic window of length n (the DFT-even form used for spectral analysis)."""
    k = np.arange(n)
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2 * np.pi * k / n)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(2 * np.pi * k / n)
    if name == "rect":
        return np.ones(n)
    raise SpikesimError(f"window must be one of {', '.join(WINDOWS)}, got {name!r}")


def _power(x: Any, n_fft: Any, hop_length: Any, window: str) -> np.ndarray:
    """Power spectrogram (T, n_fft // 2 + 1) float64 of a validated mono signal."""
    sig = _check_wave(x, "x")
    n_fft = whole_number(n_fft, "n_fft", minimum=16)
    if n_fft % 2:
        raise SpikesimError(f"n_fft must be even, got {n_fft}")
    hop = whole_number(hop_length, "hop_length", minimum=1)
    win = _window(window, n_fft)
    half = n_fft // 2
    padded = np.concatenate([np.zeros(half), sig, np.zeros(half)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spec = np.fft.rfft(frames * win, axis=1)
    return spec.real**2 + spec.imag**2


def _to_db(power: np.ndarray, log: bool, eps: float) -> np.ndarray:
    positive_number(eps, "eps")
    if log:
        power = 10.0 * np.log10(power + eps)
    return power.astype(np.float32)


def stft_spectrogram(
    x: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    window: str = "hann",
    log: bool = True,
    eps: float = _EPS,
) -> np.ndarray:
    """Short-time power spectrum of a mono signal: float32 (T, n_fft // 2 + 1).

    ``x``: (N,) float samples at ``sample_rate`` Hz. Frame t is centred on sample
    ``t * hop_length`` (zero padding of n_fft // 2 each side), T = ``1 + N // hop_length``;
    bin k is frequency ``k * sample_rate / n_fft`` Hz. Values are ``|DFT(window * frame)|^2``,
    in dB (``10 log10(power + eps)``) when ``log``. ``window``: "hann", "hamming" or "rect"
    (periodic). Defaults at 16 kHz: 32 ms frames every 10 ms.
    """
    _check_rate(sample_rate)
    return _to_db(_power(x, n_fft, hop_length, window), log, eps)


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int = 64,
    *,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:
    """HTK-scale triangular mel filters: float32 (n_mels, n_fft // 2 + 1).

    Band j rises linearly from mel point j to 1 at point j + 1 and falls to 0 at point j + 2,
    the n_mels + 2 points equally spaced in mel (HTK: 2595 log10(1 + f / 700)) from ``fmin``
    to ``fmax`` Hz (default sample_rate / 2). Peak 1, no area normalisation. Raises if a band
    holds no FFT bin (use fewer mels or a larger n_fft).
    """
    rate = _check_rate(sample_rate)
    n_fft = whole_number(n_fft, "n_fft", minimum=16)
    n_mels = whole_number(n_mels, "n_mels", minimum=1)
    fmax = rate / 2 if fmax is None else fmax
    fmin, fmax = real_number(fmin, "fmin"), real_number(fmax, "fmax")
    if not 0 <= fmin < fmax <= rate / 2:
        raise SpikesimError(
            f"need 0 <= fmin < fmax <= sample_rate / 2 = {rate / 2:g} Hz, got {fmin:g}, {fmax:g}"
        )
    freqs = np.arange(n_fft // 2 + 1) * (rate / n_fft)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lo) / (mid - lo)
    falling = (hi - freqs) / (hi - mid)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(fb.max(axis=1) <= 0)
    if empty.size:
        raise SpikesimError(
            f"mel bands {empty.tolist()[:5]} hold no FFT bin at n_fft={n_fft}; "
            "use fewer n_mels, a larger n_fft or a higher fmin"
        )
    return fb.astype(np.float32)


def mel_spectrogram(
    x: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 512,
    hop_length: int = 160,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
    window: str = "hann",
    log: bool = True,
    eps: float = _EPS,
) -> np.ndarray:
    """Mel power spectrogram of a mono signal: float32 (T, n_mels), dB when ``log``.

    The `stft_spectrogram` power (same framing, T = ``1 + N // hop_length``) times the
    `mel_filterbank` transposed: band j sums the power of its triangle's bins.
    """
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin=fmin, fmax=fmax)
    return _to_db(_power(x, n_fft, hop_length, window) @ fb.T.astype(np.float64), log, eps)


# ---------------------------------------------------------------------------------------------
# Audio to spikes


def _check_spec(spec: Any) -> np.ndarray:
    if not isinstance(spec, np.ndarray) or spec.ndim != 2 or 0 in spec.shape:
        shape = getattr(spec, "shape", None)
        raise SpikesimError(f"spec must be a non-empty (T, C) array, got shape {shape}")
    if spec.dtype.kind != "f":
        raise SpikesimError(f"spec must be a float dB spectrogram, got {spec.dtype}")
    if not np.isfinite(spec).all():
        raise SpikesimError("spec holds NaN or infinite values; compute it with log=True")
    return spec.astype(np.float64)


def spectrogram_intensity(spec: np.ndarray, *, top_db: float = 80.0) -> np.ndarray:
    """dB spectrogram (T, C) -> float32 intensities in [0, 1]: the clip's loudest value is 1,
    ``top_db`` below it and anything quieter is 0, linear in dB in between."""
    s = _check_spec(spec)
    top = positive_number(top_db, "top_db")
    ref = s.max()
    return np.clip((s - (ref - top)) / top, 0.0, 1.0).astype(np.float32)


def onoff_events(spec: np.ndarray, *, theta: float = 3.0, top_db: float = 80.0) -> np.ndarray:
    """Cochlea-style ON/OFF events of a dB spectrogram: uint8 counts (T, 2, C), [:, 0] ON and
    [:, 1] OFF.

    Per channel, the DVS pixel rule on the level L (dB, floored at the clip's maximum minus
    ``top_db``): B = L[0]; at frame t, k = floor(|L[t] - B| / theta) events of the sign of
    L[t] - B, then B += sign * k * theta. Frame 0 emits nothing. Counts above 255 saturate.
    """
    s = _check_spec(spec)
    theta = positive_number(theta, "theta")
    top = positive_number(top_db, "top_db")
    level = np.maximum(s, s.max() - top)
    t, c = level.shape
    out = np.zeros((t, 2, c), np.uint8)
    memory = level[0].copy()
    for i in range(1, t):
        diff = level[i] - memory
        k = np.floor(np.abs(diff) / theta)
        memory += np.sign(diff) * k * theta
        k = np.minimum(k, 255).astype(np.uint8)
        out[i, 0] = np.where(diff > 0, k, 0)
        out[i, 1] = np.where(diff < 0, k, 0)
    return out


def audio_spikes(
    spec: np.ndarray,
    *,
    mode: str = "if",
    threshold: float = 2.0,
    theta: float = 3.0,
    top_db: float = 80.0,
    steps_per_frame: int = 1,
    init: str = "random",
    seed: int = 0,
) -> np.ndarray:
    """Spikes of a dB spectrogram (T, C) (from `stft_spectrogram` / `mel_spectrogram`).

    ``mode="if"``: bool (T * steps_per_frame, C): `spectrogram_intensity` (``top_db``) fed to
    the integrate-and-fire `Encoder` (``threshold``, ``init``, ``seed``; one pixel per
    channel), each frame held for ``steps_per_frame`` encoder steps. A channel at full
    intensity fires every ``threshold`` steps.

    ``mode="onoff"``: uint8 counts (T, 2, C) from `onoff_events` (``theta`` dB, ``top_db``).
    """
    if mode == "onoff":
        return onoff_events(spec, theta=theta, top_db=top_db)
    if mode != "if":
        raise SpikesimError(f"mode must be one of {', '.join(AUDIO_MODES)}, got {mode!r}")
    steps = whole_number(steps_per_frame, "steps_per_frame", minimum=1)
    intensity = spectrogram_intensity(spec, top_db=top_db)
    if steps > 1:
        intensity = np.repeat(intensity, steps, axis=0)
    encoder = Encoder(1, intensity.shape[1], threshold=threshold, init=init, seed=seed)
    return encoder.push(intensity[:, None, :])[:, 0, :]


def _check_seconds(name: str, value: Any, *, positive: bool) -> float | None:
    """A time in seconds (None passes): >= 0, or > 0 with ``positive``."""
    return None if value is None else real_number(value, name, minimum=0, above=positive)


def _check_rate(sample_rate: Any, *, allow_none: bool = False) -> int | None:
    """A sample rate in Hz (None passes with ``allow_none``)."""
    if sample_rate is None and allow_none:
        return None
    return whole_number(sample_rate, "sample_rate", minimum=1000, maximum=384_000)
