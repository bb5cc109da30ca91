"""Vision as an intensity channel plus net ON/OFF events (spklip.av_data vision_input
"spikes+dvs", binning "net"): a spiking vision-only S-CMRL learns from that input whether a
disc of random contrast (bright on dark or dark on bright) grows or shrinks while the camera
shakes; with the labels shuffled it stays at chance. The clips are drawn here and go through
the event camera (spikesim.dvs) and the spike camera (spikesim.encode) into the model's
input (spklip.av_data.clip_vision). (On this 16x16 toy the net events alone also carry the
class, through the ring's radius from step to step: 0.94 vs 1.0 with the intensity channel
when measured; what the channel adds on the synth clips is in docs/scmrl.md, session 6.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import spikesim
from spklip.av_data import (
    AVSpikeSettings,
    AVTensors,
    clip_vision,
    intensity_to_steps,
    vision_to_steps,
)
from spklip.errors import SpklipError
from spklip.evaluation.av import evaluate_av
from spklip.scmrl import create_scmrl
from spklip.training.av import AVTrainConfig, train_av

SIZE, FRAMES, FPS = 16, 17, 25.0  # 16 intervals: 4 per step
SETTINGS = AVSpikeSettings(
    steps=4, vision_input="spikes+dvs", vision_binning="net", intensity_count=2
)


def disc_clip(grow: bool, rng: np.random.Generator) -> np.ndarray:
    """Frames (FRAMES, SIZE, SIZE) float in [0, 1]: a soft-edged disc of random contrast
    growing (or shrinking) by about half, its centre shaking by ~0.3 px per frame."""
    bright = rng.random() < 0.5
    obj, bg = (rng.uniform(0.75, 0.9), rng.uniform(0.15, 0.25)) if bright else (
        rng.uniform(0.15, 0.25), rng.uniform(0.75, 0.9))  # fmt: skip
    r0, r1 = rng.uniform(2.5, 3.5), rng.uniform(5.0, 6.0)
    radius = np.linspace(r0, r1, FRAMES) if grow else np.linspace(r1, r0, FRAMES)
    cy, cx = rng.uniform(6.5, 9.5, size=2)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    frames = np.empty((FRAMES, SIZE, SIZE))
    for t in range(FRAMES):
        jy, jx = rng.normal(0, 0.3, size=2)
        d = np.hypot(yy - cy - jy, xx - cx - jx)
        inside = np.clip(radius[t] + 0.5 - d, 0.0, 1.0)  # one pixel of anti-aliased edge
        frames[t] = bg + (obj - bg) * inside
    return frames


def disc_set(n: int, seed: int) -> AVTensors:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2  # 0 shrink, 1 grow
    vision = []
    for i, y in enumerate(labels):
        frames = disc_clip(bool(y), rng)
        events = spikesim.dvs(frames, fps=FPS, seed=i)
        counts = spikesim.event_count_frames(
            events, SIZE, SIZE, FRAMES - 1, t0=0, t1=round((FRAMES - 1) * 1e6 / FPS)
        )
        spikes = spikesim.encode(frames.astype(np.float32), threshold=1.0, seed=i)
        vision.append(clip_vision(counts != 0, SETTINGS, spikes=spikes))
    audio = np.zeros((n, SETTINGS.steps, 1, 4, 4), dtype=np.uint8)  # unused by vision-only
    return AVTensors(np.stack(vision), audio, labels, ["shrink", "grow"])


def vision_only_top1(train: AVTensors, test: AVTensors, shuffle: bool) -> float:
    if shuffle:
        perm = np.random.default_rng(0).permutation(len(train))
        train = AVTensors(train.vision, train.audio, train.labels[perm], train.classes)
    torch.manual_seed(0)
    model = create_scmrl(
        "scmrl-tiny", **train.shapes, fusion="vision", dim=16, stages=1, token_grid=(2, 2), heads=2
    )
    train_av(model, train, config=AVTrainConfig(epochs=10, batch_size=8, lr=5e-3))
    return evaluate_av(model, test)["top1"]


def test_intensity_and_net_events_teach_the_direction_of_a_growth():
    train, test = disc_set(64, seed=1), disc_set(48, seed=2)
    assert train.vision.shape == (64, 4, 3, SIZE, SIZE)  # intensity, net ON, net OFF
    assert set(np.unique(train.vision.numpy())) <= {0, 1}
    learned = vision_only_top1(train, test, shuffle=False)
    shuffled = vision_only_top1(train, test, shuffle=True)
    assert learned >= 0.8, learned
    assert shuffled <= 0.7, shuffled


def test_net_binning_keeps_the_sign_of_the_change_over_a_step():
    events = np.zeros((4, 2, 1, 3), dtype=np.uint8)  # 4 intervals, ON/OFF, 1 x 3 pixels
    events[:3, 0, 0, 0] = 1  # pixel 0: ON ON ON OFF -> ON
    events[3, 1, 0, 0] = 1
    events[0, 0, 0, 1] = events[1, 1, 0, 1] = 1  # pixel 1: ON then OFF (a shake) -> nothing
    events[1:, 1, 0, 2] = 1  # pixel 2: OFF x 3 -> OFF
    net = vision_to_steps(events, 1, "net")
    assert net.shape == (1, 2, 1, 3) and net.dtype == np.uint8
    np.testing.assert_array_equal(net[0, :, 0], [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(SpklipError, match="ON/OFF event frames") as info:
        vision_to_steps(np.zeros((4, 1, 3), dtype=np.uint8), 1, "net")  # spike frames
    assert "\n" not in str(info.value)


def test_intensity_marks_pixels_that_fire_often_in_a_step():
    spikes = np.zeros((8, 1, 2), dtype=bool)  # 2 steps of 4 frames
    spikes[:3, 0, 0] = True  # 3 spikes in step 0 at pixel 0
    spikes[4:5, 0, 1] = True  # 1 spike in step 1 at pixel 1
    np.testing.assert_array_equal(intensity_to_steps(spikes, 2, 2)[:, 0, 0], [[1, 0], [0, 0]])
    np.testing.assert_array_equal(intensity_to_steps(spikes, 2, 1)[:, 0, 0], [[1, 0], [0, 1]])
    for bad in (0, 1.5, True):
        with pytest.raises(SpklipError, match="intensity count"):
            intensity_to_steps(spikes, 2, bad)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("vision_input", "lidar", "vision_input"), ("intensity_count", 0, "intensity_count"),
     ("vision_binning", "sum", "vision_binning")],
)  # fmt: skip
def test_bad_vision_settings_are_one_line(field, value, message):
    with pytest.raises(SpklipError, match=message) as info:
        AVSpikeSettings(**{field: value})
    assert "\n" not in str(info.value)


def test_spikes_dvs_input_needs_both_streams_of_one_size():
    events = np.zeros((8, 2, 4, 4), dtype=np.uint8)
    with pytest.raises(SpklipError, match="spike-camera frames"):
        clip_vision(events, SETTINGS)  # no spike frames
    with pytest.raises(SpklipError, match="same size"):
        clip_vision(events, SETTINGS, spikes=np.zeros((9, 5, 5), dtype=bool))
