"""Sound tracks for the synthetic action clips, and the corruptions that make fusion matter.

`render_sound` turns a clip's motion (the per-frame ground truth ``SynthClip.track`` of
`spikesim.synth.render_clip`) into a waveform of exactly ``n_frames / fps`` seconds whose
events follow the motion frame by frame. Each motion has its own sound:

- scale (Grow): a harmonic tone, pitch proportional to the object's size (a rising glide);
- rotate (RotateClockwise): a click every 15 degrees turned (sharp attack, upward chirp),
  each a semitone above the last;
- translate right (MoveRight and its speeds): a harmonic pip every 3 % of the frame width
  travelled, pitch rising with x (3 octaves per frame width), so the tempo follows the speed;
- translate down (MoveDown): an inharmonic 1-4 kHz cluster whose centre falls with the object;
- blink: a two-partial tone gated on and off with the object;
- bounce: a low thump at every floor contact;
- fade (FadeIn): a three-note chord whose amplitude follows the object's contrast;
- orbit (OrbitClockwise): a tone whose pitch climbs an octave per quarter turn, then drops.

A class with ``reverse=True`` (Shrink, MoveLeft, ...) gets exactly the time-reversed sound of its
partner: its track is turned back to the forward motion, rendered, and the waveform reversed.
Nuisances drawn from the seed (base pitch, number of harmonics, level, a faint noise floor)
carry no label, as appearance carries none in the video.

Corruption (`assign_corruption`, `degrade_video_frames`, `degrade_sound`): a third of the
clips keep both modalities, a third get the picture degraded and a third the sound. Both
degradations keep only a time-symmetric summary of the clip (the temporal mean of the frames,
the long-term spectrum of the sound), blurred and buried in noise: a degraded modality says
nothing about the direction of time or the timing of events, so half of the classes (the
time-reversed pairs) cannot be told apart from it, while the other modality still can.
"""

from __future__ import annotations

import numbers
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..audio import read_audio, write_wav
from ..checks import check_shape, is_whole, whole_number
from ..errors import SpikesimError
from .classes import CLASS_SPECS, SynthClip
from .render import render_clip

__all__ = [
    "CORRUPTIONS",
    "TRACK_KEYS",
    "AVClip",
    "assign_corruption",
    "clip_sound",
    "degrade_sound",
    "degrade_video_frames",
    "has_espeak",
    "render_av_clip",
    "render_sound",
    "snr_noise",
    "sound_path",
    "spoken_digit",
    "write_clip_sound",
]

CORRUPTIONS = ("none", "video", "audio")
TRACK_KEYS = ("cx", "cy", "radius", "angle", "visible")
_SPECS = {s.name: s for s in CLASS_SPECS}
_CLICK_DEGREES = 15.0  # rotate: one click per this many degrees turned
_PIP_STEP = 0.03  # translate: one pip per this fraction of the frame width travelled
_DEGRADE_SMOOTH_HZ = 4000.0  # degrade_sound keeps only the spectrum's coarse tilt...
_DEGRADE_SNR_DB = -20.0  # ... 20 dB under white noise
_DEGRADED_RMS = 0.1  # degrade_sound output level, about -20 dB re full scale
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _rng(seed: int, *keys: int) -> np.random.Generator:
    # 0x50D (sound) keeps these draws apart from the video renderer's streams of the same seed
    return np.random.default_rng(np.random.SeedSequence([0x50D, seed, *keys]))


# ---------------------------------------------------------------------------------------------
# Rendering


