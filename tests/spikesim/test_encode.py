"""The integrate-and-fire encoder (DESIGN.md "spikesim / Encoder") against its slow reference."""

from __future__ import annotations

import itertools
import json
import math

import numba
import numpy as np
import pytest

from spikesim._kernels import encode as kernels
from spikesim.encode import Encoder, encode
from spikesim.errors import SpikesimError
from spikesim.noise import NOISE_PRESETS, NoiseModel, resolve_noise

from .naive_encode import mix64, naive_encode, naive_fixed_pattern, poisson

PRESETS = list(NOISE_PRESETS)
# Strong, unrealistic noise so that every code path (Poisson inversion below lam = 10,
# threshold floor, wide dark-current spread, clipping at 0) is exercised on small inputs.
HARSH = NoiseModel(
    gaussian_std=0.3,
    photons_per_unit=4.0,
    dark_current=0.02,
    dark_current_spread=1.5,
    threshold_mismatch=0.3,
)


def frames_of(shape: tuple[int, ...], dtype=np.float32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.random(shape).astype(dtype)


def noise_dict(noise) -> dict | None:
    model = resolve_noise(noise)
    return None if model is None else model.to_dict()


def packbits_reference(spikes: np.ndarray, flipud: bool) -> np.ndarray:
    t = spikes.shape[0]
    rows = spikes[:, ::-1] if flipud else spikes
    return np.packbits(rows.reshape(t, -1), bitorder="little", axis=1)


# -- exactly the slow reference -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 1), (37, 5, 7), (20, 1, 13), (12, 9, 130)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_noiseless_matches_reference(shape, dtype):
    frames = frames_of(shape, dtype)
    for init, threshold in (("random", 5.0), ("zero", 1.7), ("random", 0.3)):
        got = encode(frames, threshold=threshold, init=init, seed=3)
        want = naive_encode(frames, threshold=threshold, init=init, seed=3)
        assert got.dtype == np.bool_ and got.shape == shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("noise", [*PRESETS, HARSH])
def test_noise_matches_reference(noise):
    frames = frames_of((24, 6, 11))
    frames[:, 0, :] = 0.0  # dark pixels: only dark current and noise make them fire
    frames[:, 1, :] = 1.0
    got = encode(frames, noise=noise, seed=11, threshold=2.0)
    want = naive_encode(frames, noise=noise_dict(noise), seed=11, threshold=2.0)
    np.testing.assert_array_equal(got, want)


def test_many_blocks_match_reference():
    # Big enough for several parallel blocks, with a ragged last block (N % 64 != 0).
    frames = frames_of((3, 37, 296), np.uint8, seed=3)
    want = naive_encode(frames, noise=noise_dict("sensor"), seed=8)
    np.testing.assert_array_equal(encode(frames, noise="sensor", seed=8), want)
    packed = Encoder(37, 296, noise="sensor", seed=8).push_packed(frames)
    np.testing.assert_array_equal(packed, packbits_reference(want, flipud=True))


def test_fixed_pattern_matches_reference():
    enc = Encoder(7, 9, threshold=3.5, noise=HARSH, seed=5)
    v0, thr, dark = naive_fixed_pattern(5, 7, 9, 3.5, "random", HARSH.to_dict())
    np.testing.assert_array_equal(enc.potential, v0)
    np.testing.assert_array_equal(enc.thresholds, thr)
    np.testing.assert_array_equal(enc.dark_current, dark)


def test_counter_hash_matches_reference():
    rng = np.random.default_rng(1)
    for z in rng.integers(0, 2**63, 200, dtype=np.uint64):
        z = int(z) * 2 + 1  # all 64 bits
        assert int(kernels._mix64(np.uint64(z))) == mix64(z)
    for lam, h in ((0.0, 5), (3.2, 2**63 + 11), (9.99, 77), (10.0, 123), (731.5, 2**64 - 1)):
        assert kernels._poisson(lam, np.uint64(h)) == poisson(lam, h)


# -- streaming ----------------------------------------------------------------------------------


def random_splits(n: int, rng: np.random.Generator) -> list[int]:
    cuts = np.sort(rng.integers(0, n + 1, rng.integers(1, 6)))
    return [0, *cuts.tolist(), n]  # may contain empty chunks


@pytest.mark.parametrize("noise", PRESETS)
def test_chunks_give_the_bytes_of_one_call(noise):
    rng = np.random.default_rng(7)
    frames = frames_of((40, 16, 24), seed=2)
    whole = encode(frames, noise=noise, seed=9)
    whole_packed = packbits_reference(whole, flipud=True)
    for _ in range(3):
        bounds = random_splits(len(frames), rng)
        enc = Encoder(16, 24, noise=noise, seed=9)
        parts = [enc.push(frames[a:b]) for a, b in itertools.pairwise(bounds)]
        np.testing.assert_array_equal(np.concatenate(parts), whole)
        assert enc.frames_done == len(frames)
        enc = Encoder(16, 24, noise=noise, seed=9)
        packed = [enc.push_packed(frames[a:b]) for a, b in itertools.pairwise(bounds)]
        np.testing.assert_array_equal(np.concatenate(packed), whole_packed)


def test_push_and_push_packed_share_one_state():
    frames = frames_of((30, 8, 16), seed=4)
    whole = encode(frames, noise="sensor", seed=1)
    enc = Encoder(8, 16, noise="sensor", seed=1)
    a = enc.push(frames[:10])
    b = enc.push_packed(frames[10:17], flipud=False)
    c = enc.push_packed(frames[17:])
    np.testing.assert_array_equal(a, whole[:10])
    np.testing.assert_array_equal(b, packbits_reference(whole[10:17], flipud=False))
    np.testing.assert_array_equal(c, packbits_reference(whole[17:], flipud=True))


def test_thread_count_does_not_change_the_bytes():
    frames = frames_of((20, 33, 40), seed=5)
    before = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            enc = Encoder(33, 40, noise=HARSH, seed=2)
            results.append((enc.push(frames[:7]), enc.push_packed(frames[7:])))
    finally:
        numba.set_num_threads(before)
    for spikes, packed in results[1:]:
        np.testing.assert_array_equal(spikes, results[0][0])
        np.testing.assert_array_equal(packed, results[0][1])


# -- packed output in the .dat layout -----------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(5, 2, 4), (6, 1, 8), (4, 8, 8), (3, 6, 12), (5, 17, 40), (3, 64, 3), (4, 240, 320)]
)
@pytest.mark.parametrize("flipud", [True, False])
def test_push_packed_is_packbits_of_push(shape, flipud):
    frames = frames_of(shape, np.uint8, seed=shape[2])
    spikes = encode(frames, seed=4)
    packed = Encoder(*shape[1:], seed=4).push_packed(frames, flipud=flipud)
    assert packed.dtype == np.uint8 and packed.shape == (shape[0], shape[1] * shape[2] // 8)
    np.testing.assert_array_equal(packed, packbits_reference(spikes, flipud))


def test_push_packed_layout_vector():
    # DESIGN.md test vector: spikes at (row 0, col 0) and (row 1, col 7) pack to 80 01 / 01 80.
    enc = Encoder(2, 8, threshold=1.0, init="zero")
    frame = np.zeros((1, 2, 8), np.float32)
    frame[0, 0, 0] = frame[0, 1, 7] = 1.0
    assert enc.push_packed(frame).tobytes() == bytes([0x80, 0x01])
    enc = Encoder(2, 8, threshold=1.0, init="zero")
    assert enc.push_packed(frame, flipud=False).tobytes() == bytes([0x01, 0x80])


# -- what the model promises --------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_bytes():
    frames = frames_of((30, 12, 16), seed=6)
    for noise in PRESETS:
        a = encode(frames, noise=noise, seed=1)
        np.testing.assert_array_equal(a, encode(frames, noise=noise, seed=1))
        assert not np.array_equal(a, encode(frames, noise=noise, seed=2))


def test_each_noise_has_its_own_stream():
    # Switching Gaussian noise on must not move the fixed pattern drawn from the same seed.
    base = NOISE_PRESETS["sensor"]
    plus = NoiseModel(**{**base.to_dict(), "gaussian_std": 0.1})
    a, b = Encoder(9, 10, noise=base, seed=3), Encoder(9, 10, noise=plus, seed=3)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    np.testing.assert_array_equal(a.dark_current, b.dark_current)
    np.testing.assert_array_equal(a.potential, b.potential)


def test_uint8_is_float_divided_by_255():
    frames = frames_of((25, 16, 16), np.uint8, seed=8)
    want = encode(frames, seed=2)
    np.testing.assert_array_equal(encode(frames.astype(np.float32) / np.float32(255), seed=2), want)
    np.testing.assert_array_equal(encode(frames / 255.0, seed=2), want)
    # every grey level, in both float widths
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    np.testing.assert_array_equal(encode(levels / 255.0), encode(levels))


def test_spike_count_is_the_integrated_intensity():
    # Noiseless IF: a pixel fires floor((V0 + sum of I) / threshold) times.
    frames = frames_of((200, 8, 16), seed=9) ** 2
    enc = Encoder(8, 16, threshold=5.0, seed=4)
    v0 = enc.potential.astype(np.float64)
    count = enc.push(frames).sum(axis=0)
    want = np.floor((v0 + frames.astype(np.float64).sum(axis=0)) / 5.0)
    assert np.abs(count - want).max() <= 1  # float32 rounding may move a spike by one step
    assert (count == want).mean() > 0.95


@pytest.mark.parametrize("intensity", [0.0, 0.05, 0.37, 1.0])
def test_firing_rate_is_intensity_over_threshold(intensity):
    frames = np.full((500, 8, 8), intensity, np.float32)
    rate = encode(frames, threshold=5.0, init="zero").mean()
    assert rate == pytest.approx(intensity / 5.0, abs=1.5 / 500)  # within one spike


@pytest.mark.parametrize("noise", ["gaussian", "sensor"])
def test_noise_keeps_the_mean_rate(noise):
    frames = np.full((400, 16, 16), 0.5, np.float32)
    rate = encode(frames, noise=noise, seed=1).mean()
    model = resolve_noise(noise)
    expected = (0.5 + model.dark_current) / 5.0
    assert rate == pytest.approx(expected, rel=0.03)


def test_at_most_one_spike_per_step():
    # Threshold below the intensity: V outruns it, yet each step gives one spike, no more.
    frames = np.ones((50, 4, 8), np.float32)
    spikes = encode(frames, threshold=0.25, init="zero")
    assert spikes.all()


def test_initial_potential():
    enc = Encoder(100, 100, threshold=5.0, seed=0)
    v = enc.potential
    assert v.dtype == np.float32 and (v >= 0).all() and (v < 5.0).all()
    assert v.mean() == pytest.approx(2.5, abs=0.05)
    hist = np.histogram(v, bins=5, range=(0, 5))[0] / v.size
    np.testing.assert_allclose(hist, 0.2, atol=0.01)
    assert not Encoder(10, 10, init="zero").potential.any()
    assert not np.array_equal(v, Encoder(100, 100, seed=1).potential)


def test_sensor_fixed_pattern_statistics():
    enc = Encoder(200, 200, threshold=5.0, noise="sensor", seed=0)
    dark = enc.dark_current.astype(np.float64)
    assert (dark >= 0).all()
    assert dark.mean() == pytest.approx(1 / 255, rel=0.02)
    assert dark.std() / dark.mean() == pytest.approx(0.4, rel=0.05)
    thr = enc.thresholds.astype(np.float64)
    assert thr.mean() == pytest.approx(5.0, rel=0.002)
    assert thr.std() / thr.mean() == pytest.approx(0.045, rel=0.05)
    noiseless = Encoder(20, 20)
    assert (noiseless.thresholds == 5.0).all() and not noiseless.dark_current.any()


def test_counter_rng_distributions():
    h = np.array([mix64(i) for i in range(20000)], np.uint64)
    u = np.array([kernels._unit(x) for x in h])
    assert u.min() >= 0 and u.max() < 1 and u.mean() == pytest.approx(0.5, abs=0.01)
    z = np.array([kernels._normal(x) for x in h])
    assert z.mean() == pytest.approx(0.0, abs=0.03) and z.std() == pytest.approx(1.0, abs=0.03)
    for lam in (0.3, 4.0, 10.0, 57.0, 2000.0):
        n = np.array([kernels._poisson(lam, x) for x in h[:8000]])
        assert (n >= 0).all() and (n == np.floor(n)).all()
        assert n.mean() == pytest.approx(lam, rel=0.05, abs=0.02)
        assert n.var() == pytest.approx(lam, rel=0.08, abs=0.03)


def test_shot_noise_jitters_intervals_as_expected():
    # A spike takes threshold * photons_per_unit photons: interval CV ~ 1/sqrt(that).
    photons = 20.0
    frames = np.full((3000, 4, 8), 0.25, np.float32)
    spikes = encode(frames, threshold=2.0, noise=NoiseModel(photons_per_unit=photons))
    intervals = np.concatenate([np.diff(np.flatnonzero(p)) for p in spikes.reshape(3000, -1).T])
    cv = intervals.std() / intervals.mean()
    assert cv == pytest.approx(1 / math.sqrt(2.0 * photons), rel=0.2)
    assert intervals.mean() == pytest.approx(2.0 / 0.25, rel=0.03)


def test_real_clip_fires_as_its_intensity(real_clips):
    cv2 = pytest.importorskip("cv2")
    cap = cv2.VideoCapture(str(real_clips[0]))
    grays = []
    while len(grays) < 40:
        ok, bgr = cap.read()
        if not ok:
            break
        grays.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:64, :96])
    cap.release()
    frames = np.stack(grays)
    enc = Encoder(*frames.shape[1:], threshold=5.0, seed=0)
    v0 = enc.potential.astype(np.float64)
    count = enc.push(frames).sum(axis=0)
    want = np.floor((v0 + (frames / 255.0).sum(axis=0)) / 5.0)
    assert np.abs(count - want).max() <= 1
    assert frames.mean() > 5  # not a black clip: the check above says something


