"""The DVS pixel model (spikesim.dvs): its equations, its streaming, and its slow reference."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikesim.dvs import DVS_PRESETS, EVENT_DTYPE, DVSEncoder, DVSModel, dvs, resolve_dvs
from spikesim.errors import SpikesimError

from .naive_dvs import naive_dvs

ROOT = Path(__file__).resolve().parents[2]
# Strong, unrealistic settings so that every code path runs on small inputs: thresholds
# clipped at the 0.01 floor, low-pass, leak with jitter and spread, frequent shot noise that
# hits the 0.5 cap, and a refractory period longer than many candidate spacings.
HARSH = DVSModel(
    threshold_on=0.1,
    threshold_off=0.15,
    threshold_sigma=0.08,
    cutoff_hz=8.0,
    leak_hz=3.0,
    leak_jitter=0.5,
    leak_spread_decades=0.5,
    shot_hz=20.0,
    refractory_s=0.004,
)
MODELS = {**DVS_PRESETS, "harsh": HARSH}


def rows(events: np.ndarray) -> np.ndarray:
    """Structured events -> (n, 4) int64 [t, x, y, p], the layout of the reference."""
    return np.stack([events[k].astype(np.int64) for k in ("t", "x", "y", "p")], axis=1)


def random_frames(shape, dtype, seed=0) -> np.ndarray:
    """A random walk of intensities: changes of a few thresholds per frame, some dark pixels."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.25, shape).cumsum(axis=0)
    x = np.clip(np.exp(steps) * rng.uniform(0.02, 0.5, shape[1:]), 0.0, 1.0)
    return (x * 255).round().astype(np.uint8) if dtype == np.uint8 else x.astype(dtype)


def log_frames(levels: np.ndarray) -> np.ndarray:
    """Frames whose log intensity ln(Y) follows ``levels`` (T, H, W), as float64 x = Y / 255."""
    return np.exp(levels) / 255.0


# -- against the slow reference ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_kernel_matches_reference(name, dtype):
    frames = random_frames((14, 6, 11), dtype, seed=len(name))
    model = MODELS[name]
    got = dvs(frames, fps=40.0, preset=model, seed=5)
    want = naive_dvs(frames, fps=40.0, model=model.to_dict(), seed=5)
    assert len(want) > 50
    np.testing.assert_array_equal(rows(got), want)


def test_every_path_of_the_harsh_model_runs():
    frames = random_frames((14, 6, 11), np.float32, seed=len("harsh"))
    enc = DVSEncoder(6, 11, fps=40.0, preset=HARSH, seed=5)
    assert (enc.thresholds[0] == 0.01).any()  # the threshold floor is reached
    assert enc.leak_rates.std() > 0
    ev = enc.push(frames)
    assert {1, -1} <= set(ev["p"].tolist())
    gaps = [np.diff(ev["t"][(ev["x"] == x) & (ev["y"] == y)]) for y in range(6) for x in range(11)]
    gaps = np.concatenate(gaps)
    assert gaps.min() >= 4000  # the refractory period held
    # Candidates closer than the refractory period existed, so some were dropped.
    assert len(ev) < len(dvs(frames, fps=40.0, preset=HARSH, seed=5, refractory_s=0.0))


@pytest.mark.parametrize("nblocks", [1, 2, 3, 7])
def test_block_count_does_not_change_the_bytes(nblocks):
    frames = random_frames((9, 40, 70), np.uint8, seed=3)
    want = naive_dvs(frames[:, :3], fps=25.0, model=HARSH.to_dict(), seed=1)
    enc = DVSEncoder(40, 70, fps=25.0, preset=HARSH, seed=1)
    enc._nblocks = nblocks
    got = enc.push(frames)
    one = DVSEncoder(40, 70, fps=25.0, preset=HARSH, seed=1)
    one._nblocks = 1
    np.testing.assert_array_equal(got, one.push(frames))
    np.testing.assert_array_equal(rows(got[got["y"] < 3]), want)