def render_sound(
    cls: str,
    track: dict[str, np.ndarray],
    *,
    size: tuple[int, int],
    fps: float,
    sample_rate: int = 16000,
    seed: int = 0,
) -> np.ndarray:
    """The sound of one clip: float32 (round(n_frames * sample_rate / fps),), in [-0.61, 0.61]
    (peak 0.35..0.6, drawn from the seed, over a -50 dB noise floor).

    ``cls``: a `spikesim.synth.CLASS_SPECS` name. ``track``: per-frame float arrays (n_frames,)
    ``cx``, ``cy`` (pixels, y down), ``radius`` (pixels), ``angle`` (degrees, clockwise),
    ``visible`` (0..1), as in ``SynthClip.track``. ``size``: the frame's (H, W) in pixels.
    ``fps``: frame rate; frame i covers [i / fps, (i + 1) / fps) s and the motion is sampled
    at frame centres. Same arguments and seed, same samples.
    """
    if cls not in _SPECS:
        raise SpikesimError(f"class {cls!r} is unknown; known: {', '.join(_SPECS)}")
    spec = _SPECS[cls]
    tr = _check_track(track)
    h, w = check_shape(size)
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps <= 1000:
        raise SpikesimError(f"fps must be a positive frame rate, got {fps!r}")
    if not is_whole(sample_rate) or not 8000 <= sample_rate <= 192_000:
        raise SpikesimError(f"sample_rate must be an integer in 8000..192000, got {sample_rate!r}")
    rng = _rng(whole_number(seed, "seed", minimum=0))
    n_frames = len(tr["cx"])
    if spec.reverse:  # render the partner's forward motion, reverse the sound at the end
        tr = {k: v[::-1] for k, v in tr.items()}
    n = round(n_frames * sample_rate / fps)
    wave = _Sound(spec, tr, h, w, float(fps), int(sample_rate), n, rng).render()
    return (wave[::-1] if spec.reverse else wave).astype(np.float32)