# -- interface ----------------------------------------------------------------------------------


def test_settings_are_json_for_the_sidecar():
    enc = Encoder(8, 8, threshold=4.0, init="zero", noise="sensor", seed=12)
    settings = json.loads(json.dumps(enc.settings()))
    assert settings == {
        "encoder": "integrate-and-fire",
        "threshold": 4.0,
        "init": "zero",
        "seed": 12,
        "noise": NOISE_PRESETS["sensor"].to_dict(),
    }
    assert NoiseModel(**settings["noise"]) == NOISE_PRESETS["sensor"]
    assert Encoder(8, 8).settings()["noise"] is None


def test_resolve_noise():
    assert resolve_noise(None) is None
    assert resolve_noise("none") is None
    assert resolve_noise(NoiseModel()) is None
    assert resolve_noise(" Sensor ") is NOISE_PRESETS["sensor"]
    assert resolve_noise({"gaussian_std": 0.1}) == NoiseModel(gaussian_std=0.1)
    with pytest.raises(SpikesimError, match="none, gaussian, sensor"):
        resolve_noise("salt-and-pepper")
    with pytest.raises(SpikesimError, match="unknown noise field"):
        resolve_noise({"gauss": 0.1})
    with pytest.raises(SpikesimError, match="preset name or a NoiseModel"):
        resolve_noise(3)


