"""Audio-visual spike data for S-CMRL: ``(vision, audio, label)`` samples.

Any torch ``Dataset`` whose items are ``(vision, audio, label)``: vision spikes (T, Cv, H, W),
audio spikes (T, Ca, M, F) (0/1, any dtype) and an int class, or the in-memory
:class:`AVTensors` (batched by indexing, no DataLoader). Batches are batch-major as a
DataLoader stacks them and are moved to time-major (T, B, ...) for the model.
:func:`vision_to_steps` and :func:`audio_to_steps` bin a spike stream (frames, H, W) and
spectrogram spikes (frames, M) into those per-sample layouts; :func:`intensity_to_steps` and
:func:`clip_vision` put a spike camera's intensity channel before an event camera's events.
:func:`make_synthetic_av`: a seeded synthetic set whose class is carried by a bar's
orientation in the picture and a tone's band in the sound, with a share of samples where one
of the two is degraded to noise, so that only fusion solves the whole set.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

import spikesim

from .errors import SpklipError

# ----------------------------------------------------------------------------- data


class AVTensors(Dataset):
    """An in-memory audio-visual spike set.

    ``vision`` (N, T, Cv, H, W) and ``audio`` (N, T, Ca, M, F) 0/1 (uint8 or bool or float),
    ``labels`` (N,) int64 in [0, len(classes)); ``classes`` names the classes (default
    "class0", ...); ``audio_power`` (N, T, M, F) float32, optional: the clean spectrogram
    power the audio spikes were drawn from (the synthetic set keeps it to redraw the spikes at
    an SNR). ``groups`` (N,) str, optional: a label per sample that is not the class, e.g. the
    corruption ("none", "video", "audio") of a ``spikesim synth --corrupt`` clip, for accuracy
    by group (:func:`spklip.evaluation.av.evaluate_av`)."""

    def __init__(
        self,
        vision: torch.Tensor | np.ndarray,
        audio: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        classes: Sequence[str] | None = None,
        audio_power: np.ndarray | None = None,
        groups: Sequence[str] | None = None,
    ) -> None:
        self.vision = torch.as_tensor(vision)
        self.audio = torch.as_tensor(audio)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        n = len(self.labels)
        if self.vision.ndim != 5 or self.audio.ndim != 5:
            raise SpklipError(
                f"AVTensors: vision {tuple(self.vision.shape)} and audio "
                f"{tuple(self.audio.shape)} must be (N, T, Cv, H, W) and (N, T, Ca, M, F)"
            )
        if (
            len(self.vision) != n
            or len(self.audio) != n
            or self.vision.shape[1] != self.audio.shape[1]
        ):
            raise SpklipError(
                f"AVTensors: {len(self.vision)} vision, {len(self.audio)} audio samples and "
                f"{n} labels, time steps {self.vision.shape[1]} / {self.audio.shape[1]}: "
                "they must match"
            )
        k = int(self.labels.max()) + 1 if n else 0
        self.classes = list(classes) if classes is not None else [f"class{i}" for i in range(k)]
        if n and (int(self.labels.min()) < 0 or k > len(self.classes)):
            raise SpklipError(f"AVTensors: labels must lie in [0, {len(self.classes)})")
        self.audio_power = audio_power
        self.groups = None if groups is None else [str(g) for g in groups]
        if self.groups is not None and len(self.groups) != n:
            raise SpklipError(f"AVTensors: {len(self.groups)} groups for {n} samples")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.vision[i], self.audio[i], int(self.labels[i])

    def subset(self, indices: Sequence[int] | np.ndarray) -> AVTensors:
        """The samples at ``indices``, in that order."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        power = None if self.audio_power is None else self.audio_power[idx.numpy()]
        groups = None if self.groups is None else [self.groups[i] for i in idx.tolist()]
        return AVTensors(
            self.vision[idx], self.audio[idx], self.labels[idx], self.classes, power, groups
        )

    def with_audio(self, audio: torch.Tensor | np.ndarray) -> AVTensors:
        """The same samples with ``audio`` (N, T, Ca, M, F) spikes instead."""
        return AVTensors(
            self.vision, audio, self.labels, self.classes, self.audio_power, self.groups
        )

    @property
    def shapes(self) -> dict[str, Any]:
        """steps, vision_channels, vision_size, audio_channels, audio_size and num_classes of
        the set, as SCMRLConfig fields."""
        return {
            "steps": int(self.vision.shape[1]),
            "vision_channels": int(self.vision.shape[2]),
            "vision_size": tuple(int(s) for s in self.vision.shape[3:]),
            "audio_channels": int(self.audio.shape[2]),
            "audio_size": tuple(int(s) for s in self.audio.shape[3:]),
            "num_classes": len(self.classes),
        }