def _check_track(track: Any) -> dict[str, np.ndarray]:
    if not isinstance(track, dict) or any(k not in track for k in TRACK_KEYS):
        raise SpikesimError(f"track must be a dict with {', '.join(TRACK_KEYS)} (SynthClip.track)")
    out = {k: np.asarray(track[k], dtype=np.float64) for k in TRACK_KEYS}
    lengths = {v.shape for v in out.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1 or next(iter(lengths))[0] < 2:
        raise SpikesimError(
            f"track arrays must all be (n_frames,) with n_frames >= 2, got {lengths}"
        )
    if not all(np.isfinite(v).all() for v in out.values()):
        raise SpikesimError("track holds NaN or infinite values")
    return out


class _Sound:
    """One forward-motion sound; ``render()`` -> float64 (n,)."""

    def __init__(self, spec, track, h, w, fps, rate, n, rng) -> None:
        self.spec, self.h, self.w, self.fps, self.rate, self.n = spec, h, w, fps, rate, n
        self.track = track
        self.frame_t = (np.arange(len(track["cx"])) + 0.5) / fps  # frame centres, s
        self.t = (np.arange(n) + 0.5) / rate  # sample centres, s (symmetric under reversal)
        # label-free nuisances, drawn in a fixed order whatever the class
        self.f0 = float(np.exp(rng.uniform(np.log(180.0), np.log(360.0))))
        self.harmonics = int(rng.integers(3, 7))
        self.level = float(rng.uniform(0.35, 0.6))
        self.floor = rng.standard_normal(n) * 10 ** (-50 / 20)  # -50 dB re full scale
        self.rng = rng

    # per-sample value of a per-frame quantity
    def at_samples(self, values: np.ndarray) -> np.ndarray:
        return np.interp(self.t, self.frame_t, values)

    def at_frames(self, event_frames: np.ndarray) -> np.ndarray:
        """Fractional frame positions -> times in seconds."""
        return (np.asarray(event_frames, dtype=np.float64) + 0.5) / self.fps

    def tone(self, freq: np.ndarray, partials=None) -> np.ndarray:
        """Harmonic tone of per-sample fundamental ``freq`` (Hz); partials above 0.45 fs are
        dropped (no aliasing). ``partials``: list of (multiple, amplitude)."""
        if partials is None:
            partials = [(k, 1.0 / k) for k in range(1, self.harmonics + 1)]
        phase = 2 * np.pi * np.cumsum(freq) / self.rate
        out = np.zeros(self.n)
        for mult, amp in partials:
            ok = mult * freq < 0.45 * self.rate
            out += np.where(ok, amp * np.sin(mult * phase), 0.0)
        return out

    def grains(self, times: np.ndarray, grain: np.ndarray) -> np.ndarray:
        """Sum of copies of ``grain`` starting at each time (s); cut at the clip's end."""
        out = np.zeros(self.n)
        for t0 in times:
            i = round(t0 * self.rate)
            if 0 <= i < self.n:
                seg = grain[: self.n - i]
                out[i : i + len(seg)] += seg
        return out

    def render(self) -> np.ndarray:
        motion = self.spec.motion
        if motion == "translate":
            motion = "translate_x" if self.spec.direction[0] else "translate_y"
        wave = getattr(self, f"_{motion}")()
        peak = float(np.abs(wave).max())
        wave = wave * (self.level / peak) if peak > 0 else wave
        # 5 ms fades: no click at the cut, the same at both ends so reversal keeps them
        ramp = min(round(0.005 * self.rate), self.n // 2)
        env = np.ones(self.n)
        env[:ramp] = env[self.n - ramp :][::-1] = np.linspace(0.0, 1.0, ramp, endpoint=False)
        return wave * env + self.floor

    # -- one method per motion ---------------------------------------------------------------

    def _scale(self) -> np.ndarray:
        r = self.at_samples(self.track["radius"])
        return self.tone(self.f0 * r / r.min())

    def _rotate(self) -> np.ndarray:
        # monotone: the hand-held jitter of the angle must not click back and forth
        angle = np.maximum.accumulate(_smooth(self.track["angle"]))
        steps = np.floor((angle - angle[0]) / _CLICK_DEGREES)
        clicks = _crossings(steps)
        dur = 0.08
        k = np.arange(round(dur * self.rate)) / self.rate
        env = np.exp(-k / 0.025)  # sharp attack, slow decay: reversed, a swell cut short
        out = np.zeros(self.n)
        for i, t0 in enumerate(self.at_frames(clicks)):
            # each click a semitone above the last and chirping upward: ascends with the turn
            f = self.f0 * 2.0 ** (i / 12) * (1.5 + 1.5 * k / dur)
            out += self.grains([t0], env * np.sin(2 * np.pi * np.cumsum(f) / self.rate))
        return out

    def _translate_x(self) -> np.ndarray:
        x = np.maximum.accumulate(_smooth(self.track["cx"])) / self.w
        steps = np.floor((x - x[0]) / _PIP_STEP)
        pips = _crossings(steps)
        pips = np.concatenate([[0.0], pips])  # a pip at the start tells "moving" from silence
        pitch = self.f0 * 2.0 ** (3.0 * np.interp(pips, np.arange(len(x)), x))
        dur = 0.03
        k = np.arange(round(dur * self.rate)) / self.rate
        env = np.sin(np.pi * k / dur) ** 2
        out = np.zeros(self.n)
        for t0, f in zip(self.at_frames(pips), pitch, strict=True):
            grain = sum(
                np.sin(2 * np.pi * m * f * k) / m for m in range(1, 4) if m * f < 0.45 * self.rate
            )
            out += self.grains([t0], env * grain)
        return out

    def _translate_y(self) -> np.ndarray:
        y = self.at_samples(self.track["cy"]) / self.h
        centre = 1000.0 * 2.0 ** (2.0 * (1.0 - y))  # lower on screen, lower in pitch
        ratios = np.exp(self.rng.uniform(-0.25, 0.25, 12))
        out = np.zeros(self.n)
        for r in ratios:
            phase0 = self.rng.uniform(0, 2 * np.pi)
            ok = centre * r < 0.45 * self.rate  # at 8 kHz the top of the band would alias
            out += np.where(ok, np.sin(2 * np.pi * np.cumsum(centre * r) / self.rate + phase0), 0)
        return out

    def _blink(self) -> np.ndarray:
        # nearest frame, not interpolated: the sound switches with the picture
        idx = np.minimum((self.t * self.fps).astype(np.int64), len(self.frame_t) - 1)
        gate = self.track["visible"][idx]
        gate = np.convolve(gate, np.hanning(round(0.004 * self.rate) + 2)[1:-1], mode="same")
        gate /= max(gate.max(), 1e-9)
        return gate * self.tone(np.full(self.n, 2 * self.f0), [(1, 1.0), (3, 0.5)])

    def _bounce(self) -> np.ndarray:
        cy = _smooth(self.track["cy"])
        lo, hi = cy.min(), cy.max()
        low = cy >= hi - 0.3 * (hi - lo)  # near the floor (y down: large cy)
        contacts = []
        for start, stop in _runs(low):
            contacts.append(start + int(np.argmax(cy[start:stop])))
        dur = 0.12
        k = np.arange(round(dur * self.rate)) / self.rate
        f = 150.0 * np.exp(-k / 0.05) + 60.0  # falling pitch: a drum-like thump
        grain = np.sin(2 * np.pi * np.cumsum(f) / self.rate) * np.exp(-k / 0.03)
        return self.grains(self.at_frames(np.array(contacts)), grain)

    def _fade(self) -> np.ndarray:
        amp = self.at_samples(self.track["visible"])
        return amp * self.tone(np.full(self.n, self.f0), [(1, 1.0), (1.25, 0.8), (1.5, 0.7)])

    def _orbit(self) -> np.ndarray:
        phi = _orbit_phase(self.track["cx"], self.track["cy"])
        quarter = np.mod((phi - phi[0]) / (np.pi / 2), 1.0)
        return self.tone(self.f0 * 2.0 ** self.at_samples_wrapped(quarter))

    def at_samples_wrapped(self, frac: np.ndarray) -> np.ndarray:
        """Per-sample value of a per-frame sawtooth in [0, 1): interpolated without the
        spurious ramp down between the last frame of a tooth and the first of the next."""
        unwrapped = frac + np.concatenate([[0.0], np.cumsum(np.diff(frac) < -0.5)])
        return np.mod(self.at_samples(unwrapped), 1.0)


def _smooth(v: np.ndarray) -> np.ndarray:
    """3-frame moving average with edge copies (takes the edge off the hand-held jitter)."""
    padded = np.concatenate([v[:1], v, v[-1:]])
    return np.convolve(padded, np.ones(3) / 3.0, mode="valid")


def _crossings(steps: np.ndarray) -> np.ndarray:
    """Fractional frame positions where a staircase ``steps`` (per frame) goes up a step."""
    idx = np.flatnonzero(np.diff(steps) > 0)
    return idx + 0.5


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _orbit_phase(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Unwrapped angle (rad, clockwise on screen) of each point about the circle fitted to
    all of them (algebraic least-squares fit: x^2 + y^2 + D x + E y + F = 0)."""
    a = np.stack([cx, cy, np.ones_like(cx)], axis=1)
    d, e, _ = np.linalg.lstsq(a, -(cx**2 + cy**2), rcond=None)[0]
    return np.unwrap(np.arctan2(cy + e / 2, cx + d / 2))


def clip_sound(
    clip: SynthClip, *, fps: float, sample_rate: int = 16000, seed: int = 0
) -> np.ndarray:
    """`render_sound` for a rendered ``SynthClip``, seeded by (seed, class, group, clip) so
    that every clip of a dataset has its own nuisances: float32 (n_samples,)."""
    h, w = clip.frames.shape[1:3]
    idx = list(_SPECS).index(clip.cls)
    key = int(
        np.random.SeedSequence(
            [whole_number(seed, "seed", minimum=0), idx, clip.group, clip.clip]
        ).generate_state(1)[0]
    )
    return render_sound(
        clip.cls, clip.track, size=(h, w), fps=fps, sample_rate=sample_rate, seed=key
    )


@dataclass(frozen=True)
class AVClip:
    """A synthetic clip with its sound, after its corruption: ``frames`` uint8 (T, H, W, 3) RGB
    (degraded when ``corruption == "video"``), ``sound`` float32 (N,) at ``sample_rate`` Hz
    (degraded when ``"audio"``), and ``clip``, the clean `SynthClip` (caption, track)."""

    clip: SynthClip
    frames: np.ndarray
    sound: np.ndarray
    sample_rate: int
    corruption: str


def render_av_clip(
    cls: str,
    index: int,
    *,
    corruption: str = "none",
    size: tuple[int, int] = (120, 160),
    frames: int = 32,
    fps: float = 25.0,
    style: str = "sim",
    seed: int = 0,
    sample_rate: int = 16000,
) -> AVClip:
    """Clip ``index`` of ``cls`` as `spikesim.synth.render_clip` draws it, its sound
    (`clip_sound`), and the ``corruption`` ("none", "video" or "audio", see
    `assign_corruption`) applied with a generator seeded by (seed, class, group, clip)."""
    if corruption not in CORRUPTIONS:
        raise SpikesimError(
            f"corruption must be one of {', '.join(CORRUPTIONS)}, got {corruption!r}"
        )
    clip = render_clip(cls, index, size=size, frames=frames, style=style, seed=seed)
    sound = clip_sound(clip, fps=fps, sample_rate=sample_rate, seed=seed)
    rng = _rng(seed, 4, list(_SPECS).index(cls), clip.group, clip.clip)
    picture = clip.frames
    if corruption == "video":
        picture = degrade_video_frames(picture, rng)
    elif corruption == "audio":
        sound = degrade_sound(sound, rng, sample_rate=sample_rate)
    return AVClip(clip, picture, sound, int(sample_rate), corruption)


# ---------------------------------------------------------------------------------------------
# Files beside the videos


def sound_path(video_path: str | os.PathLike[str]) -> Path:
    """Where a clip's sound goes: ``<folder>/<stem>.wav`` beside the video."""
    return Path(video_path).with_suffix(".wav")


def write_clip_sound(
    video_path: str | os.PathLike[str],
    wave: np.ndarray,
    sample_rate: int = 16000,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``wave`` (float (N,) in [-1, 1]) as 16-bit WAV beside ``video_path`` (atomic);
    returns the WAV's path, for ``captions.jsonl``'s ``"audio"`` entry."""
    return write_wav(sound_path(video_path), wave, sample_rate, overwrite=overwrite)


# ---------------------------------------------------------------------------------------------
# Corruption


def assign_corruption(n_clips: int, seed: int) -> np.ndarray:
    """Which modality each of ``n_clips`` clips loses: str array of "none", "video", "audio",
    each a third of the clips (counts differ by at most one), in an order drawn from ``seed``.
    Call it per class and split (different seeds) to balance the shares within each."""
    if not is_whole(n_clips) or n_clips < 0:
        raise SpikesimError(f"n_clips must be a non-negative integer, got {n_clips!r}")
    rng = _rng(whole_number(seed, "seed", minimum=0), 1)
    start = int(rng.integers(3))  # which share gets the extra clip is random too
    labels = np.array(CORRUPTIONS)[(np.arange(n_clips) + start) % 3]
    return labels[rng.permutation(n_clips)]


def degrade_video_frames(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clip whose picture no longer tells its class: same shape and dtype as ``frames``.

    ``frames``: uint8 (T, H, W) or (T, H, W, 3), or float in [0, 1]. Every output frame is the
    clip's temporal mean (so the direction and timing of the motion are gone), blurred with a
    Gaussian of sigma 0.12 x the shorter side, with two random grey occluders covering about
    half of the picture and independent Gaussian noise of std 0.15 in every frame. The output
    depends on the frames only through their mean: a clip and its time reversal degrade to the
    same frames (up to rounding) for the same ``rng`` state.
    """
    if not isinstance(frames, np.ndarray) or frames.ndim not in (3, 4) or 0 in frames.shape:
        raise SpikesimError(
            f"frames must be (T, H, W) or (T, H, W, 3), got {getattr(frames, 'shape', None)}"
        )
    if not isinstance(rng, np.random.Generator):
        raise SpikesimError("rng must be a numpy.random.Generator (np.random.default_rng(seed))")
    is_u8 = frames.dtype == np.uint8
    if not is_u8 and frames.dtype.kind != "f":
        raise SpikesimError(f"frames must be uint8 or float in [0, 1], got {frames.dtype}")
    t, h, w = frames.shape[:3]
    scale = 255.0 if is_u8 else 1.0
    mean = frames.mean(axis=0, dtype=np.float64) / scale
    sigma = 0.12 * min(h, w)
    blurred = cv2.GaussianBlur(
        mean.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REFLECT
    )
    out = np.repeat(blurred[None], t, axis=0)
    for _ in range(2):
        oh, ow = int(rng.uniform(0.45, 0.7) * h), int(rng.uniform(0.45, 0.7) * w)
        y0, x0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
        out[:, y0 : y0 + oh, x0 : x0 + ow] = rng.uniform(0.2, 0.8)
    out += rng.normal(0.0, 0.15, out.shape).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    if is_u8:
        return (out * 255.0 + 0.5).astype(np.uint8)
    return out.astype(frames.dtype)


def degrade_sound(
    wave: np.ndarray, rng: np.random.Generator, *, sample_rate: int = 16000
) -> np.ndarray:
    """A sound that no longer tells its class: float32, same length, RMS 0.1 (fixed).

    The clip's long-term magnitude spectrum, smoothed over 4 kHz (only its coarse tilt is
    left), is given random phases (stationary noise: the timing and order of the events are
    gone) and buried 20 dB under white noise. The output level is fixed because loudness
    differs between motions. The spectrum of a signal and of its time reversal are equal, so
    both degrade to the same sound (up to rounding) for the same ``rng`` state.
    ``sample_rate``: Hz, to size the smoothing.
    """
    if (
        not isinstance(wave, np.ndarray)
        or wave.ndim != 1
        or wave.size < 2
        or wave.dtype.kind != "f"
    ):
        raise SpikesimError(
            f"wave must be a float (N,) array with N >= 2, got {getattr(wave, 'shape', None)}"
        )
    if not isinstance(rng, np.random.Generator):
        raise SpikesimError("rng must be a numpy.random.Generator (np.random.default_rng(seed))")
    x = wave.astype(np.float64)
    n = x.size
    mag = np.abs(np.fft.rfft(x))
    width = max(1, round(_DEGRADE_SMOOTH_HZ * n / sample_rate))
    kernel = np.ones(width) / width
    mag = np.convolve(np.pad(mag, width // 2, mode="edge"), kernel, mode="valid")[: mag.size]
    shaped = np.fft.irfft(mag * np.exp(1j * rng.uniform(0, 2 * np.pi, mag.size)), n)
    shaped /= max(float(np.sqrt(np.mean(shaped**2))), 1e-12)
    out = shaped + rng.normal(0.0, 10 ** (-_DEGRADE_SNR_DB / 20), n)
    # a fixed level: the clip's loudness (which differs between motions) must not leak
    out *= _DEGRADED_RMS / float(np.sqrt(np.mean(out**2)))
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def snr_noise(wave: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """``wave`` plus Gaussian white noise at ``snr_db`` dB signal-to-noise ratio (power of the
    whole wave over the noise's variance): float32, same shape, not clipped."""
    if not isinstance(wave, np.ndarray) or wave.size == 0 or wave.dtype.kind != "f":
        raise SpikesimError("wave must be a non-empty float array")
    if isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real) or not np.isfinite(snr_db):
        raise SpikesimError(f"snr_db must be a finite number of dB, got {snr_db!r}")
    x = wave.astype(np.float64)
    power = float(np.mean(x**2))
    std = np.sqrt(power / 10 ** (snr_db / 10))
    noise = _rng(whole_number(seed, "seed", minimum=0), 2).normal(0.0, 1.0, x.shape) * std
    return (x + noise).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Spoken digits (optional: espeak-ng, GPL, called as an external program)


def has_espeak() -> bool:
    """True if the ``espeak-ng`` program is on PATH."""
    return shutil.which("espeak-ng") is not None


def spoken_digit(d: int, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """The English word for digit ``d`` spoken by espeak-ng: float32 (N,) at ``sample_rate``.

    ``seed`` draws the speaking rate (140..200 words per minute) and pitch (30..70), so that a
    digits set has varied voices. Needs ``espeak-ng`` on PATH (not a Python dependency).
    """
    if not is_whole(d) or not 0 <= d <= 9:
        raise SpikesimError(f"d must be a digit 0..9, got {d!r}")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpikesimError(
            "spoken digits need the espeak-ng program; install it (apt install espeak-ng)"
        )
    rng = _rng(whole_number(seed, "seed", minimum=0), 3, int(d))
    speed, pitch = int(rng.integers(140, 201)), int(rng.integers(30, 71))
    with tempfile.TemporaryDirectory(prefix="spikesim-espeak-") as tmp:
        wav = Path(tmp) / "digit.wav"
        cmd = [exe, "-v", "en", "-s", str(speed), "-p", str(pitch), "-w", str(wav), _DIGITS[d]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0 or not wav.is_file():
            msg = (done.stderr or "").strip().splitlines()[:1]
            raise SpikesimError(
                f"espeak-ng failed ({done.returncode}): {' '.join(msg) or 'no output'}"
            )
        samples, _ = read_audio(wav, sample_rate=sample_rate)
    return samples