@pytest.mark.parametrize(
    "field, value",
    [("gaussian_std", -0.1), ("photons_per_unit", math.inf), ("dark_current", math.nan),
     ("threshold_mismatch", 0.5), ("dark_current_spread", True), ("gaussian_std", "0.1")],
)  # fmt: skip
def test_noise_model_rejects_bad_fields(field, value):
    with pytest.raises(SpikesimError, match=field):
        NoiseModel(**{field: value})


def test_noise_model_is_frozen():
    with pytest.raises(AttributeError):
        NOISE_PRESETS["sensor"].gaussian_std = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"threshold": 0}, "threshold"), ({"threshold": math.nan}, "threshold"),
     ({"threshold": "5"}, "threshold"), ({"init": "ones"}, "random, zero"),
     ({"seed": -1}, "seed"), ({"seed": 2**64}, "seed"), ({"seed": 1.5}, "seed"),
     ({"seed": True}, "seed"), ({"noise": "pink"}, "none, gaussian, sensor")],
)  # fmt: skip
def test_encoder_rejects_bad_settings(kwargs, match):
    with pytest.raises(SpikesimError, match=match):
        Encoder(4, 4, **kwargs)
    with pytest.raises(SpikesimError):
        Encoder(0, 4)


@pytest.mark.parametrize(
    "frames, match",
    [(np.zeros((4, 4), np.float32), r"frames\[None\]"),
     (np.zeros((1, 4, 5), np.float32), "4x5 but the encoder is 4x4"),
     (np.zeros((1, 4, 4), np.int16), "int16"),
     (np.zeros((1, 4, 4), bool), "bool"),
     (np.full((1, 4, 4), 1.5, np.float32), "in \\[0, 1\\]; found values from 1.5 to 1.5"),
     (np.full((1, 4, 4), -0.5), "in \\[0, 1\\]"),
     (np.full((1, 4, 4), np.nan, np.float32), "16 NaN"),
     (np.full((1, 4, 4), np.inf, np.float32), "inf"),
     ([[[0.5]]], "numpy array")],
)  # fmt: skip
def test_bad_frames_are_rejected_and_change_nothing(frames, match):
    good = frames_of((6, 4, 4), seed=1)
    enc = Encoder(4, 4, noise="sensor")
    first = enc.push(good[:3])
    with pytest.raises(SpikesimError, match=match):
        enc.push(frames)
    with pytest.raises(SpikesimError, match=match):
        enc.push_packed(frames)
    assert enc.frames_done == 3
    rest = enc.push(good[3:])
    np.testing.assert_array_equal(np.concatenate([first, rest]), encode(good, noise="sensor"))


def test_one_bad_value_in_a_big_chunk_is_found():
    frames = frames_of((10, 64, 64))
    frames[7, 50, 3] = 1.0001
    with pytest.raises(SpikesimError, match=r"1\.0001"):
        encode(frames)


def test_packing_needs_whole_bytes():
    with pytest.raises(SpikesimError, match="multiple of 8"):
        Encoder(3, 5).push_packed(np.zeros((1, 3, 5), np.float32))
    assert encode(np.zeros((2, 3, 5), np.float32)).shape == (2, 3, 5)  # unpacked is fine


def test_empty_and_non_contiguous_input():
    enc = Encoder(6, 8)
    assert enc.push(np.zeros((0, 6, 8), np.uint8)).shape == (0, 6, 8)
    assert enc.push_packed(np.zeros((0, 6, 8), np.uint8)).shape == (0, 6)
    assert enc.frames_done == 0
    frames = frames_of((10, 8, 6)).transpose(0, 2, 1)  # (10, 6, 8), not C-contiguous
    np.testing.assert_array_equal(encode(frames), encode(np.ascontiguousarray(frames)))
    with pytest.raises(SpikesimError, match="3-D"):
        encode(np.zeros((4, 4)))
