"""Training and evaluation of S-CMRL and its baselines on audio-visual spike data.

Data: any torch ``Dataset`` whose items are ``(vision, audio, label)``: vision spikes
(T, Cv, H, W), audio spikes (T, 1, M, F) (0/1, any dtype) and an int class, or the in-memory
:class:`AVTensors` (batched by indexing, no DataLoader). Batches are batch-major as a
DataLoader stacks them and are moved to time-major (T, B, ...) for the model.
:func:`vision_to_steps` and :func:`audio_to_steps` bin a spike stream (frames, H, W) and
spectrogram spikes (frames, M) into those per-sample layouts.

- :func:`train_av`: AdamW (no decay on biases and norms), linear warm-up and cosine decay,
  gradient clipping, seeded shuffles; one dict per epoch (loss parts, lr, train and
  validation Top-1, seconds); optionally restores the epoch with the best validation Top-1.
- :func:`evaluate_av`: Top-1 and per-class accuracy.
- :func:`noise_robustness`: Top-1 with the audio spikes recomputed at each SNR by a callable.
- :func:`binary_activation_share` and :func:`estimate_av_energy`: hook-based measurements
  that reuse ``spklip.energy`` (SOPs from measured firing rates, MACs, memory, 45 nm figures).
- :func:`run_av_experiment`: every variant (:data:`VARIANTS`) x seeds, validation for the
  epoch choice, the test split read once per run; :func:`results_markdown` and
  :func:`plot_noise_curve` turn the result into a table and a figure.
- :func:`make_synthetic_av`: a seeded synthetic set whose class is carried by a bar's
  orientation in the picture and a tone's band in the sound, with a share of samples where one
  of the two is degraded to noise, so that only fusion solves the whole set.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .energy import (
    binary_activation_fraction,
    energy_table_markdown,
    estimate_energy,
    survey_layers,
)
from .errors import SpklipError
from .metrics import per_class_accuracy, zero_shot_accuracy
from .scmrl import SCMRL, SCMRLConfig, count_parameters, get_scmrl_config
from .scmrl_loss import SCMRLLossConfig, scmrl_loss
from .train import _param_groups, lr_factor

__all__ = [
    "VARIANTS",
    "AVTensors",
    "AVTrainConfig",
    "AVVariant",
    "audio_to_steps",
    "binary_activation_share",
    "estimate_av_energy",
    "evaluate_av",
    "make_synthetic_av",
    "noise_robustness",
    "plot_noise_curve",
    "predict_av",
    "results_markdown",
    "run_av_experiment",
    "split_train_val",
    "synthetic_audio_at_snr",
    "time_major",
    "train_av",
    "vision_to_steps",
]


# ----------------------------------------------------------------------------- data


class AVTensors(Dataset):
    """An in-memory audio-visual spike set.

    ``vision`` (N, T, Cv, H, W) and ``audio`` (N, T, 1, M, F) 0/1 (uint8 or bool or float),
    ``labels`` (N,) int64 in [0, len(classes)); ``classes`` names the classes (default
    "class0", ...); ``audio_power`` (N, T, M, F) float32, optional: the clean spectrogram
    power the audio spikes were drawn from (the synthetic set keeps it to redraw the spikes at
    an SNR)."""

    def __init__(
        self,
        vision: torch.Tensor | np.ndarray,
        audio: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray | Sequence[int],
        classes: Sequence[str] | None = None,
        audio_power: np.ndarray | None = None,
    ) -> None:
        self.vision = torch.as_tensor(vision)
        self.audio = torch.as_tensor(audio)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        n = len(self.labels)
        if self.vision.ndim != 5 or self.audio.ndim != 5 or self.audio.shape[2] != 1:
            raise SpklipError(
                f"AVTensors: vision {tuple(self.vision.shape)} and audio "
                f"{tuple(self.audio.shape)} must be (N, T, Cv, H, W) and (N, T, 1, M, F)"
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

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.vision[i], self.audio[i], int(self.labels[i])

    def subset(self, indices: Sequence[int] | np.ndarray) -> AVTensors:
        """The samples at ``indices``, in that order."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        power = None if self.audio_power is None else self.audio_power[idx.numpy()]
        return AVTensors(self.vision[idx], self.audio[idx], self.labels[idx], self.classes, power)

    def with_audio(self, audio: torch.Tensor | np.ndarray) -> AVTensors:
        """The same samples with ``audio`` (N, T, 1, M, F) spikes instead."""
        return AVTensors(self.vision, audio, self.labels, self.classes, self.audio_power)

    @property
    def shapes(self) -> dict[str, Any]:
        """steps, vision_channels, vision_size, audio_size and num_classes of the set, as
        SCMRLConfig fields."""
        return {
            "steps": int(self.vision.shape[1]),
            "vision_channels": int(self.vision.shape[2]),
            "vision_size": tuple(int(s) for s in self.vision.shape[3:]),
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
    return AVTensors(vision, audio, labels, classes, power.astype(np.float32))


def _bin_frames(x: np.ndarray, steps: int, what: str) -> np.ndarray:
    """(frames, ...) -> (steps, frames // steps, ...) over the centred window of whole bins."""
    per = x.shape[0] // steps
    if steps < 1 or per < 1:
        raise SpklipError(f"{what}: {x.shape[0]} frames cannot fill {steps} time steps")
    start = (x.shape[0] - per * steps) // 2
    return x[start : start + per * steps].reshape(steps, per, *x.shape[1:])


def vision_to_steps(spikes: np.ndarray, steps: int) -> np.ndarray:
    """A spike stream (frames, H, W) (spike camera) or event frames (frames, 2, H, W) (ON/OFF)
    0/1 -> the model's vision input (steps, Cv, H, W) uint8: the centred frames // steps x
    steps frames, each step the OR of its frames (a spike in the bin), so inputs stay 0/1."""
    x = np.asarray(spikes)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 2):
        raise SpklipError(
            f"vision spikes have shape {x.shape}; expected (frames, H, W) or (frames, 2, H, W)"
        )
    return (_bin_frames(x, steps, "vision_to_steps") != 0).any(axis=1).astype(np.uint8)


