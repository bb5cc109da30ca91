"""Sound in spikesim: reading sound tracks, WAV files, spectrograms against a direct DFT,
and audio spikes (the integrate-and-fire encoder and the ON/OFF rule) against references."""

from __future__ import annotations

import math
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from spikesim.audio import (
    AudioError,
    audio_spikes,
    mel_filterbank,
    mel_spectrogram,
    n_spectrogram_frames,
    onoff_events,
    probe_audio,
    read_audio,
    spectrogram_intensity,
    stft_spectrogram,
    write_wav,
)
from spikesim.errors import SpikesimError, VideoError

from .naive_audio import htk_mel, naive_onoff, naive_power_spectrogram
from .naive_encode import naive_encode

av = pytest.importorskip("av", reason="PyAV (pip install av) reads sound tracks")

REAL_CLIP = Path("ucf101-mini/SoccerJuggling/v_SoccerJuggling_g23_c01.avi")
SILENT_CLIP = Path("ucf101-mini/Basketball/v_Basketball_g01_c01.avi")


def sine(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def mux_with_sound(src: Path, dst: Path, sound: np.ndarray, rate: int, codec: str) -> None:
    """Copy the video packets of ``src`` untouched (the real footage) into ``dst`` and add a
    sound track ``sound`` (C, N) float in [-1, 1] encoded with ``codec``."""
    layout = "stereo" if sound.shape[0] == 2 else "mono"
    with av.open(str(src), metadata_errors="replace") as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        aout = out.add_stream(codec, rate=rate, layout=layout)
        for packet in inp.demux(vin):
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = vout
            out.mux(packet)
        if codec == "pcm_s16le":
            data, fmt = (np.round(sound * 32767).astype(np.int16).T.reshape(1, -1), "s16")
            step = 1024 * sound.shape[0]
        else:
            data, fmt, step = np.ascontiguousarray(sound, np.float32), "fltp", 1024
        for i in range(0, data.shape[1], step):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data[:, i : i + step]), format=fmt, layout=layout
            )
            frame.sample_rate = rate
            frame.pts = i // (sound.shape[0] if fmt == "s16" else 1)
            for packet in aout.encode(frame):
                out.mux(packet)
        for packet in aout.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def sound_track() -> tuple[np.ndarray, int]:
    """4 s of stereo at 22.05 kHz: a 440 Hz tone on the left, 1 kHz on the right."""
    rate = 22050
    return np.stack([sine(440, 4.0, rate, 0.6), sine(1000, 4.0, rate, 0.3)]), rate


@pytest.fixture(scope="module")
def clip_with_sound(clips_dir, sound_track, tmp_path_factory) -> Path:
    """A real UCF101 clip (none of the shared ones carries sound) with the sound track muxed
    in: .mkv, 16-bit PCM, so the samples read back exactly."""
    dst = tmp_path_factory.mktemp("av") / "soccer_with_sound.mkv"
    mux_with_sound(clips_dir / REAL_CLIP, dst, *sound_track, "pcm_s16le")
    return dst


# -- reading --------------------------------------------------------------------------------


def test_shared_clips_have_no_sound(real_clips):
    # Recorded here because it is why the tests mux a sound track in themselves.
    assert [probe_audio(p).has_audio for p in real_clips] == [False] * len(real_clips)


def test_video_without_sound_is_one_line_error(clips_dir):
    with pytest.raises(AudioError, match="has no sound track") as info:
        read_audio(clips_dir / SILENT_CLIP)
    assert isinstance(info.value, VideoError) and "\n" not in str(info.value)
    info = probe_audio(clips_dir / SILENT_CLIP)
    assert (info.has_audio, info.sample_rate, info.channels) == (False, 0, 0)


def test_probe(clip_with_sound):
    info = probe_audio(clip_with_sound)
    assert info.has_audio and info.sample_rate == 22050 and info.channels == 2
    assert info.codec == "pcm_s16le"
    # Matroska does not give the track's own duration: the container's (the 8 s video) it is
    assert info.duration == pytest.approx(8.0, abs=0.1)


def test_read_native_rate_is_exact(clip_with_sound, sound_track):
    sound, rate = sound_track
    got, got_rate = read_audio(clip_with_sound, sample_rate=None, mono=False)
    assert got_rate == rate and got.dtype == np.float32 and got.shape == sound.shape
    want = np.round(sound * 32767) / 32768  # FFmpeg's s16 -> float: x / 32768
    np.testing.assert_allclose(got, want, atol=1e-6)
    mono, _ = read_audio(clip_with_sound, sample_rate=None)
    np.testing.assert_allclose(mono, want.mean(axis=0), atol=1e-6)