def split_train_val(
    dataset: AVTensors, val_fraction: float = 0.2, *, seed: int = 0
) -> tuple[AVTensors, AVTensors]:
    """Carve a validation split from ``dataset``, stratified by class and seeded: about
    ``val_fraction`` of each class goes to validation. Returns (train, val)."""
    if not 0 < val_fraction < 1:
        raise SpklipError(f"val_fraction = {val_fraction} must be in (0, 1)")
    rng = np.random.default_rng(seed)
    labels = dataset.labels.numpy()
    val: list[int] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        val += members[: max(1, round(val_fraction * len(members)))].tolist()
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val] = True
    return dataset.subset(np.flatnonzero(~is_val)), dataset.subset(np.flatnonzero(is_val))


def _bar_mask(h: int, w: int, angle: float, cy: float, cx: float, half_length: float) -> np.ndarray:
    """Pixels within 1 pixel of a segment through (cy, cx) at ``angle`` radians: bool (H, W)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = yy - cy, xx - cx
    along = dx * np.cos(angle) + dy * np.sin(angle)
    across = -dx * np.sin(angle) + dy * np.cos(angle)
    return (np.abs(across) <= 1.0) & (np.abs(along) <= half_length)


def _encode_power(power: np.ndarray, rng: np.random.Generator, max_rate: float) -> np.ndarray:
    """Spectrogram power (..., M, F) -> 0/1 spikes uint8: rate = max_rate x the log power mapped
    from [1e-2, 1] to [0, 1] (clipped), one Bernoulli draw per bin."""
    level = np.clip((np.log10(power + 1e-12) + 2.0) / 2.0, 0.0, 1.0)
    return (rng.random(power.shape) < max_rate * level).astype(np.uint8)


def synthetic_audio_at_snr(
    power: np.ndarray, snr_db: float, *, seed: int = 0, max_rate: float = 0.6
) -> np.ndarray:
    """Audio spikes (N, T, 1, M, F) uint8 redrawn from clean spectrogram ``power``
    (N, T, M, F) with Gaussian white noise added at ``snr_db`` dB (signal power / noise power
    over each clip). White Gaussian noise has a flat expected power spectrum and, per STFT
    bin, an exponentially distributed power (chi-square with 2 degrees of freedom), so each bin
    gets noise power sigma^2 * Exp(1) with sigma^2 = mean clip power / 10^(snr/10). Seeded."""
    p = np.asarray(power, dtype=np.float64)
    if p.ndim != 4 or not np.isfinite(snr_db):
        raise SpklipError("synthetic_audio_at_snr: power must be (N, T, M, F) and snr_db finite")
    rng = np.random.default_rng(seed)
    sigma2 = p.mean(axis=(1, 2, 3), keepdims=True) / 10.0 ** (snr_db / 10.0)
    noisy = p + sigma2 * rng.exponential(1.0, size=p.shape)
    return _encode_power(noisy, rng, max_rate)[:, :, None]


def make_synthetic_av(
    n: int,
    *,
    num_classes: int = 4,
    steps: int = 4,
    vision_size: tuple[int, int] = (32, 32),
    audio_size: tuple[int, int] = (16, 16),
    degraded: tuple[float, float] = (1 / 3, 1 / 3),
    bar_rate: float = 0.5,
    background_rate: float = 0.03,
    tone_power: float = 1.0,
    audio_noise_power: float = 0.0,
    seed: int = 0,
) -> AVTensors:
    """A synthetic audio-visual spike set of ``n`` samples, ``num_classes`` balanced classes.

    Vision (N, T, 1, H, W) uint8: class c is a bar at angle c x 180/C degrees, centred at a
    random place and drifting one pixel per step in a random direction; spike probability
    ``bar_rate`` on the bar, ``background_rate`` elsewhere. Audio (N, T, 1, M, F) uint8 (M bands
    x F frames per step): class c is a tone of peak power ``tone_power`` in band (c + 0.5) M / C
    (jittered by one band, Gaussian profile of width one band) sounding over a random span of at
    least half the clip; clean power 1e-2 + tone, spikes by :func:`_encode_power`. Shares
    ``degraded`` = (picture, sound) of the samples have that modality degraded to noise (no bar
    and background 5 x ``background_rate`` / no tone and white noise of the tone's power), the
    rest are clean; the two shares never overlap, so one modality always carries the class.
    ``audio_noise_power`` > 0 adds white noise of that mean power per bin to every sound (a
    noisier recording for a harder set). ``audio_power`` keeps the spectrogram (recording noise
    included) for :func:`synthetic_audio_at_snr`.
    """
    if n < num_classes or num_classes < 2 or steps < 1:
        raise SpklipError("make_synthetic_av: need num_classes >= 2, steps >= 1 and n >= classes")
    if not (0 <= background_rate <= bar_rate <= 1 and tone_power > 0 <= audio_noise_power):
        raise SpklipError(
            "make_synthetic_av: need 0 <= background_rate <= bar_rate <= 1, tone_power > 0"
        )
    if min(degraded) < 0 or sum(degraded) > 1:
        raise SpklipError(f"make_synthetic_av: degraded shares {degraded} must be >= 0, sum <= 1")
    rng = np.random.default_rng(seed)
    h, w = vision_size
    m, f = audio_size
    labels = rng.permutation(np.arange(n) % num_classes)
    kind = np.zeros(n, dtype=np.int64)  # 0 clean, 1 picture degraded, 2 sound degraded
    order = rng.permutation(n)
    n_vis, n_aud = round(degraded[0] * n), round(degraded[1] * n)
    kind[order[:n_vis]] = 1
    kind[order[n_vis : n_vis + n_aud]] = 2
    vision = np.zeros((n, steps, 1, h, w), dtype=np.uint8)
    power = np.full((n, steps, m, f), 1e-2, dtype=np.float64)
    bands = np.arange(m)[:, None]
    for i in range(n):
        c = int(labels[i])
        # picture
        rate = np.full((steps, h, w), background_rate)
        if kind[i] == 1:
            rate[:] = min(1.0, 5 * background_rate)
        else:
            angle = math.pi * c / num_classes
            cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
            vy, vx = rng.choice([-1.0, 0.0, 1.0], size=2)
            for t in range(steps):
                bar = _bar_mask(h, w, angle, cy + vy * t, cx + vx * t, 0.3 * min(h, w))
                rate[t][bar] = bar_rate
        vision[i, :, 0] = rng.random((steps, h, w)) < rate
        # sound
        frames = steps * f
        if kind[i] == 2:
            level = np.mean(np.exp(-0.5 * ((np.arange(m) - m / 2) / 1.0) ** 2)) * 0.75
            power[i] += tone_power * level * rng.exponential(1.0, size=(steps, m, f))
        else:
            centre = (c + 0.5) * m / num_classes + rng.integers(-1, 2)
            profile = np.exp(-0.5 * ((bands - centre) / 1.0) ** 2)  # (M, 1)
            span = rng.integers(frames // 2, frames + 1)
            start = rng.integers(0, frames - span + 1)
            on = np.zeros(frames)
            on[start : start + span] = 1.0
            tone = profile * on[None, :]  # (M, T*F)
            power[i] += tone_power * tone.reshape(m, steps, f).transpose(1, 0, 2)
    if audio_noise_power > 0:
        power += audio_noise_power * rng.exponential(1.0, size=power.shape)
    audio = _encode_power(power, rng, 0.6)[:, :, None]
    classes = [f"angle{round(180 * c / num_classes)}-band{c}" for c in range(num_classes)]
    groups = [("none", "video", "audio")[k] for k in kind]
    return AVTensors(vision, audio, labels, classes, power.astype(np.float32), groups)


def _bin_frames(x: np.ndarray, steps: int, what: str) -> np.ndarray:
    """(frames, ...) -> (steps, frames // steps, ...) over the centred window of whole bins."""
    per = x.shape[0] // steps
    if steps < 1 or per < 1:
        raise SpklipError(f"{what}: {x.shape[0]} frames cannot fill {steps} time steps")
    start = (x.shape[0] - per * steps) // 2
    return x[start : start + per * steps].reshape(steps, per, *x.shape[1:])


VISION_BINNINGS = ("or", "frames", "count", "or-pair", "net")
AUDIO_INPUT_MODES = ("if", "onoff", "if+onoff")  # audio channels Ca: 1, 2, 3
# "data": the converted clips' own frames (spike camera or ON/OFF events); "spikes+dvs": an
# intensity channel from a spike-camera conversion of the same videos, then the DVS events
VISION_INPUTS = ("data", "spikes+dvs")


def vision_to_steps(spikes: np.ndarray, steps: int, binning: str = "or") -> np.ndarray:
    """A spike stream (frames, H, W) (spike camera) or event frames (frames, 2, H, W) (ON/OFF)
    0/1 -> the model's vision input (steps, Cv, H, W) uint8 over the centred
    P x ``steps`` frames (P = frames // steps per step). ``binning``:

    - "or": each step the OR of its P frames (a spike in the bin), Cv = C (1 or 2);
    - "frames": each step keeps its P frames as channels, Cv = P x C, still 0/1 and nothing
      lost (the order of the spikes inside a step stays visible);
    - "count": each step the number of spikes in its P frames (0..P), Cv = C: not 0/1, so the
      first layer reads counts;
    - "or-pair": each step the OR of its P frames followed by the OR of the previous step's
      (zeros before the first step), Cv = 2 x C, 0/1: overlapping windows of two bins, so a
      step shows where an edge was and where it is now (the direction of a motion, which
      one bin of ON/OFF events cannot give when the object's contrast is unknown);
    - "net" (ON/OFF event frames only): each step ON where its P frames hold more ON than OFF
      events and OFF where fewer, Cv = 2, 0/1: the sign of the brightness change over the
      step. A small back-and-forth motion (camera shake) fires ON and OFF at the same pixels
      and cancels, so the steady motion of an edge is what is left."""
    x = np.asarray(spikes)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 2):
        raise SpklipError(
            f"vision spikes have shape {x.shape}; expected (frames, H, W) or (frames, 2, H, W)"
        )
    if binning not in VISION_BINNINGS:
        raise SpklipError(
            f"vision binning {binning!r} is unknown; use one of {', '.join(VISION_BINNINGS)}"
        )
    binned = _bin_frames(x, steps, "vision_to_steps") != 0  # (steps, P, C, H, W)
    if binning == "net":
        if x.shape[1] != 2:
            raise SpklipError(
                "vision binning 'net' needs ON/OFF event frames (frames, 2, H, W); use a "
                "`spikesim convert --sensor dvs` conversion or another binning"
            )
        net = binned[:, :, 0].sum(axis=1, dtype=np.int16) - binned[:, :, 1].sum(
            axis=1, dtype=np.int16
        )  # (steps, H, W)
        return np.stack([net > 0, net < 0], axis=1).astype(np.uint8)
    if binning == "or":
        return binned.any(axis=1).astype(np.uint8)
    if binning == "count":
        return binned.sum(axis=1, dtype=np.uint8)
    if binning == "or-pair":
        now = binned.any(axis=1)
        before = np.concatenate([np.zeros_like(now[:1]), now[:-1]])
        return np.concatenate([now, before], axis=1).astype(np.uint8)
    return binned.reshape(steps, -1, *binned.shape[3:]).astype(np.uint8)


def intensity_to_steps(spikes: np.ndarray, steps: int, count: int) -> np.ndarray:
    """A spike-camera stream (frames, H, W) 0/1 -> an intensity channel (steps, 1, H, W)
    uint8 0/1: a pixel is 1 in a step when it fired at least ``count`` times in the step's
    P = frames // steps frames (the centred window of :func:`vision_to_steps`). A spike
    camera fires in proportion to the light, so this marks the bright parts of the scene:
    it tells a bright object on a dark background from a dark one on a bright background,
    which an event camera's ON/OFF events alone cannot."""
    x = np.asarray(spikes)
    if x.ndim != 3:
        raise SpklipError(f"spike-camera frames have shape {x.shape}; expected (frames, H, W)")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise SpklipError(f"intensity count {count!r} must be a whole number >= 1")
    counts = vision_to_steps(x, steps, "count")  # (steps, 1, H, W)
    return (counts >= count).astype(np.uint8)


def audio_to_steps(spikes: np.ndarray, steps: int) -> np.ndarray:
    """Spectrogram spikes (frames, M) or (frames, Ca, M) (time first, Ca kinds of spike, e.g.
    IF / ON / OFF, M mel channels), nonzero = a spike -> the model's audio input
    (steps, Ca, M, F) uint8 0/1 (Ca = 1 for (frames, M)): the centred steps x F frames
    (F = frames // steps), step t holding its F frames as the columns of an M x F image."""
    x = np.asarray(spikes)
    if x.ndim == 2:
        x = x[:, None]
    if x.ndim != 3:
        raise SpklipError(
            f"audio spikes have shape {x.shape}; expected (frames, mel channels) or "
            "(frames, kinds, mel channels)"
        )
    binned = _bin_frames(x, steps, "audio_to_steps")  # (steps, F, Ca, M)
    return (binned != 0).transpose(0, 2, 3, 1).astype(np.uint8)


def time_major(x: torch.Tensor) -> torch.Tensor:
    """A batch-major batch (B, T, ...) as the model takes it, (T, B, ...)."""
    return x.transpose(0, 1)


def iter_batches(
    dataset: Dataset, batch_size: int, generator: torch.Generator | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(vision, audio, labels) batches, batch-major; shuffled when ``generator`` is given."""
    n = len(dataset)
    if isinstance(dataset, AVTensors):
        order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
        for s in range(0, n, batch_size):
            idx = order[s : s + batch_size]
            yield dataset.vision[idx], dataset.audio[idx], dataset.labels[idx]
        return
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=generator is not None, generator=generator
    )
    for vision, audio, labels in loader:
        yield vision, audio, torch.as_tensor(labels, dtype=torch.int64)


def model_device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


# ----------------------------------------------------------------------------- converted clips


@dataclass(frozen=True)
class AVSpikeSettings:
    """How a converted clip and its sound become one AV sample.

    ``steps``: T, time steps of both streams. Vision: the clip's spike frames (or ON/OFF
    event frames) binned by :func:`vision_to_steps` with ``vision_binning``; with
    ``vision_input`` "spikes+dvs" the ON/OFF event frames of a DVS conversion follow an
    intensity channel (:func:`intensity_to_steps`, ``intensity_count``) drawn from a
    spike-camera conversion of the same videos (``ConvertedAV(..., spikes_from=...)``), so
    Cv = 1 + the events' channels. Audio: the WAV
    read at ``sample_rate`` Hz (mono), a mel power spectrogram in dB (``n_mels`` bands,
    ``n_fft``-point frames, the hop chosen per clip so that the clip spans
    ``steps x frames_per_step`` spectrogram frames), its integrate-and-fire
    spikes (``spikesim.audio_spikes``, mode "if", ``threshold``, ``top_db``, a random initial
    potential seeded by (``seed``, clip index)) and/or its cochlea-style ON/OFF events
    (mode "onoff", ``theta`` dB, ``top_db``; an event in the frame), binned by
    :func:`audio_to_steps` to (T, Ca, n_mels, frames_per_step). ``audio_mode``: "if"
    (Ca = 1), "onoff" (Ca = 2: ON, OFF) or "if+onoff" (Ca = 3: IF, ON, OFF).

    ON/OFF events matter for time-reversed sounds: a rising pitch turns bands on above the
    tone and off below it, a falling one the reverse, so the direction of a glide or a chirp
    is in every spectrogram frame, while IF spikes only show where the energy is. The
    intensity channel does the same for vision: an ON event at the rim of a bright object
    means it grows, at the rim of a dark one that it shrinks."""

    steps: int = 4
    n_mels: int = 16
    frames_per_step: int = 16
    n_fft: int = 512
    sample_rate: int = 16000
    threshold: float = 2.0
    top_db: float = 80.0
    seed: int = 0
    vision_binning: str = "or"
    audio_mode: str = "if+onoff"
    theta: float = 3.0
    vision_input: str = "data"
    intensity_count: int = 3

    def __post_init__(self) -> None:
        if self.vision_binning not in VISION_BINNINGS:
            raise SpklipError(
                f"AV settings: vision_binning {self.vision_binning!r} is unknown; use one of "
                f"{', '.join(VISION_BINNINGS)}"
            )
        if self.audio_mode not in AUDIO_INPUT_MODES:
            raise SpklipError(
                f"AV settings: audio_mode {self.audio_mode!r} is unknown; use one of "
                f"{', '.join(AUDIO_INPUT_MODES)}"
            )
        if self.vision_input not in VISION_INPUTS:
            raise SpklipError(
                f"AV settings: vision_input {self.vision_input!r} is unknown; use one of "
                f"{', '.join(VISION_INPUTS)}"
            )
        if not self.theta > 0:
            raise SpklipError(f"AV settings: theta = {self.theta} (dB) must be > 0")
        names = ("steps", "n_mels", "frames_per_step", "n_fft", "sample_rate", "intensity_count")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpklipError(f"AV settings: {name} = {value!r} must be a whole number >= 1")
        if not (self.threshold > 0 and self.top_db > 0) or self.seed < 0:
            raise SpklipError("AV settings: threshold and top_db must be > 0 and seed >= 0")


def _captions(audio_from: Path) -> dict[str, dict[str, Any]]:
    """The synth folder's ``captions.jsonl`` rows by video path ({} when it has none)."""
    captions = audio_from / "captions.jsonl"
    out: dict[str, dict[str, Any]] = {}
    if not captions.is_file():
        return out
    for n, line in enumerate(captions.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise SpklipError(
                f"{captions}:{n}: not JSON; run `spikesim synth --audio` again"
            ) from None
        if isinstance(row, dict):
            out[str(row.get("path"))] = row
    return out


def clip_audio_spikes(
    wave: np.ndarray, sample_rate: int, settings: AVSpikeSettings, *, seed: int
) -> np.ndarray:
    """A mono wave float32 (N,) at ``sample_rate`` Hz -> audio input (T, Ca, n_mels,
    frames_per_step) uint8 0/1 under ``settings`` (see :class:`AVSpikeSettings`; Ca = 1, 2 or
    3 by ``audio_mode``)."""
    frames = settings.steps * settings.frames_per_step
    hop = len(wave) // frames  # the spectrogram has 1 + N // hop >= frames frames
    if hop < 1:
        raise SpklipError(
            f"a sound of {len(wave)} samples cannot fill {frames} spectrogram frames; lower "
            "steps or frames_per_step"
        )
    spec = spikesim.mel_spectrogram(
        np.asarray(wave, dtype=np.float32),
        sample_rate,
        n_fft=settings.n_fft,
        hop_length=hop,
        n_mels=settings.n_mels,
    )
    channels = []  # each (frames, M) 0/1
    if settings.audio_mode in ("if", "if+onoff"):
        channels.append(
            spikesim.audio_spikes(
                spec, mode="if", threshold=settings.threshold, top_db=settings.top_db, seed=seed
            )
        )
    if settings.audio_mode in ("onoff", "if+onoff"):
        events = spikesim.audio_spikes(
            spec, mode="onoff", theta=settings.theta, top_db=settings.top_db
        )  # (frames, 2, M) counts
        channels += [events[:, 0], events[:, 1]]
    return audio_to_steps(np.stack(channels, axis=1), settings.steps)


def clip_vision(
    frames: np.ndarray, settings: AVSpikeSettings, *, spikes: np.ndarray | None = None
) -> np.ndarray:
    """One clip's vision input (T, Cv, H, W) uint8 0/1 (counts with binning "count") under
    ``settings``: ``frames``, spike frames (frames, H, W) or ON/OFF event frames
    (intervals, 2, H, W), binned by :func:`vision_to_steps`; with ``vision_input``
    "spikes+dvs", ``frames`` must be event frames and ``spikes`` the same clip's spike-camera
    frames (frames, H, W), whose intensity channel (:func:`intensity_to_steps`) comes first."""
    s = settings
    stream = vision_to_steps(frames, s.steps, s.vision_binning)
    if s.vision_input == "data":
        return stream
    if spikes is None or np.ndim(frames) != 4:
        raise SpklipError(
            "vision_input 'spikes+dvs' needs a clip's ON/OFF event frames and its spike-camera "
            "frames"
        )
    intensity = intensity_to_steps(spikes, s.steps, s.intensity_count)
    if intensity.shape[2:] != stream.shape[2:]:
        raise SpklipError(
            f"spike-camera frames of {intensity.shape[2:]} pixels and events of "
            f"{stream.shape[2:]}: convert both at the same size"
        )
    return np.concatenate([intensity, stream], axis=1)


class ConvertedAV:
    """A converted spike dataset (``spikesim convert`` of a ``spikesim synth --audio``
    folder) paired with the synth folder's sound tracks.

    ``data``: the converted folder or .h5 (``spikesim.open_dataset``); each clip's manifest
    ``source`` names its video under ``audio_from``, whose ``captions.jsonl`` names the WAV
    (``<stem>.wav`` beside the video when it lists none). ``classes``: the dataset's classes,
    label = class index. ``corruption``: per clip, "none", "video" or "audio" from
    ``captions.jsonl`` (None when it lists none). ``spikes_from``: with ``vision_input``
    "spikes+dvs" (``data`` then an event conversion), a spike-camera conversion of the same
    synth folder, its clips matched to ``data``'s by their ``source`` video."""

    def __init__(
        self,
        data: str | os.PathLike,
        audio_from: str | os.PathLike,
        settings: AVSpikeSettings | None = None,
        *,
        spikes_from: str | os.PathLike | None = None,
    ) -> None:
        self.settings = settings or AVSpikeSettings()
        self.dataset = spikesim.open_dataset(data)
        self.spikes = None  # the spike-camera conversion of "spikes+dvs"
        self._spike_clip: list[int] = []  # per clip of data, its index in self.spikes
        if self.settings.vision_input == "spikes+dvs":
            self._open_spikes(data, spikes_from)
        elif spikes_from is not None:
            raise SpklipError(
                f"{spikes_from}: a spike-camera conversion is read only with vision_input "
                "'spikes+dvs'; drop it or choose that input"
            )
        self.audio_from = Path(audio_from)
        if not self.audio_from.is_dir():
            raise SpklipError(
                f"{self.audio_from}: no such folder; give the `spikesim synth --audio` folder"
            )
        self.classes = list(self.dataset.classes)
        captions = _captions(self.audio_from)
        self.wavs: list[Path] = []
        self.corruption: list[str | None] = []
        for clip in self.dataset.clips:
            if not clip.source:
                raise SpklipError(
                    f"{data}: {clip.path} names no source video; convert it again with a "
                    "current `spikesim convert`"
                )
            row = captions.get(clip.source, {})
            named = row.get("audio")
            wav = self.audio_from / (
                named if isinstance(named, str) else Path(clip.source).with_suffix(".wav")
            )
            if not wav.is_file():
                raise SpklipError(
                    f"{wav}: no sound for {clip.path}; give the folder `spikesim synth --audio` "
                    "wrote as --audio-from"
                )
            self.wavs.append(wav)
            self.corruption.append(row.get("corruption"))

    def _open_spikes(self, data: str | os.PathLike, spikes_from: str | os.PathLike | None) -> None:
        if getattr(self.dataset, "sensor", "spike") != "dvs":
            raise SpklipError(
                f"{data}: vision_input 'spikes+dvs' needs an event conversion as the data "
                "(`spikesim convert --sensor dvs`)"
            )
        if spikes_from is None:
            raise SpklipError(
                "vision_input 'spikes+dvs' needs the spike-camera conversion of the same videos "
                "(spikes_from / --spikes-from)"
            )
        self.spikes = spikesim.open_dataset(spikes_from)
        if getattr(self.spikes, "sensor", "spike") != "spike":
            raise SpklipError(
                f"{spikes_from}: an event conversion; give a spike-camera conversion "
                "(`spikesim convert` without --sensor dvs)"
            )
        by_source = {c.source: k for k, c in enumerate(self.spikes.clips) if c.source}
        for clip in self.dataset.clips:
            if clip.source not in by_source:
                raise SpklipError(
                    f"{spikes_from}: no clip converted from {clip.source}; convert the same "
                    "synth folder into it"
                )
            self._spike_clip.append(by_source[clip.source])

    def indices(self, split: str) -> list[int]:
        """Clip indices of ``split`` ("train" or "test")."""
        idx = self.dataset.indices(split)
        if not idx:
            raise SpklipError(f"{self.dataset.root}: the {split!r} split has no clips")
        return idx

    def read_wave(self, i: int) -> np.ndarray:
        """Clip ``i``'s sound, mono float32 (N,) at ``settings.sample_rate``."""
        wave, _ = spikesim.read_audio(self.wavs[i], sample_rate=self.settings.sample_rate)
        return wave

    def audio(self, i: int, wave: np.ndarray | None = None) -> np.ndarray:
        """Clip ``i``'s audio input (T, Ca, M, F) uint8, from ``wave`` when given (a noisy
        copy) or from its WAV."""
        s = self.settings
        wave = self.read_wave(i) if wave is None else wave
        return clip_audio_spikes(wave, s.sample_rate, s, seed=_clip_seed(s.seed, i))

    def vision(self, i: int) -> np.ndarray:
        """Clip ``i``'s vision input (T, Cv, H, W) uint8 from its spike frames, or for an event
        conversion (``--sensor dvs``) from its ON/OFF event frames, one per interval between
        source frames (an event in the interval), both binned by :func:`vision_to_steps`;
        with ``vision_input`` "spikes+dvs" the intensity channel of the clip's spike-camera
        conversion (:func:`intensity_to_steps`) comes first."""
        spikes = None if self.spikes is None else self.spikes.read(self._spike_clip[i])
        return clip_vision(self._frames(i), self.settings, spikes=spikes)

    def _frames(self, i: int) -> np.ndarray:
        """Clip ``i``'s own frames: spikes (frames, H, W) or ON/OFF events (intervals, 2, H, W)."""
        if getattr(self.dataset, "sensor", "spike") != "dvs":
            return self.dataset.read(i)
        clip = self.dataset.clips[i]
        meta = spikesim.read_sidecar(Path(self.dataset.root) / clip.path)
        fps = meta.get("source_fps")
        if not isinstance(fps, (int, float)) or fps <= 0 or clip.frames < 2:
            raise SpklipError(
                f"{clip.path}: its sidecar gives no source_fps or it has under 2 frames; "
                "convert it again with a current `spikesim convert --sensor dvs`"
            )
        intervals = clip.frames - 1
        t1 = round(intervals * 1e6 / fps)
        counts = spikesim.event_count_frames(
            self.dataset.read_events(i), clip.height, clip.width, intervals, t0=0, t1=t1
        )
        return counts != 0

    def tensors(self, split: str) -> AVTensors:
        """Every clip of ``split`` as :class:`AVTensors` (in manifest order), grouped by
        corruption when ``captions.jsonl`` lists it."""
        idx = self.indices(split)
        vision = np.stack([self.vision(i) for i in idx])
        audio = np.stack([self.audio(i) for i in idx])
        labels = [self.dataset.clips[i].label for i in idx]
        known = all(self.corruption[i] is not None for i in idx)
        groups = [str(self.corruption[i]) for i in idx] if known else None
        return AVTensors(vision, audio, labels, self.classes, groups=groups)

    def train_val(self, val_fraction: float = 0.2, *, seed: int = 0) -> tuple[AVTensors, AVTensors]:
        """(train, val): the train split with a validation share carved out by group
        (``spikesim.carve_val``: ``val_fraction`` of the group names, held out in every
        class, drawn with ``seed``), so no validation scene, and no sister clip of a
        validation clip, is trained on."""
        idx = self.indices("train")
        clips = [self.dataset.clips[i] for i in idx]
        try:
            side = spikesim.carve_val(clips, spikesim.ValHoldout(val_fraction, seed))
        except spikesim.SpikesimError as e:
            raise SpklipError(f"AV validation split: {e}") from None
        is_val = np.array([side[c.path] == "val" for c in clips])
        if not is_val.any():
            raise SpklipError(
                f"{self.dataset.root}: no validation clips could be carved by group (every class "
                "has a single group); make the data with more clips per class"
            )
        whole = self.tensors("train")
        return whole.subset(np.flatnonzero(~is_val)), whole.subset(np.flatnonzero(is_val))

    def audio_at_snr(self, split: str, *, seed: int = 0) -> Callable[[float], np.ndarray]:
        """A callable snr_db -> the audio input (N, T, Ca, M, F) uint8 of ``split``'s clips (in
        :meth:`tensors` order) with Gaussian white noise at snr_db dB added to each WAV
        (``spikesim.snr_noise``, seeded by (``seed``, clip index)), the spikes recomputed.
        Results are cached per SNR, so every model sees the same noisy sounds."""
        idx = self.indices(split)
        waves = {i: self.read_wave(i) for i in idx}
        cache: dict[float, np.ndarray] = {}

        def at_snr(snr_db: float) -> np.ndarray:
            snr = float(snr_db)
            if snr not in cache:
                cache[snr] = np.stack(
                    [
                        self.audio(i, spikesim.snr_noise(waves[i], snr, _clip_seed(seed, i)))
                        for i in idx
                    ]
                )
            return cache[snr]

        return at_snr


def _clip_seed(seed: int, index: int) -> int:
    """A seed of its own for clip ``index`` of a dataset drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def load_converted_av(
    data: str | os.PathLike,
    audio_from: str | os.PathLike,
    settings: AVSpikeSettings | None = None,
    *,
    val_fraction: float = 0.2,
    split_seed: int = 0,
    spikes_from: str | os.PathLike | None = None,
) -> tuple[AVTensors, AVTensors, AVTensors, ConvertedAV]:
    """(train, val, test, source): the dataset's train split with a validation share carved
    out by group (:meth:`ConvertedAV.train_val`, ``split_seed``), its test split, and the
    :class:`ConvertedAV` (for :meth:`ConvertedAV.audio_at_snr`; ``spikes_from`` as there)."""
    source = ConvertedAV(data, audio_from, settings, spikes_from=spikes_from)
    train, val = source.train_val(val_fraction, seed=split_seed)
    return train, val, source.tensors("test"), source