@pytest.mark.parametrize("fps", [30.0, 5000.0])
def test_counting_sort_and_merge_sort_agree(fps):
    frames = random_frames((12, 30, 40), np.uint8, seed=8)
    results = []
    for modes in ((0, 0), (10**6, 10**6)):  # never / always the counting sort
        enc = DVSEncoder(30, 40, fps=fps, preset=HARSH, seed=2, cutoff_hz=0.0)
        enc._sort_modes = modes
        results.append(enc.push(frames))
    np.testing.assert_array_equal(results[0], results[1])
    assert len(results[0]) > 1000


# -- the equations ----------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 2, 5, 10, 37])
def test_log_ramp_of_one_gives_exactly_five_on_events(steps):
    # Start levels 21..90: lin-log is ln(Y) there, and Y e stays below 255.
    start = np.log(np.linspace(21.0, 90.0, 48)).reshape(6, 8)
    ramp = np.linspace(0.0, 1.0, steps + 1)
    levels = start + np.concatenate([ramp, np.ones(5)])[:, None, None]
    ev = dvs(log_frames(levels), fps=30.0, threshold_sigma=0.0)
    counts = np.zeros((6, 8), int)
    np.add.at(counts, (ev["y"], ev["x"]), 1)
    assert (counts == 5).all()
    assert (ev["p"] == 1).all()


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_darkening_ramp_gives_five_off_events(steps):
    start = np.log(np.linspace(60.0, 250.0, 48)).reshape(6, 8)
    ramp = np.linspace(0.0, -1.0, steps + 1)
    levels = start + np.concatenate([ramp, -np.ones(3)])[:, None, None]
    ev = dvs(log_frames(levels), fps=30.0, threshold_sigma=0.0)
    assert len(ev) == 5 * 48
    assert (ev["p"] == -1).all()


def test_static_scene_gives_no_events_with_clean():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (16, 24), dtype=np.uint8)
    for frames in (np.repeat(image[None], 30, 0), np.repeat(image[None] / 255.0, 30, 0)):
        assert len(dvs(frames, fps=30.0, preset="clean", seed=4)) == 0


def test_linear_part_below_grey_level_twenty():
    # L = Y ln(20)/20 below 20: from 2 to 18 it rises by 16 ln(20)/20 = 2.397 = 11.98 thresholds.
    frames = np.array([2, 18, 18], np.uint8).reshape(3, 1, 1)
    ev = dvs(frames, fps=30.0, threshold_sigma=0.0)
    assert len(ev) == math.floor(16 * math.log(20) / 20 / 0.2) == 11
    frames = np.array([18, 2], np.uint8).reshape(2, 1, 1)
    assert (dvs(frames, fps=30.0, threshold_sigma=0.0)["p"] == -1).sum() == 11


def test_events_are_spread_evenly_in_the_interval():
    levels = np.log(np.array([40.0, 40.0, 40.0 * math.e]))[:, None, None]
    ev = dvs(log_frames(levels), fps=100.0, threshold_sigma=0.0)
    # Frame 1 at 10 000 us, frame 2 at 20 000 us: five events at 12, 14, 16, 18, 20 ms.
    assert ev["t"].tolist() == [12000, 14000, 16000, 18000, 20000]


def test_threshold_on_and_off_are_separate():
    levels = np.log(np.array([40.0, 40.0 * math.e, 40.0]))[:, None, None]
    ev = dvs(log_frames(levels), fps=30.0, threshold_sigma=0.0, threshold_on=0.5,
             threshold_off=0.25)  # fmt: skip
    # Up by 1.0: 2 ON (B rises by 1.0); back down by 1.0: 4 OFF.
    assert ev["p"].tolist() == [1, 1, -1, -1, -1, -1]