def test_read_resampled_keeps_pitch_and_length(clip_with_sound):
    x, rate = read_audio(clip_with_sound, sample_rate=16000, mono=False)
    assert rate == 16000 and x.shape == (2, 64000)
    assert np.abs(x).max() <= 1.0
    for channel, freq in ((0, 440), (1, 1000)):
        spec = stft_spectrogram(x[channel], rate, n_fft=1024, hop_length=512)
        peak = np.median(spec[4:-4].argmax(axis=1)) * rate / 1024
        assert peak == pytest.approx(freq, abs=rate / 1024)


def test_read_window_is_exact_slice(clip_with_sound):
    whole, _ = read_audio(clip_with_sound)
    for start, duration in ((0.0, 0.5), (1.0, 0.25), (2.7, 1.0), (0.013, 0.1)):
        part, _ = read_audio(clip_with_sound, start=start, duration=duration)
        a = round(start * 16000)
        np.testing.assert_array_equal(part, whole[a : a + round(duration * 16000)])
    tail, _ = read_audio(clip_with_sound, start=3.5, duration=2.0)
    assert tail.size == whole.size - 56000  # past the end: what there is
    with pytest.raises(AudioError, match="no samples after 5 s"):
        read_audio(clip_with_sound, start=5.0)


def test_read_aac_in_mp4(clips_dir, tmp_path):
    dst = tmp_path / "wave.mp4"
    sound = sine(1000, 2.0, 44100)[None]
    mux_with_sound(clips_dir / "hmdb51-mini/wave/RATRACE_wave_f_nm_np1_fr_goo_37.avi", dst,
                   sound, 44100, "aac")  # fmt: skip
    info = probe_audio(dst)
    assert (info.codec, info.channels, info.sample_rate) == ("aac", 1, 44100)
    assert info.duration == pytest.approx(2.0, abs=0.05)  # MP4 gives the track's own
    x, rate = read_audio(dst)
    assert abs(x.size - 32000) < 0.05 * 32000  # AAC adds encoder priming
    spec = stft_spectrogram(x, rate)
    assert np.median(spec[10:-10].argmax(axis=1)) == 32  # 1000 Hz = bin 32 of 512 at 16 kHz


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 8000.5}, "sample_rate"),
        ({"start": -1.0}, "start"),
        ({"duration": 0.0}, "duration"),
        ({"start": float("nan")}, "start"),
    ],
)
def test_read_bad_arguments(clip_with_sound, kwargs, match):
    with pytest.raises(SpikesimError, match=match):
        read_audio(clip_with_sound, **kwargs)


