"""Audio as ON/OFF events (spklip.av_data audio_mode "if+onoff"): a spiking audio-only S-CMRL
learns the direction of a pitch glide (the time-reversed pair rising / falling) from the audio
path's own tensors; with the labels shuffled it stays at chance. The sounds are drawn here:
a harmonic tone gliding an octave up or down from a random pitch, at a random level, under
faint noise, so the class is only the direction."""

from __future__ import annotations

import numpy as np
import torch

from spklip.av_data import AVSpikeSettings, AVTensors, clip_audio_spikes
from spklip.evaluation.av import evaluate_av
from spklip.scmrl import create_scmrl
from spklip.training.av import AVTrainConfig, train_av

RATE = 16000
SETTINGS = AVSpikeSettings(steps=2, n_mels=16, frames_per_step=8, audio_mode="if+onoff")


def glide(rising: bool, rng: np.random.Generator, seconds: float = 0.4) -> np.ndarray:
    """A 3-harmonic tone gliding one octave up (or down) from a random pitch, float32."""
    n = round(seconds * RATE)
    f0 = float(np.exp(rng.uniform(np.log(200.0), np.log(400.0))))
    ramp = np.linspace(0.0, 1.0, n) if rising else np.linspace(1.0, 0.0, n)
    freq = f0 * 2.0**ramp
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    wave = sum(np.sin(k * phase) / k for k in (1, 2, 3)) * rng.uniform(0.2, 0.6)
    return (wave + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def glide_set(n: int, seed: int) -> AVTensors:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2  # 0 falling, 1 rising
    audio = np.stack(
        [
            clip_audio_spikes(glide(bool(y), rng), RATE, SETTINGS, seed=i)
            for i, y in enumerate(labels)
        ]
    )
    vision = np.zeros((n, SETTINGS.steps, 1, 8, 8), dtype=np.uint8)  # unused by audio-only
    return AVTensors(vision, audio, labels, ["falling", "rising"])


def audio_only_top1(train: AVTensors, test: AVTensors, shuffle: bool) -> float:
    if shuffle:
        perm = np.random.default_rng(0).permutation(len(train))
        train = AVTensors(train.vision, train.audio, train.labels[perm], train.classes)
    torch.manual_seed(0)
    model = create_scmrl(
        "scmrl-tiny",
        **train.shapes,
        fusion="audio",
        dim=16,
        stages=1,
        token_grid=(2, 2),
        heads=2,
    )
    train_av(model, train, config=AVTrainConfig(epochs=8, batch_size=8, lr=5e-3))
    return evaluate_av(model, test)["top1"]


def test_on_off_audio_makes_a_glide_direction_learnable_shuffled_labels_stay_at_chance():
    train, test = glide_set(64, seed=0), glide_set(48, seed=1)
    assert train.audio.shape == (64, 2, 3, 16, 8)  # IF, ON, OFF channels
    assert set(np.unique(train.audio.numpy())) <= {0, 1}
    learned = audio_only_top1(train, test, shuffle=False)
    shuffled = audio_only_top1(train, test, shuffle=True)
    assert learned >= 0.9, (learned, shuffled)
    assert shuffled <= 0.7, (learned, shuffled)  # chance is 0.5