def test_refractory_period_drops_candidates_and_delays_the_rest():
    levels = np.log(np.array([40.0, 40.0 * math.e, 40.0 * math.e, 40.0 * math.e]))
    frames = log_frames(levels[:, None, None])
    ev = dvs(frames, fps=100.0, threshold_sigma=0.0, refractory_s=0.003)
    # Candidates at 2, 4, 6, 8, 10 ms: 4 and 8 fall within 3 ms of an event; the two
    # thresholds left come in the next interval at 15 and 20 ms.
    assert ev["t"].tolist() == [2000, 6000, 10000, 15000, 20000]
    assert (ev["p"] == 1).all()


def test_memorised_level_moves_by_the_emitted_events_only():
    frames = random_frames((25, 12, 10), np.float32, seed=9)
    enc = DVSEncoder(12, 10, fps=30.0, preset="clean", seed=2)
    ev = enc.push(frames)
    on, off = enc.thresholds
    n_on = np.zeros((12, 10))
    n_off = np.zeros((12, 10))
    np.add.at(n_on, (ev["y"][ev["p"] > 0], ev["x"][ev["p"] > 0]), 1)
    np.add.at(n_off, (ev["y"][ev["p"] < 0], ev["x"][ev["p"] < 0]), 1)
    first = np.log(np.maximum(frames[0].astype(np.float64) * 255.0, 20.0))
    dark = frames[0] * 255.0 <= 20.0
    first[dark] = frames[0][dark] * 255.0 * math.log(20.0) / 20.0
    np.testing.assert_allclose(enc.memorised_level, first + n_on * on - n_off * off, atol=1e-9)
    last = frames[-1].astype(np.float64) * 255.0
    level = np.where(last <= 20.0, last * math.log(20.0) / 20.0, np.log(np.maximum(last, 1e-9)))
    residual = level - enc.memorised_level
    assert (residual < on + 1e-6).all() and (residual > -off - 1e-6).all()


def test_leak_fires_on_events_at_its_rate():
    frames = np.full((100, 4, 6), 120, np.uint8)
    ev = dvs(frames, fps=30.0, threshold_sigma=0.0, leak_hz=1.0)
    # B falls by theta every second (30 frames): 99 intervals = 3.3 thresholds -> 3 ON each.
    assert len(ev) == 3 * 24 and (ev["p"] == 1).all()
    assert sorted(set(ev["t"].tolist())) == [1_000_000, 2_000_000, 3_000_000]


def test_leak_spread_and_jitter_keep_the_mean_rate():
    frames = np.full((301, 32, 32), 120, np.uint8)
    ev = dvs(frames, fps=30.0, threshold_sigma=0.0, leak_hz=0.5, leak_jitter=0.1,
             leak_spread_decades=0.1, seed=3)  # fmt: skip
    # Log-normal in decades: mean rate = 0.5 exp((0.1 ln 10)^2 / 2) per pixel, over 10 s.
    mean = 0.5 * math.exp((0.1 * math.log(10)) ** 2 / 2) * 10.0
    assert len(ev) / 1024 == pytest.approx(mean, abs=0.6)  # floor() loses < 1 per pixel


def test_low_pass_spreads_a_step_over_later_intervals():
    frames = np.concatenate([np.full(2, 50), np.full(200, 200)]).astype(np.uint8)[:, None, None]
    sharp = dvs(frames, fps=1000.0, threshold_sigma=0.0)
    slow = dvs(frames, fps=1000.0, threshold_sigma=0.0, cutoff_hz=30.0)
    assert len(sharp) == len(slow) == math.floor(math.log(4.0) / 0.2)
    assert ((sharp["t"] > 1000) & (sharp["t"] <= 2000)).all()  # all in the step's interval
    # First interval: eps = (200 + 20) / 275 * 2 pi 30 / 1000 = 0.151 of ln 4 = 0.209 -> one.
    assert (slow["t"] <= 2000).sum() == 1
    assert slow["t"].max() > 5000