def test_read_missing_and_garbage_files(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "nope.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(AudioError, match="cannot open it as a media file"):
        probe_audio(junk)


# -- writing --------------------------------------------------------------------------------


def test_write_wav_round_trip(tmp_path):
    x = np.stack([sine(300, 0.5, 16000), -sine(700, 0.5, 16000, 0.9)])
    path = write_wav(tmp_path / "s.wav", x, 16000)
    with wave.open(str(path)) as fh:
        assert (fh.getnchannels(), fh.getsampwidth(), fh.getframerate()) == (2, 2, 16000)
        assert fh.getnframes() == 8000
    back, rate = read_audio(path, sample_rate=None, mono=False)
    assert rate == 16000
    np.testing.assert_allclose(back, np.round(x * 32767) / 32768, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.wav"]  # no temporary left


def test_write_wav_refuses_to_overwrite(tmp_path):
    path = write_wav(tmp_path / "a.wav", sine(440, 0.1, 16000), 16000)
    before = path.read_bytes()
    with pytest.raises(AudioError, match="exists"):
        write_wav(path, np.zeros(10, np.float32), 16000)
    assert path.read_bytes() == before
    write_wav(path, np.zeros(10, np.float32), 16000, overwrite=True)
    assert path.read_bytes() != before


def test_write_wav_clips_and_validates(tmp_path):
    path = write_wav(tmp_path / "loud.wav", np.array([2.0, -3.0, 0.5]), 8000)
    with wave.open(str(path)) as fh:
        pcm = np.frombuffer(fh.readframes(3), "<i2")
    assert pcm.tolist() == [32767, -32767, 16384]
    for bad in (np.zeros((2, 2, 2)), np.array([np.nan]), np.zeros(0), [0.0, 1.0]):
        with pytest.raises(SpikesimError):
            write_wav(tmp_path / "bad.wav", bad, 8000)


# -- spectrograms ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "n_fft", "hop", "window"),
    [(300, 32, 10, "hann"), (257, 64, 64, "hamming"), (40, 16, 7, "rect"), (10, 32, 4, "hann")],
)
def test_stft_matches_direct_dft(n, n_fft, hop, window):
    x = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    want = naive_power_spectrogram(x, n_fft, hop, window)
    got = stft_spectrogram(x, 16000, n_fft=n_fft, hop_length=hop, window=window, log=False)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert got.shape[0] == n_spectrogram_frames(n, hop) == 1 + n // hop
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    db = stft_spectrogram(x, 16000, n_fft=n_fft, hop_length=hop, window=window, eps=1e-6)
    np.testing.assert_allclose(db, 10 * np.log10(want + 1e-6), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(("freq", "n_fft"), [(1000.0, 512), (2500.0, 512), (440.0, 1024)])
def test_stft_sine_peaks_in_its_bin(freq, n_fft):
    spec = stft_spectrogram(sine(freq, 1.0, 16000), 16000, n_fft=n_fft)
    inner = spec[5:-5]  # frames that lie wholly inside the signal
    assert (inner.argmax(axis=1) == round(freq * n_fft / 16000)).all()


def test_mel_filterbank_is_htk_triangles():
    fb = mel_filterbank(16000, 512, 40, fmin=50.0, fmax=7000.0)
    assert fb.shape == (40, 257) and fb.dtype == np.float32
    assert fb.min() == 0.0 and fb.max() <= 1.0 and (fb.max(axis=1) > 0.5).all()
    freqs = np.arange(257) * 16000 / 512
    points = np.linspace(htk_mel(50.0), htk_mel(7000.0), 42)
    centres = [700 * (10 ** (m / 2595) - 1) for m in points[1:-1]]
    # the heaviest bin of each band is the bin nearest its centre (on either side)
    for j, c in enumerate(centres):
        assert abs(freqs[fb[j].argmax()] - c) <= 16000 / 512
    # a band is zero at and beyond the centres of its neighbours
    edges = [700 * (10 ** (m / 2595) - 1) for m in points]
    for j in range(40):
        outside = (freqs <= edges[j]) | (freqs >= edges[j + 2])
        assert (fb[j][outside] < 1e-6).all()


def test_mel_sine_peaks_in_nearest_band():
    points = np.linspace(0.0, htk_mel(8000.0), 66)[1:-1]
    centres = 700 * (10 ** (points / 2595) - 1)
    for freq in (300.0, 1000.0, 3000.0, 6000.0):
        mel = mel_spectrogram(sine(freq, 0.5, 16000), 16000)
        assert mel.shape == (51, 64)
        assert (mel[5:-5].argmax(axis=1) == np.abs(centres - freq).argmin()).all()


def test_mel_is_filterbank_times_power():
    x = np.random.default_rng(1).standard_normal(4000).astype(np.float32) * 0.1
    power = stft_spectrogram(x, 16000, log=False).astype(np.float64)
    fb = mel_filterbank(16000, 512, 64).astype(np.float64)
    got = mel_spectrogram(x, 16000, log=False)
    np.testing.assert_allclose(got, power @ fb.T, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stft_spectrogram(np.zeros((2, 100)), 16000), r"\(N,\) mono"),
        (lambda: stft_spectrogram(np.zeros(0), 16000), "non-empty"),
        (lambda: stft_spectrogram(np.array([np.inf, 0.0]), 16000), "NaN or infinite"),
        (lambda: stft_spectrogram(np.zeros(100), 16000, n_fft=511), "even"),
        (lambda: stft_spectrogram(np.zeros(100), 16000, hop_length=0), "hop_length"),
        (lambda: stft_spectrogram(np.zeros(100), 16000, window="kaiser"), "window"),
        (lambda: mel_filterbank(16000, 64, 128), "hold no FFT bin"),
        (lambda: mel_filterbank(16000, 512, 64, fmax=9000), "fmax"),
        (lambda: mel_spectrogram(np.zeros(100), 16000, eps=0), "eps"),
    ],
)
def test_spectrogram_errors(call, match):
    with pytest.raises(SpikesimError, match=match):
        call()


def test_spectrogram_speed_on_10_seconds():
    x = np.random.default_rng(0).standard_normal(160000).astype(np.float32) * 0.1
    mel_spectrogram(x, 16000)  # warm the caches
    t0 = time.perf_counter()
    spec = mel_spectrogram(x, 16000)
    elapsed = time.perf_counter() - t0
    assert spec.shape == (1001, 64)
    assert elapsed < 1.0, f"mel spectrogram of 10 s took {elapsed:.3f} s"


# -- audio to spikes ------------------------------------------------------------------------


def test_intensity_normalisation():
    spec = np.array([[-100.0, -30.0], [0.0, -80.0]], np.float32)
    got = spectrogram_intensity(spec, top_db=80.0)
    np.testing.assert_allclose(got, [[0.0, 50 / 80], [1.0, 0.0]])
    # the recording level does not matter
    np.testing.assert_array_equal(spectrogram_intensity(spec + 17.0), got)