def audio_to_steps(spikes: np.ndarray, steps: int) -> np.ndarray:
    """Spectrogram spikes (frames, M) 0/1 (time first, M mel channels) -> the model's audio
    input (steps, 1, M, F) uint8: the centred steps x F frames (F = frames // steps), step t
    holding its F frames as the columns of an M x F image."""
    x = np.asarray(spikes)
    if x.ndim != 2:
        raise SpklipError(f"audio spikes have shape {x.shape}; expected (frames, mel channels)")
    binned = _bin_frames(x, steps, "audio_to_steps")  # (steps, F, M)
    return (binned != 0).transpose(0, 2, 1)[:, None].astype(np.uint8)


def time_major(x: torch.Tensor) -> torch.Tensor:
    """A batch-major batch (B, T, ...) as the model takes it, (T, B, ...)."""
    return x.transpose(0, 1)


def _batches(
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


def _device(model: torch.nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


# ----------------------------------------------------------------------------- training


@dataclass
class AVTrainConfig:
    """One training run of :func:`train_av`."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3  # peak AdamW learning rate, after the warm-up
    weight_decay: float = 1e-2  # not applied to biases and norms
    warmup: float = 0.05  # warm-up share of all steps
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    grad_clip: float | None = 1.0  # max global gradient norm
    seed: int = 0  # shuffles (and, in run_av_experiment, the initial weights)
    loss: SCMRLLossConfig = field(default_factory=SCMRLLossConfig)
    select_best: bool = True  # with a validation set: end on the epoch of best val Top-1
    log: Callable[[dict[str, Any]], None] | None = None  # called with each epoch's row

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise SpklipError("train_av: epochs and batch_size must be >= 1 and lr > 0")


def train_av(
    model: SCMRL,
    train_set: Dataset,
    *,
    val_set: Dataset | None = None,
    config: AVTrainConfig | None = None,
) -> list[dict[str, Any]]:
    """Train ``model`` on ``train_set``; returns one dict per epoch: ``epoch`` (1-based),
    ``loss``, ``ce``, ``sa`` (sample means), ``lr`` (at the epoch's end), ``train_top1`` (on
    the batches as trained), ``val_top1`` (None without ``val_set``), ``seconds``. With
    ``val_set`` and ``select_best``, the weights of the best validation epoch (the earliest of
    ties) are restored at the end and that row has ``"best": True``."""
    cfg = config or AVTrainConfig()
    if len(train_set) == 0:
        raise SpklipError("train_av: the training set is empty")
    device = _device(model)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup * total)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr)
    generator = torch.Generator().manual_seed(cfg.seed)
    rows: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        start = time.perf_counter()
        model.train()
        sums = {"loss": 0.0, "ce": 0.0, "sa": 0.0, "correct": 0.0}
        seen = 0
        for vision, audio, labels in _batches(train_set, cfg.batch_size, generator):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(step, total, warmup, cfg.min_lr_ratio)
            labels = labels.to(device)
            out = model(time_major(vision).to(device), time_major(audio).to(device))
            parts = scmrl_loss(out, labels, cfg.loss)
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            b = len(labels)
            seen += b
            for key in ("loss", "ce", "sa"):
                sums[key] += float(parts[key].detach()) * b
            sums["correct"] += float((out.logits.argmax(dim=1) == labels).sum())
        row: dict[str, Any] = {
            "epoch": epoch,
            **{k: sums[k] / seen for k in ("loss", "ce", "sa")},
            "lr": optimizer.param_groups[0]["lr"],
            "train_top1": sums["correct"] / seen,
            "val_top1": None,
        }
        if val_set is not None and len(val_set):
            row["val_top1"] = evaluate_av(model, val_set, batch_size=cfg.batch_size)["top1"]
            if cfg.select_best and (best is None or row["val_top1"] > best[0]):
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (row["val_top1"], epoch, state)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if cfg.log is not None:
            cfg.log(row)
    if best is not None:
        model.load_state_dict(best[2])
        rows[best[1] - 1]["best"] = True
    return rows


@torch.no_grad()
def predict_av(
    model: SCMRL, dataset: Dataset, *, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, classes) float32 and labels (N,) int64 of ``dataset`` in order (eval mode;
    the model's mode is restored)."""
    was_training = model.training
    model.eval()
    device = _device(model)
    logits, labels = [], []
    try:
        for vision, audio, y in _batches(dataset, batch_size):
            out = model(time_major(vision).to(device), time_major(audio).to(device))
            logits.append(out.logits.float().cpu().numpy())
            labels.append(y.numpy())
    finally:
        model.train(was_training)
    if not logits:
        raise SpklipError("evaluate: the dataset is empty")
    return np.concatenate(logits), np.concatenate(labels)


def evaluate_av(
    model: SCMRL,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """``{"top1": fraction, "per_class": {class: fraction}, "n": samples}`` (ties count
    against the model, as ``spklip.metrics``)."""
    logits, labels = predict_av(model, dataset, batch_size=batch_size)
    names = list(classes or getattr(dataset, "classes", None) or range(logits.shape[1]))
    return {
        "top1": zero_shot_accuracy(logits, labels, ks=(1,))["top1"],
        "per_class": per_class_accuracy(logits, labels, [str(c) for c in names]),
        "n": len(labels),
    }


def noise_robustness(
    model: SCMRL,
    dataset: AVTensors,
    audio_at_snr: Callable[[float], torch.Tensor | np.ndarray],
    snrs: Sequence[float] = (0, 5, 10, 15, 20, 25, 30),
    *,
    batch_size: int = 64,
) -> list[dict[str, float]]:
    """Top-1 on ``dataset`` with its audio spikes replaced by ``audio_at_snr(snr)`` (N, T, 1,
    M, F), the same samples in the same order recomputed with Gaussian white noise at ``snr``
    dB, for each SNR: ``[{"snr_db": s, "top1": fraction}, ...]``."""
    out = []
    for snr in snrs:
        audio = torch.as_tensor(audio_at_snr(float(snr)))
        if audio.shape != dataset.audio.shape:
            raise SpklipError(
                f"audio_at_snr({snr}) gave shape {tuple(audio.shape)}; the dataset's audio is "
                f"{tuple(dataset.audio.shape)}"
            )
        top1 = evaluate_av(model, dataset.with_audio(audio), batch_size=batch_size)["top1"]
        out.append({"snr_db": float(snr), "top1": top1})
    return out


# ----------------------------------------------------------------------------- measurements

_INPUT_LAYERS = ("audio_embed.stages.0", "vision_embed.stages.0")  # read the input streams


def binary_activation_share(
    model: SCMRL, batch: tuple[torch.Tensor | None, torch.Tensor | None]
) -> dict[str, Any]:
    """The share of inter-layer activations that are exactly 0/1, measured with forward hooks
    on every convolution and linear layer (``spklip.energy.survey_layers``) on ``batch`` =
    (vision, audio), time-major as the model takes them.

    Returns ``inter_layer_binary_fraction`` (binary input elements / all input elements of the
    layers that do not read the input streams), ``binary_activation_fraction`` (all layers),
    ``binary_layers`` of ``layers``, and ``real_valued_inputs``: the names of the layers that
    read real values (the cross-modal residual's linear layer reads CCSSA's rate product)."""
    vision, audio = batch
    clips = (vision if vision is not None else audio).shape[1]
    layers, _ = survey_layers(model, (vision, audio), clips=clips)
    dense = [c for c in layers if c.kind != "matmul"]
    inner = [c for c in dense if c.name not in _INPUT_LAYERS]
    elements = sum(c.input_elements for c in inner)
    share = binary_activation_fraction(model, (vision, audio), clips=clips)
    return {
        "inter_layer_binary_fraction": (
            sum(c.binary_elements for c in inner) / elements if elements else 0.0
        ),
        "binary_activation_fraction": share["binary_activation_fraction"],
        "binary_layers": share["binary_layers"],
        "layers": share["layers"],
        "real_valued_inputs": share["real_valued_inputs"],
    }


def estimate_av_energy(
    model: SCMRL,
    batch: tuple[torch.Tensor | None, torch.Tensor | None],
    *,
    include_layers: bool = False,
) -> dict[str, Any]:
    """Energy per sample of ``model`` on ``batch`` = (vision, audio) time-major, with
    ``spklip.energy.estimate_energy``'s counting (SOPs = measured input firing rate x MACs of
    layers reading spikes, MACs of the others and of the attention's real-valued products,
    LIF updates, memory accesses; 45 nm figures). Adds ``model`` (the config as a dict)."""
    vision, audio = batch
    clips = (vision if vision is not None else audio).shape[1]
    result = estimate_energy(model, (vision, audio), clips=clips, include_layers=include_layers)
    result["time_steps"] = model.config.steps
    result["model"] = model.config.to_dict()
    return result


# ----------------------------------------------------------------------------- experiments


@dataclass(frozen=True)
class AVVariant:
    """A row of the comparison: overrides of the model config and of the loss config."""

    name: str
    model: Mapping[str, Any] = field(default_factory=dict)
    loss: Mapping[str, Any] = field(default_factory=dict)


VARIANTS: tuple[AVVariant, ...] = (
    AVVariant("scmrl"),
    AVVariant("audio-only", {"fusion": "audio"}),
    AVVariant("vision-only", {"fusion": "vision"}),
    AVVariant("additive", {"fusion": "add"}),
    AVVariant("concat", {"fusion": "concat"}),
    AVVariant("scmrl-no-sa", {}, {"sa_weight": 0.0}),
    AVVariant("scmrl-no-residual", {"residual": False}),
)


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def run_av_experiment(
    train_set: AVTensors,
    val_set: AVTensors,
    test_set: AVTensors,
    *,
    models: Sequence[AVVariant | str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 20,
    base: str | SCMRLConfig = "scmrl-tiny",
    train: AVTrainConfig | None = None,
    audio_at_snr: Callable[[float], torch.Tensor | np.ndarray] | None = None,
    snrs: Sequence[float] = (0, 5, 10, 15, 20, 25, 30),
    measure_batch: int = 8,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every variant (default :data:`VARIANTS`; names pick from it) with every seed.

    Each run: ``torch.manual_seed(seed)`` then the model (``base`` config, sized to the data:
    steps, channels, input sizes, classes), :func:`train_av` for ``epochs`` with validation on
    ``val_set`` choosing the epoch, then the test split read once: Top-1, per class and, with
    ``audio_at_snr`` (a callable giving the test set's audio spikes at an SNR), the noise
    curve. The first seed's model also gets :func:`binary_activation_share` and
    :func:`estimate_av_energy` on the first ``measure_batch`` test samples.

    Returns a JSON-able dict: ``variants`` {name: {``model``, ``loss`` (overrides), ``runs``
    (per seed: seed, best_epoch, val_top1, test_top1, per_class, noise, history, seconds),
    ``test_top1_mean``/``_sd``, ``val_top1_mean``/``_sd``, ``noise`` (per SNR: mean, sd),
    ``binary``, ``energy``, ``parameters``}}, ``seeds``, ``epochs``, ``base`` (config dict),
    ``train`` (settings), ``sizes`` (samples per split), ``seconds``.
    """
    by_name = {v.name: v for v in VARIANTS}
    chosen: list[AVVariant] = []
    for v in models or VARIANTS:
        if isinstance(v, str):
            if v not in by_name:
                raise SpklipError(f"unknown variant {v!r}; choose from {', '.join(by_name)}")
            v = by_name[v]
        chosen.append(v)
    if not seeds:
        raise SpklipError("run_av_experiment: give at least one seed")
    base_cfg = get_scmrl_config(base, **train_set.shapes)
    train_cfg = train or AVTrainConfig()
    begin = time.perf_counter()
    result: dict[str, Any] = {
        "base": base_cfg.to_dict(),
        "seeds": list(seeds),
        "epochs": epochs,
        "train": {k: v for k, v in asdict(train_cfg).items() if k not in ("log", "loss")},
        "loss": asdict(train_cfg.loss),
        "sizes": {"train": len(train_set), "val": len(val_set), "test": len(test_set)},
        "variants": {},
    }
    probe = test_set.subset(range(min(measure_batch, len(test_set))))
    probe_batch = (time_major(probe.vision), time_major(probe.audio))
    for variant in chosen:
        model_cfg = get_scmrl_config(base_cfg, **dict(variant.model))
        loss_cfg = SCMRLLossConfig(**{**asdict(train_cfg.loss), **dict(variant.loss)})
        runs = []
        entry: dict[str, Any] = {"model": dict(variant.model), "loss": dict(variant.loss)}
        for seed in seeds:
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = SCMRL(model_cfg)
            cfg = AVTrainConfig(
                **{**vars(train_cfg), "epochs": epochs, "seed": seed, "loss": loss_cfg}
            )
            history = train_av(model, train_set, val_set=val_set, config=cfg)
            best = next((r for r in history if r.get("best")), history[-1])
            test = evaluate_av(model, test_set)
            run = {
                "seed": seed,
                "best_epoch": best["epoch"],
                "val_top1": best["val_top1"],
                "test_top1": test["top1"],
                "per_class": test["per_class"],
                "noise": (
                    noise_robustness(model, test_set, audio_at_snr, snrs)
                    if audio_at_snr is not None
                    else None
                ),
                "history": history,
            }
            if seed == seeds[0]:
                entry["binary"] = binary_activation_share(model, probe_batch)
                entry["energy"] = estimate_av_energy(model, probe_batch)
                entry["parameters"] = count_parameters(model)
            run["seconds"] = time.perf_counter() - start
            runs.append(run)
            if log is not None:
                log(
                    f"{variant.name} seed {seed}: val {run['val_top1']:.3f} (epoch "
                    f"{run['best_epoch']}), test {run['test_top1']:.3f}, {run['seconds']:.0f} s"
                )
        entry["runs"] = runs
        for key in ("test_top1", "val_top1"):
            entry[f"{key}_mean"], entry[f"{key}_sd"] = _mean_sd([r[key] for r in runs])
        if audio_at_snr is not None:
            entry["noise"] = []
            for i, snr in enumerate(snrs):
                mean, sd = _mean_sd([r["noise"][i]["top1"] for r in runs])
                entry["noise"].append({"snr_db": float(snr), "top1_mean": mean, "top1_sd": sd})
        result["variants"][variant.name] = entry
    result["seconds"] = time.perf_counter() - begin
    return result


def results_markdown(results: Mapping[str, Any]) -> str:
    """A Markdown table of :func:`run_av_experiment`'s result: per variant the validation and
    test Top-1 (mean ± sd over seeds), the per-seed test Top-1, the inter-layer binary share
    and the energy per sample; then ``spklip.energy``'s table of the counts per variant."""
    lines = [
        f"Seeds {results['seeds']}, {results['epochs']} epochs; samples: {results['sizes']}.",
        "",
        "| variant | val Top-1 | test Top-1 | test per seed | binary share | energy, µJ |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, e in results["variants"].items():
        per_seed = ", ".join(f"{r['test_top1']:.3f}" for r in e["runs"])
        binary = e.get("binary", {}).get("inter_layer_binary_fraction")
        energy = e.get("energy", {}).get("total_J")
        lines.append(
            f"| {name} | {e['val_top1_mean']:.3f} ± {e['val_top1_sd']:.3f} | "
            f"{e['test_top1_mean']:.3f} ± {e['test_top1_sd']:.3f} | {per_seed} | "
            f"{'-' if binary is None else f'{binary:.4f}'} | "
            f"{'-' if energy is None else f'{energy * 1e6:.3f}'} |"
        )
    energies = {n: e["energy"] for n, e in results["variants"].items() if e.get("energy")}
    if energies:  # the counts behind the energy column, as in `spklip energy`'s table
        lines += ["", "Energy per sample (first seed's model, 45 nm figures):", ""]
        lines.append(energy_table_markdown(energies))
    return "\n".join(lines) + "\n"


def plot_noise_curve(results: Mapping[str, Any], path: str | os.PathLike) -> os.PathLike:
    """Test Top-1 against the SNR of the white noise added to the audio, one line per variant
    (mean over seeds, band ± sd), from :func:`run_av_experiment` run with ``audio_at_snr``.
    Written as PNG (or the format of ``path``'s suffix) under a temporary name, then renamed."""
    from .figures import _save, plt

    variants = {k: v for k, v in results["variants"].items() if v.get("noise")}
    if not variants:
        raise SpklipError("no noise curves in these results; run the experiment with audio_at_snr")
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for name, e in variants.items():
        snr = [p["snr_db"] for p in e["noise"]]
        mean = np.array([p["top1_mean"] for p in e["noise"]])
        sd = np.array([p["top1_sd"] for p in e["noise"]])
        (line,) = ax.plot(snr, mean, marker="o", ms=3, label=name)
        ax.fill_between(snr, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("SNR of the white noise on the audio, dB")
    ax.set_ylabel("test Top-1")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Noise robustness (mean ± sd over {len(results['seeds'])} seeds)")
    fig.tight_layout()
    return _save(fig, path)