def test_shot_noise_rates_within_binomial_bounds():
    # Left half black, right half white; p per polarity and frame = (R/2) dt f(Y).
    frames = np.zeros((121, 32, 32), np.uint8)
    frames[:, :, 16:] = 255
    shot_hz, fps = 6.0, 30.0
    ev = dvs(frames, fps=fps, threshold_sigma=0.0, shot_hz=shot_hz, seed=8)
    trials = 120 * 32 * 16
    for bright, level in ((False, 0.0), (True, 255.0)):
        p = shot_hz / 2 / fps * (-0.75 * (level + 20) / 275 + 1)
        side = (ev["x"] >= 16) == bright
        for pol in (1, -1):
            count = int(((ev["p"] == pol) & side).sum())
            assert abs(count - trials * p) < 5 * math.sqrt(trials * p * (1 - p)), (bright, pol)
    assert np.isin(ev["t"], [round(a * 1e6 / fps) for a in range(121)]).all()  # at frame ends


def test_refractory_period_thins_shot_noise_as_predicted():
    # A period of 1.5 frames blocks the frame after each event (noise events come at the
    # frame's end): a pixel free at frame a fires with p, so free_{a+1} = 1 - free_a p.
    shot_hz, fps, n_frames = 12.0, 30.0, 151
    frames = np.full((n_frames, 32, 32), 100, np.uint8)
    ev = dvs(frames, fps=fps, threshold_sigma=0.0, shot_hz=shot_hz, refractory_s=1.5 / fps,
             seed=2)  # fmt: skip
    p = 2 * shot_hz / 2 / fps * (-0.75 * 120 / 275 + 1)
    free, expected = 1.0, 0.0
    for _ in range(n_frames - 1):
        expected += free * p
        free = 1.0 - free * p
    trials = (n_frames - 1) * 1024
    rate = expected / (n_frames - 1)
    assert abs(len(ev) - expected * 1024) < 5 * math.sqrt(trials * rate * (1 - rate))
    assert len(ev) < 0.9 * trials * p  # far fewer than without the refractory period
    key = ev["y"].astype(np.int64) * 32 + ev["x"]
    order = np.lexsort((ev["t"], key))
    same = np.diff(key[order]) == 0
    assert (np.diff(ev["t"][order])[same] >= 50_000).all()


# -- streaming, threads, seeds ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["clean", "noisy", "harsh"])
def test_chunks_give_the_bytes_of_one_push(name):
    frames = random_frames((70, 9, 13), np.float32, seed=4)
    whole = dvs(frames, fps=30.0, preset=MODELS[name], seed=6)
    for size in (1, 3, 33):
        enc = DVSEncoder(9, 13, fps=30.0, preset=MODELS[name], seed=6)
        parts = [enc.push(frames[a : a + size]) for a in range(0, 70, size)]
        assert enc.frames_done == 70
        np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert len(whole) > 1000


def _digest(events: np.ndarray) -> str:
    return hashlib.sha256(events.tobytes()).hexdigest()


_THREAD_SCRIPT = """
import hashlib, numba, numpy as np
from spikesim.dvs import DVSEncoder, DVSModel
from tests.spikesim.test_dvs import HARSH, random_frames
assert numba.get_num_threads() == 2
enc = DVSEncoder(48, 80, fps=30.0, preset=HARSH, seed=11)
events = enc.push(random_frames((20, 48, 80), np.uint8, seed=12))
print(hashlib.sha256(events.tobytes()).hexdigest())
"""