def test_if_mode_is_the_encoder_on_intensities():
    rng = np.random.default_rng(3)
    spec = rng.uniform(-90, -10, (40, 12)).astype(np.float32)
    got = audio_spikes(spec, mode="if", threshold=1.5, seed=7)
    intensity = spectrogram_intensity(spec)
    want = naive_encode(intensity[:, None, :], threshold=1.5, init="random", seed=7)[:, 0]
    assert got.dtype == np.bool_ and got.shape == (40, 12)
    np.testing.assert_array_equal(got, want)
    held = audio_spikes(spec, mode="if", threshold=1.5, seed=7, steps_per_frame=3)
    want3 = naive_encode(np.repeat(intensity, 3, axis=0)[:, None], threshold=1.5, seed=7)[:, 0]
    np.testing.assert_array_equal(held, want3)


def test_onoff_matches_reference():
    rng = np.random.default_rng(5)
    spec = np.cumsum(rng.normal(0, 4, (60, 9)), axis=0).astype(np.float32) - 40
    spec[:, 3] = -120.0  # a silent channel under the floor: no events
    for theta, top in ((3.0, 80.0), (1.0, 20.0), (7.5, 200.0)):
        got = onoff_events(spec, theta=theta, top_db=top)
        assert got.dtype == np.uint8 and got.shape == (60, 2, 9)
        np.testing.assert_array_equal(got, naive_onoff(spec, theta, top))
        assert got[:, :, 3].sum() == 0 and got[0].sum() == 0
    np.testing.assert_array_equal(audio_spikes(spec, mode="onoff"), onoff_events(spec))


def test_onoff_counts_a_ramp():
    # +10 dB per frame with theta 3: the memorised level lags, 3 or 4 events per frame,
    # and in all floor(total rise / theta) ON events and no OFF ones
    spec = (np.arange(11, dtype=np.float32) * 10.0)[:, None] - 100.0
    ev = onoff_events(spec, theta=3.0, top_db=200.0)
    assert ev[:, 1].sum() == 0 and ev[:, 0].sum() == math.floor(100 / 3)
    assert set(ev[1:, 0, 0].tolist()) <= {3, 4}
    down = onoff_events(spec[::-1].copy(), theta=3.0, top_db=200.0)
    assert down[:, 0].sum() == 0 and down[:, 1].sum() == 33


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "dvs"}, "mode"),
        ({"threshold": 0.0}, "threshold"),
        ({"mode": "onoff", "theta": -1.0}, "theta"),
        ({"top_db": float("inf")}, "top_db"),
        ({"steps_per_frame": 0}, "steps_per_frame"),
    ],
)
def test_audio_spikes_errors(kwargs, match):
    with pytest.raises(SpikesimError, match=match):
        audio_spikes(np.zeros((4, 3), np.float32), **kwargs)
    with pytest.raises(SpikesimError, match="spec"):
        audio_spikes(np.zeros((4, 3, 2), np.float32))


# -- a real clip end to end -----------------------------------------------------------------


def test_real_clip_sound_to_spikes(clip_with_sound):
    """Real footage with a sound track: sound -> log-mel -> spikes in both modes. The bands of
    the two tones (440 Hz, 1 kHz) fire far more than the rest."""
    x, rate = read_audio(clip_with_sound, sample_rate=16000)
    mel = mel_spectrogram(x, rate, n_mels=64)
    assert mel.shape == (n_spectrogram_frames(x.size, 160), 64)
    spikes = audio_spikes(mel, mode="if", threshold=2.0, seed=1)
    assert spikes.shape == mel.shape and spikes.dtype == np.bool_
    rates = spikes.mean(axis=0)
    points = np.linspace(0.0, htk_mel(8000.0), 66)[1:-1]
    centres = 700 * (10 ** (points / 2595) - 1)
    tone_bands = [int(np.abs(centres - f).argmin()) for f in (440, 1000)]
    assert all(rates[b] > 0.45 for b in tone_bands)  # full intensity: every 2nd step
    assert np.median(rates) < 0.2
    # ON/OFF: a steady tone is silent except where the zero padding of the first and last
    # frames makes its level rise (ON) and fall (OFF) by ~4.5 dB
    events = audio_spikes(mel, mode="onoff", theta=1.0)
    assert events.shape == (mel.shape[0], 2, 64)
    assert events[10:-10, :, tone_bands].sum() == 0
    assert all(events[:3, 0, b].sum() > 0 and events[-3:, 1, b].sum() > 0 for b in tone_bands)
