"""Sound tracks of the synthetic clips: in sync with the motion, reversed for reversed classes,
enough to tell the classes apart on clean clips, and corruptions that take that away."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spikesim.audio import audio_spikes, mel_spectrogram, read_audio
from spikesim.errors import SpikesimError
from spikesim.synth import CLASS_SPECS, is_test_group, render_clip
from spikesim.synth.audio import (
    CORRUPTIONS,
    assign_corruption,
    clip_sound,
    degrade_sound,
    degrade_video_frames,
    has_espeak,
    render_av_clip,
    render_sound,
    snr_noise,
    sound_path,
    spoken_digit,
    write_clip_sound,
)

SIZE = (48, 64)
FPS = 25.0
RATE = 16000
NAMES = [s.name for s in CLASS_SPECS]
PARTNER = {"Shrink": "Grow", "RotateAnticlockwise": "RotateClockwise", "MoveLeft": "MoveRight",
           "MoveUp": "MoveDown", "FadeOut": "FadeIn",
           "OrbitAnticlockwise": "OrbitClockwise"}  # fmt: skip


def sound_of(cls: str, index: int = 0, frames: int = 32, seed: int = 0) -> np.ndarray:
    clip = render_clip(cls, index, size=SIZE, frames=frames)
    return render_sound(cls, clip.track, size=SIZE, fps=FPS, seed=seed)


def frame_energy(wave: np.ndarray, n_frames: int) -> np.ndarray:
    """Mean power of the samples shown with each video frame."""
    return (wave.astype(np.float64) ** 2).reshape(n_frames, -1).mean(axis=1)


def onsets(wave: np.ndarray, rel: float = 0.05) -> np.ndarray:
    """Sample indices where a 10 ms power envelope rises through ``rel`` x its maximum, after
    having fallen below a quarter of that (hysteresis: a ripple is not a new event)."""
    env = np.convolve(wave.astype(np.float64) ** 2, np.ones(160) / 160, mode="same")
    high, low = rel * env.max(), 0.25 * rel * env.max()
    out, armed = [], True
    for i, v in enumerate(env):
        if armed and v > high:
            out.append(i)
            armed = False
        elif v < low:
            armed = True
    return np.array(out)


# -- shape, determinism, reversal -----------------------------------------------------------


@pytest.mark.parametrize("cls", NAMES)
def test_length_dtype_and_determinism(cls):
    a = sound_of(cls, frames=30)
    assert a.dtype == np.float32 and a.shape == (round(30 * RATE / FPS),)
    assert 0.3 < np.abs(a).max() < 0.61
    np.testing.assert_array_equal(a, sound_of(cls, frames=30))
    assert not np.array_equal(a, sound_of(cls, frames=30, seed=1))


@pytest.mark.parametrize("cls", list(PARTNER))
def test_reversed_class_is_reversed_partner_sound(cls):
    clip = render_clip(cls, 3, size=SIZE, frames=32)
    reversed_track = {k: v[::-1] for k, v in clip.track.items()}
    mine = render_sound(cls, clip.track, size=SIZE, fps=FPS, seed=5)
    partner = render_sound(PARTNER[cls], reversed_track, size=SIZE, fps=FPS, seed=5)
    np.testing.assert_array_equal(mine, partner[::-1])


# -- in sync with the motion ----------------------------------------------------------------


def test_blink_sound_follows_visibility():
    clip = render_clip("Blink", 1, size=SIZE, frames=40)
    wave = render_sound("Blink", clip.track, size=SIZE, fps=FPS)
    energy = frame_energy(wave, 40)
    on = clip.track["visible"] > 0.5
    assert on.any() and (~on).any()
    assert energy[on].min() > 100 * energy[~on].max() or (
        np.median(energy[on]) > 1000 * np.median(energy[~on])
    )


def test_rotation_clicks_count_the_turn():
    for index in range(3):
        clip = render_clip("RotateClockwise", index, size=SIZE, frames=32)
        wave = render_sound("RotateClockwise", clip.track, size=SIZE, fps=FPS)
        turned = clip.track["angle"][-3:].mean() - clip.track["angle"][:3].mean()
        n = len(onsets(wave))
        assert abs(n - turned / 15.0) <= 1.5, (n, turned)


def test_bounce_thumps_at_floor_contacts():
    clip = render_clip("Bounce", 2, size=SIZE, frames=48)
    wave = render_sound("Bounce", clip.track, size=SIZE, fps=FPS)
    hits = onsets(wave) / RATE * FPS  # in frames
    cy = clip.track["cy"]
    floor = np.flatnonzero(cy >= cy.max() - 0.3 * np.ptp(cy))
    assert len(hits) >= 2
    # every thump starts within a frame of a frame where the object is near the floor
    assert all(np.abs(floor - h).min() <= 1.0 for h in hits)


def test_translation_tempo_follows_speed():
    counts = {}
    for cls in ("MoveRightSlow", "MoveRight", "MoveRightFast"):
        counts[cls] = [len(onsets(sound_of(cls, k))) for k in range(4)]
    assert max(counts["MoveRightSlow"]) < min(counts["MoveRight"])
    assert max(counts["MoveRight"]) < min(counts["MoveRightFast"])


def test_grow_rises_and_shrink_falls():
    for cls, sign in (("Grow", 1), ("Shrink", -1)):
        spec = mel_spectrogram(sound_of(cls, 4), RATE)
        # the loudest band at the start and the end of the clip (the fundamental)
        start, end = spec[3:8].mean(axis=0).argmax(), spec[-8:-3].mean(axis=0).argmax()
        assert sign * (end - start) >= 4


# -- separable on clean sound, not on degraded sound ----------------------------------------


def _features(wave: np.ndarray) -> np.ndarray:
    mel = mel_spectrogram(wave, RATE, n_mels=32)[:128]
    return mel.reshape(16, 8, 32).mean(axis=1).ravel()


def _nearest_neighbour_accuracy(x: np.ndarray, y: np.ndarray, test: np.ndarray) -> float:
    x = (x - x[~test].mean(0)) / (x[~test].std(0) + 1e-6)
    d = ((x[test][:, None] - x[~test][None]) ** 2).sum(-1)
    return float((y[~test][d.argmin(1)] == y[test]).mean())


@pytest.fixture(scope="module")
def sound_set():
    """Features of 16 classes x 16 clips (groups 1-8; 2, 5, 8 are test): pooled log-mel of the
    clean and the degraded sound, pooled IF spike rates and ON/OFF counts of the clean one."""
    feats: dict[str, list] = {"clean": [], "degraded": [], "if": [], "onoff": []}
    labels, test = [], []
    rng = np.random.default_rng(0)
    for ci, cls in enumerate(NAMES):
        for k in range(16):
            clip = render_clip(cls, k, size=SIZE, frames=32)
            wave = clip_sound(clip, fps=FPS, seed=0)
            feats["clean"].append(_features(wave))
            feats["degraded"].append(_features(degrade_sound(wave, rng)))
            mel = mel_spectrogram(wave, RATE, n_mels=32)[:128]
            spikes = audio_spikes(mel, mode="if", threshold=2.0, seed=k)
            feats["if"].append(spikes.reshape(16, 8, 32).mean(axis=1).ravel())
            events = audio_spikes(mel, mode="onoff", theta=3.0).astype(np.float64)
            feats["onoff"].append(events.reshape(16, 8, 2, 32).sum(axis=1).ravel())
            labels.append(ci)
            test.append(is_test_group(clip.group))
    return {k: np.array(v) for k, v in feats.items()}, np.array(labels), np.array(test)


def test_classes_separable_from_clean_sound(sound_set):
    feats, y, test = sound_set
    acc = _nearest_neighbour_accuracy(feats["clean"], y, test)
    assert acc >= 0.8, acc  # measured 0.875 (chance 1/16)
    shuffled = np.random.default_rng(1).permutation(y)
    assert _nearest_neighbour_accuracy(feats["clean"], shuffled, test) < 0.3


def test_audio_spikes_keep_the_class(sound_set):
    feats, y, test = sound_set
    assert _nearest_neighbour_accuracy(feats["if"], y, test) >= 0.7  # measured 0.85
    assert _nearest_neighbour_accuracy(feats["onoff"], y, test) >= 0.4  # measured 0.57


def test_degraded_sound_does_not_tell_the_class(sound_set):
    feats, y, test = sound_set
    assert _nearest_neighbour_accuracy(feats["degraded"], y, test) < 0.2  # measured 0.11


def test_degrade_sound_is_blind_to_time_direction():
    wave = sound_of("OrbitClockwise", 2)
    a = degrade_sound(wave, np.random.default_rng(4))
    b = degrade_sound(wave[::-1].copy(), np.random.default_rng(4))
    assert a.dtype == np.float32 and a.shape == wave.shape
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert np.sqrt(np.mean(a.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=1e-3)


def test_degrade_video_is_blind_to_time_direction():
    clip = render_clip("MoveRight", 0, size=SIZE, frames=16)
    a = degrade_video_frames(clip.frames, np.random.default_rng(2))
    b = degrade_video_frames(clip.frames[::-1], np.random.default_rng(2))
    assert a.dtype == np.uint8 and a.shape == clip.frames.shape
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    # the picture is gone: frames differ from one another only by the added noise
    grey = a.astype(np.float64).mean(-1)
    assert np.abs(grey.mean(0) - clip.frames.mean(-1).mean(0)).mean() > 5
    floats = degrade_video_frames(clip.frames.mean(-1) / 255.0, np.random.default_rng(2))
    assert floats.dtype == np.float64 and floats.shape == (16, *SIZE)
    assert 0.0 <= floats.min() and floats.max() <= 1.0


def test_degrade_video_removes_motion_information():
    # Nearest neighbour on pooled frame differences (8 classes x 12 clips): above chance on
    # clean clips (measured 0.41), at chance (1/8) on degraded ones (measured 0.09).
    clean, degraded, labels, test = [], [], [], []
    rng = np.random.default_rng(0)

    def motion(frames: np.ndarray) -> np.ndarray:
        grey = frames.astype(np.float64).mean(-1)
        return np.diff(grey, axis=0)[:12].reshape(4, 3, 6, 8, 8, 8).mean((1, 3, 5)).ravel()

    for ci, cls in enumerate(NAMES[:8]):
        for k in range(12):
            clip = render_clip(cls, k, size=SIZE, frames=16)
            clean.append(motion(clip.frames))
            degraded.append(motion(degrade_video_frames(clip.frames, rng)))
            labels.append(ci)
            test.append(is_test_group(clip.group))
    y, test = np.array(labels), np.array(test)
    assert _nearest_neighbour_accuracy(np.array(clean), y, test) >= 0.3
    assert _nearest_neighbour_accuracy(np.array(degraded), y, test) <= 0.2


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 31, 300])
def test_assign_corruption_thirds(n):
    got = assign_corruption(n, seed=3)
    assert got.shape == (n,) and set(got.tolist()) <= set(CORRUPTIONS)
    counts = [int((got == c).sum()) for c in CORRUPTIONS]
    assert max(counts) - min(counts) <= 1 and sum(counts) == n
    np.testing.assert_array_equal(got, assign_corruption(n, seed=3))
    if n >= 10:
        assert not np.array_equal(got, assign_corruption(n, seed=4))


def test_snr_noise_hits_the_snr():
    wave = np.sin(np.arange(200_000) * 0.05).astype(np.float32) * 0.3
    for snr in (0.0, 10.0, 30.0):
        noisy = snr_noise(wave, snr, seed=1)
        noise = noisy.astype(np.float64) - wave
        measured = 10 * np.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr, abs=0.1)
    np.testing.assert_array_equal(snr_noise(wave, 5.0, 2), snr_noise(wave, 5.0, 2))
    assert not np.array_equal(snr_noise(wave, 5.0, 2), snr_noise(wave, 5.0, 3))


def test_render_av_clip_applies_its_corruption():
    kw = {"size": SIZE, "frames": 16, "seed": 3}
    clean = render_av_clip("MoveUp", 5, **kw)
    assert clean.corruption == "none" and clean.sample_rate == RATE
    np.testing.assert_array_equal(clean.frames, render_clip("MoveUp", 5, **kw).frames)
    np.testing.assert_array_equal(clean.sound, clip_sound(clean.clip, fps=FPS, seed=3))
    video = render_av_clip("MoveUp", 5, corruption="video", **kw)
    assert video.frames.shape == clean.frames.shape and not np.array_equal(
        video.frames, clean.frames
    )
    np.testing.assert_array_equal(video.sound, clean.sound)
    audio = render_av_clip("MoveUp", 5, corruption="audio", **kw)
    np.testing.assert_array_equal(audio.frames, clean.frames)
    assert audio.sound.shape == clean.sound.shape and not np.array_equal(audio.sound, clean.sound)
    again = render_av_clip("MoveUp", 5, corruption="audio", **kw)
    np.testing.assert_array_equal(again.sound, audio.sound)
    with pytest.raises(SpikesimError, match="corruption"):
        render_av_clip("MoveUp", 5, corruption="both", **kw)


def test_write_clip_sound_beside_the_video(tmp_path):
    video = tmp_path / "Grow" / "v_Grow_g01_c01.avi"
    video.parent.mkdir()
    wave = sound_of("Grow")
    path = write_clip_sound(video, wave, RATE)
    assert path == sound_path(video) == tmp_path / "Grow" / "v_Grow_g01_c01.wav"
    back, rate = read_audio(path, sample_rate=None)
    assert rate == RATE and back.shape == wave.shape
    np.testing.assert_allclose(back, wave, atol=2 / 32767)  # int16 and FFmpeg's /32768
    with pytest.raises(SpikesimError, match="exists"):
        write_clip_sound(video, wave, RATE)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda t: render_sound("Jump", t, size=SIZE, fps=FPS), "unknown"),
        (lambda t: render_sound("Grow", {"cx": t["cx"]}, size=SIZE, fps=FPS), "track"),
        (lambda t: render_sound("Grow", t, size=(48,), fps=FPS), "size"),
        (lambda t: render_sound("Grow", t, size=SIZE, fps=0), "fps"),
        (lambda t: render_sound("Grow", t, size=SIZE, fps=FPS, sample_rate=4000), "sample_rate"),
        (lambda t: render_sound("Grow", t, size=SIZE, fps=FPS, seed=-1), "seed"),
        (lambda t: assign_corruption(-1, 0), "n_clips"),
        (lambda t: degrade_sound(np.zeros(10), 3), "Generator"),
        (lambda t: degrade_video_frames(np.zeros((4, 4)), np.random.default_rng()), "frames"),
        (lambda t: snr_noise(np.zeros(10), float("nan"), 0), "snr_db"),
    ],
)
def test_errors(call, match):
    track = render_clip("Grow", 0, size=SIZE, frames=8).track
    with pytest.raises(SpikesimError, match=match):
        call(track)


# -- spoken digits (optional) ---------------------------------------------------------------


@pytest.mark.skipif(not has_espeak(), reason="espeak-ng is not installed (optional, GPL)")
def test_spoken_digits():
    words = [spoken_digit(d, RATE, seed=0) for d in range(3)]
    for w in words:
        assert w.dtype == np.float32 and 0.2 * RATE < w.size < 2.0 * RATE
        assert np.abs(w).max() > 0.05
    np.testing.assert_array_equal(words[1], spoken_digit(1, RATE, seed=0))
    assert not np.array_equal(words[1], spoken_digit(1, RATE, seed=9))
    with pytest.raises(SpikesimError, match="digit"):
        spoken_digit(10)


def test_synth_audio_writes_a_sound_per_clip_and_corrupts_a_third_of_each_modality(
    tmp_path: Path,
) -> None:
    import json
    from collections import Counter

    from spikesim import read_audio, synthesize

    out = synthesize(
        tmp_path / "av", classes=2, clips_per_class=6, size=(32, 32), frames=8, fps=12.5,
        audio=True, corrupt=True,
    )  # fmt: skip
    rows = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    for row in rows:
        wave, rate = read_audio(out / row["audio"], sample_rate=None)
        assert rate == 16000 and len(wave) == round(8 / 12.5 * 16000)
    shares = Counter(r["corruption"] for r in rows)
    assert shares["video"] == shares["audio"] == shares["none"] == 4
    with pytest.raises(SpikesimError, match="needs audio"):
        synthesize(tmp_path / "x", classes=2, clips_per_class=2, size=(32, 32), frames=8,
                   corrupt=True)  # fmt: skip