def test_two_threads_give_the_bytes_of_one():
    enc = DVSEncoder(48, 80, fps=30.0, preset=HARSH, seed=11)
    enc._nblocks = 1
    want = _digest(enc.push(random_frames((20, 48, 80), np.uint8, seed=12)))
    env = {**os.environ, "NUMBA_NUM_THREADS": "2", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _THREAD_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == want


def test_same_seed_same_bytes_other_seed_other_bytes():
    frames = random_frames((12, 10, 10), np.uint8, seed=1)
    a = dvs(frames, fps=30.0, preset="noisy", seed=1)
    assert _digest(a) == _digest(dvs(frames, fps=30.0, preset="noisy", seed=1))
    assert _digest(a) != _digest(dvs(frames, fps=30.0, preset="noisy", seed=2))


def test_each_noise_has_its_own_stream():
    # Switching shot noise on must not move the thresholds or the leak pattern.
    a = DVSEncoder(8, 8, fps=30.0, preset="noisy", seed=3)
    b = DVSEncoder(8, 8, fps=30.0, preset="noisy", seed=3, shot_hz=0.0)
    np.testing.assert_array_equal(a.thresholds[0], b.thresholds[0])
    np.testing.assert_array_equal(a.leak_rates, b.leak_rates)
    assert not np.array_equal(a.thresholds[0], a.thresholds[1])


def test_threshold_mismatch_statistics():
    on, off = DVSEncoder(200, 200, fps=30.0, preset="noisy", seed=0).thresholds
    for thr in (on, off):
        assert thr.mean() == pytest.approx(0.2, abs=0.001)
        assert thr.std() == pytest.approx(0.05, rel=0.02)
    assert np.corrcoef(on.ravel(), off.ravel())[0, 1] == pytest.approx(0.0, abs=0.02)


# -- inputs -----------------------------------------------------------------------------------


def test_bgr_frames_use_the_luma_of_spikesim_video():
    from spikesim.video import to_luma

    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (6, 10, 12, 3), dtype=np.uint8)
    luma = np.stack([to_luma(f) for f in bgr])
    got = dvs(bgr, fps=30.0, seed=1)
    assert len(got) > 0
    np.testing.assert_array_equal(got, dvs(luma, fps=30.0, seed=1))


def test_uint8_is_grey_levels_and_float_is_over_255():
    frames = random_frames((10, 8, 8), np.uint8, seed=2)
    a = dvs(frames, fps=30.0, seed=1)
    b = dvs(frames / 255.0, fps=30.0, seed=1)
    assert abs(len(a) - len(b)) <= 2  # 255 (Y / 255) may round one ulp off Y


def test_first_frame_gives_no_events_and_times_follow_fps():
    enc = DVSEncoder(4, 4, fps=29.97, preset="clean")
    assert len(enc.push(np.full((1, 4, 4), 0.9, np.float32))) == 0
    ev = enc.push(np.full((1, 4, 4), 0.1, np.float32))
    assert (ev["t"] <= enc.frame_time_us(1)).all()
    assert enc.frame_time_us(1) == round(1e6 / 29.97) == 33367
    assert enc.frame_time_us(3000) == round(3000 * 1e6 / 29.97)


def test_real_clip_gives_events_at_moving_edges(real_clips):
    from spikesim import iter_frames

    frames = np.stack(list(itertools.islice(iter_frames(real_clips[0], size=(120, 160)), 12)))
    enc = DVSEncoder(120, 160, fps=25.0, preset="clean", seed=0)
    ev = enc.push(frames)
    assert {1, -1} <= set(ev["p"].tolist())
    y = frames.astype(np.float64) * 255.0
    level = np.where(y <= 20.0, y * math.log(20.0) / 20.0, np.log(np.maximum(y, 1e-12)))
    # A pixel whose level never leaves the first frame's by its smallest threshold cannot fire.
    on, off = enc.thresholds
    drift = np.abs(level - level[0]).max(axis=0)
    counts = np.zeros((120, 160), int)
    np.add.at(counts, (ev["y"], ev["x"]), 1)
    assert counts[drift < np.minimum(on, off) - 1e-6].sum() == 0
    # Events gather where the image moves: the 10 % of pixels that change most hold most.
    change = np.abs(np.diff(level, axis=0)).sum(axis=0)
    busiest = change >= np.quantile(change, 0.9)
    assert counts[busiest].sum() > 0.5 * counts.sum()
    assert np.corrcoef(change.ravel(), counts.ravel())[0, 1] > 0.7


# -- interface and errors ---------------------------------------------------------------------


def test_events_dtype_order_and_empty_push():
    ev = dvs(random_frames((8, 9, 7), np.uint8, seed=7), fps=30.0, preset="noisy")
    assert ev.dtype == EVENT_DTYPE
    key = np.lexsort((ev["x"], ev["y"], ev["t"]))
    np.testing.assert_array_equal(key, np.arange(len(ev)))  # sorted by (t, y, x)
    enc = DVSEncoder(9, 7, fps=30.0)
    assert enc.push(np.empty((0, 9, 7), np.uint8)).dtype == EVENT_DTYPE
    assert enc.frames_done == 0


def test_settings_are_json_for_the_sidecar():
    enc = DVSEncoder(8, 8, fps=30.0, preset="v2e", seed=12)
    settings = json.loads(json.dumps(enc.settings()))
    assert settings == {
        "encoder": "dvs",
        "preset": "v2e",
        "fps": 30.0,
        "seed": 12,
        "time_unit": "us",
        "model": DVS_PRESETS["v2e"].to_dict(),
    }
    assert DVSModel(**settings["model"]) == DVS_PRESETS["v2e"]
    assert DVSModel(**settings["model"]).refractory_us == 500


def test_resolve_dvs():
    assert resolve_dvs("clean") == ("clean", DVS_PRESETS["clean"])
    assert resolve_dvs("Noisy ") == ("noisy", DVS_PRESETS["noisy"])
    assert resolve_dvs("clean", threshold_sigma=0.02)[0] == "clean"  # no change: still clean
    name, model = resolve_dvs("clean", shot_hz=1)
    assert name is None and model.shot_hz == 1.0 and model.threshold_sigma == 0.02
    assert resolve_dvs({"leak_hz": 0.5})[1] == DVSModel(leak_hz=0.5)
    assert DVS_PRESETS["clean"] == DVSModel(threshold_sigma=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fps": 0.0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"fps": 30.0, "preset": "dark"}, "unknown dvs preset"),
        ({"fps": 30.0, "shot": 1.0}, "unknown dvs setting"),
        ({"fps": 30.0, "threshold_on": 0.001}, "threshold_on"),
        ({"fps": 30.0, "leak_hz": -1.0}, "leak_hz"),
        ({"fps": 30.0, "refractory_s": True}, "refractory_s"),
        ({"fps": 30.0, "seed": -1}, "seed"),
        ({"fps": 30.0, "preset": 3}, "preset"),
    ],
)
def test_encoder_rejects_bad_settings(kwargs, match):
    with pytest.raises(SpikesimError, match=match):
        DVSEncoder(4, 4, **kwargs)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((2, 5, 4), np.uint8), "5x4 but the encoder is 4x4"),
        (np.zeros((4, 4), np.uint8), "single frame"),
        (np.zeros((2, 4, 4), np.int16), "uint8, float32 or float64"),
        (np.full((2, 4, 4), 1.5, np.float32), r"\[0, 1\]"),
        (np.full((2, 4, 4), np.nan), "NaN"),
        (np.zeros((2, 4, 4, 3), np.float32), "uint8 BGR"),
        ([[0]], "numpy array"),
    ],
)
def test_bad_frames_are_rejected_and_change_nothing(frames, match):
    enc = DVSEncoder(4, 4, fps=30.0, preset="noisy", seed=1)
    first = enc.push(np.full((3, 4, 4), 0.3, np.float32))
    state = enc.memorised_level
    with pytest.raises(SpikesimError, match=match):
        enc.push(frames)
    assert enc.frames_done == 3
    np.testing.assert_array_equal(enc.memorised_level, state)
    assert first.dtype == EVENT_DTYPE


def test_model_is_frozen_and_checked():
    with pytest.raises(AttributeError):
        DVS_PRESETS["clean"].shot_hz = 1.0  # type: ignore[misc]
    with pytest.raises(SpikesimError, match="must be a finite number"):
        DVSModel(shot_hz="5")  # type: ignore[arg-type]
    assert DVSModel(shot_hz=5).shot_hz == 5.0 and isinstance(DVSModel(shot_hz=5).shot_hz, float)
