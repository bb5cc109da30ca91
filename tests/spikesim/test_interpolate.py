"""Frame interpolation: the frame-count contract, the methods, the kernels against the slow
references, streaming, plug-ins, and flow against the cross-fade on moving and still video."""

from __future__ import annotations

import importlib
import itertools

import cv2
import numpy as np
import pytest

from spikesim._kernels.warp import _fb_confidence, _occlusion_blend, _time_maps, _trust_blend
from spikesim.errors import SpikesimError
from spikesim.interpolate import (
    FlowPairs,
    FlowParams,
    Interpolator,
    available_methods,
    interpolate,
    register_method,
    warp_frames,
)
from spikesim.video import iter_frames
from tests.spikesim.naive_interpolate import (
    naive_box_mean,
    naive_fb_confidence,
    naive_hold,
    naive_linear,
    naive_occlusion_blend,
    naive_time_maps,
    naive_trust_blend,
    naive_warp_frames,
)

# the package re-exports the function `interpolate`, which shadows the module's name
interp_mod = importlib.import_module("spikesim.interpolate")

BUILT_IN = ("none", "linear", "flow")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1 / np.mean((a.astype(np.float64) - b) ** 2)))


def texture(height: int, width: int, seed: int, blur: float = 2.0) -> np.ndarray:
    """Smooth random texture in [0.1, 0.9], float32; ``blur`` is the Gaussian sigma (pixels)."""
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), blur)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (0.1 + 0.8 * smooth).astype(np.float32)


def translating(frames: int, height: int, width: int, dx: float, dy: float, seed: int):
    """A texture sliding by (dx, dy) pixels per frame (sub-pixel shifts by bilinear warp)."""
    big = texture(height + 80, width + 80, seed)
    out = []
    for k in range(frames):
        m = np.float32([[1, 0, -40 - k * dx], [0, 1, -40 - k * dy]])
        out.append(cv2.warpAffine(big, m, (width, height), flags=cv2.INTER_LINEAR))
    return np.stack(out)


@pytest.fixture
def clean_registry(monkeypatch):
    """Plug-ins registered by a test vanish after it."""
    monkeypatch.setattr(interp_mod, "_METHODS", dict(interp_mod._METHODS))


# --------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("method", BUILT_IN)
@pytest.mark.parametrize(("count", "factor"), [(1, 4), (2, 1), (2, 3), (5, 2), (4, 10)])
def test_n_frames_give_n_minus_1_times_factor_plus_1_and_originals_reappear(method, count, factor):
    frames = translating(count, 24, 32, 1.5, 0.5, seed=count)
    out = interpolate(frames, factor=factor, method=method)
    assert out.shape == ((count - 1) * factor + 1, 24, 32)
    assert out.dtype == np.float32
    assert np.array_equal(out[::factor], frames)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("method", BUILT_IN)
def test_factor_1_returns_the_frames_unchanged(method):
    frames = translating(4, 20, 24, 2.0, 0.0, seed=1)
    out = interpolate(frames, factor=1, method=method)
    assert np.array_equal(out, frames)
    assert out is not frames


def test_uint8_frames_are_divided_by_255():
    frames = (translating(3, 16, 16, 1, 0, seed=2) * 255).astype(np.uint8)
    out = interpolate(frames, factor=2, method="linear")
    assert np.array_equal(out[::2], frames.astype(np.float32) / np.float32(255))


def test_linear_matches_the_slow_reference():
    frames = np.random.default_rng(3).random((5, 7, 13)).astype(np.float32)
    for factor in (2, 3, 7):
        out = interpolate(frames, factor=factor, method="linear")
        np.testing.assert_allclose(out, naive_linear(frames, factor), atol=1e-6)


def test_none_is_sample_and_hold():
    frames = np.random.default_rng(4).random((4, 5, 8)).astype(np.float32)
    assert np.array_equal(interpolate(frames, factor=3, method="none"), naive_hold(frames, 3))


@pytest.mark.parametrize("method", BUILT_IN)
def test_streaming_gives_the_same_frames_as_the_whole_clip(method):
    frames = translating(6, 40, 48, 2.5, -1.0, seed=5)
    whole = interpolate(frames, factor=4, method=method)
    stream = Interpolator(4, method)
    chunks = [stream.push(f) for f in frames]
    assert [len(c) for c in chunks] == [1, 4, 4, 4, 4, 4]
    assert np.array_equal(np.concatenate(chunks), whole)
    assert (stream.frames_in, stream.frames_out) == (6, 21)


# --------------------------------------------------------------------------- flow quality


def test_flow_recovers_the_midpoint_of_a_translating_texture_far_better_than_linear():
    frames = translating(3, 64, 80, 3.5, 1.25, seed=6)  # 7 x 2.5 px between kept frames
    kept = frames[::2]
    flow = interpolate(kept, factor=2, method="flow")[1]
    linear = interpolate(kept, factor=2, method="linear")[1]
    inner = (slice(8, -8), slice(8, -8))  # the texture enters at the borders: unknowable
    gain = psnr(flow[inner], frames[1][inner]) - psnr(linear[inner], frames[1][inner])
    assert gain > 10, gain


def test_flow_on_a_still_clip_is_the_cross_fade():
    still = np.repeat(texture(48, 64, seed=7)[None], 4, axis=0)
    assert np.array_equal(
        interpolate(still, factor=5, method="flow"), interpolate(still, factor=5, method="linear")
    )
    # Sensor noise on a still scene: flow noise stays under the "still" threshold.
    noisy = np.clip(still + np.random.default_rng(8).normal(0, 0.01, still.shape), 0, 1)
    noisy = noisy.astype(np.float32)
    flow = interpolate(noisy, factor=5, method="flow")
    linear = interpolate(noisy, factor=5, method="linear")
    assert np.abs(flow - linear).max() < 2e-3


def test_tiny_frames_fall_back_to_the_cross_fade():
    frames = np.random.default_rng(9).random((3, 5, 8)).astype(np.float32)
    np.testing.assert_allclose(
        interpolate(frames, factor=3, method="flow"),
        naive_linear(frames, 3),
        atol=1e-6,
    )


def test_flow_beats_linear_on_real_moving_video(real_clips):
    """The cartwheel clip (no repeated frames), frames 0-20 at 240x320: rebuild every other."""
    clip = next(p for p in real_clips if "cartwheel" in p.name)
    frames = np.stack(list(itertools.islice(iter_frames(clip, size=(240, 320)), 21)))
    truth = frames[1::2]
    flow = interpolate(frames[::2], factor=2, method="flow")[1::2]
    linear = interpolate(frames[::2], factor=2, method="linear")[1::2]
    gains = [psnr(f, g) - psnr(lin, g) for f, lin, g in zip(flow, linear, truth, strict=True)]
    assert np.mean(gains) > 1.0, gains


# --------------------------------------------------------------------------- kernels


@pytest.mark.parametrize(("height", "width"), [(1, 1), (5, 9), (12, 7)])
def test_kernels_match_the_slow_references(height, width):
    rng = np.random.default_rng(height * 100 + width)
    f0, f1 = rng.random((2, height, width), dtype=np.float32)
    # Flows up to +-6 px so samples leave the image and are clamped at the borders.
    flow01, flow10 = rng.uniform(-6, 6, (2, height, width, 2)).astype(np.float32)
    flow10[: height // 2] = -flow01[: height // 2]  # partly consistent, partly not

    conf = np.empty((height, width), np.float32)
    _fb_confidence(flow01, flow10, 1 / 1.5**2, conf)
    np.testing.assert_allclose(conf, naive_fb_confidence(flow01, flow10, 1.5), atol=1e-4)

    for t in (0.1, 0.5, 0.9):
        map0, map1 = np.empty((2, height, width, 2), np.float32)
        strength = np.empty((height, width), np.float32)
        _time_maps(flow01, flow10, t, 0.5, 1.5, map0, map1, strength)
        ref0, ref1, ref_s = naive_time_maps(flow01, flow10, t, 0.5, 1.5)
        np.testing.assert_allclose(map0, ref0, atol=1e-4)
        np.testing.assert_allclose(map1, ref1, atol=1e-4)
        np.testing.assert_allclose(strength, ref_s, atol=1e-5)

        warp0, warp1 = rng.random((2, height, width, 2), dtype=np.float32)
        out, resid = np.empty((2, height, width), np.float32)
        _occlusion_blend(warp0, warp1, strength, t, 0.05, out, resid)
        ref_out, ref_resid = naive_occlusion_blend(warp0, warp1, strength, t, 0.05)
        np.testing.assert_allclose(out, ref_out, atol=1e-6)
        np.testing.assert_allclose(resid, ref_resid, atol=1e-6)

        rf, rs = rng.random((2, height, width), dtype=np.float32) * 0.01
        rs[0, 0] = 0.0  # nothing to gain from the flow there: pure cross-fade
        final = np.empty((height, width), np.float32)
        _trust_blend(f0, f1, t, out, rf, rs, 1e-6, final)
        np.testing.assert_allclose(
            final, naive_trust_blend(f0, f1, t, out, rf, rs, 1e-6), atol=1e-6
        )


def test_box_mean_reference_agrees_with_opencv_blur_borders():
    img = np.random.default_rng(10).random((9, 11)).astype(np.float32)
    np.testing.assert_allclose(cv2.blur(img, (7, 7)), naive_box_mean(img, 7), atol=1e-6)


def test_warp_frames_matches_the_slow_reference():
    """Whole warp-and-blend; OpenCV's remap quantises positions to 1/32 pixel, hence the
    tolerance."""
    rng = np.random.default_rng(11)
    f0, f1 = texture(14, 19, seed=12), texture(14, 19, seed=13)
    flow01 = rng.uniform(-3, 3, (14, 19, 2)).astype(np.float32)
    flow10 = (-flow01 + rng.normal(0, 0.5, flow01.shape)).astype(np.float32)
    flow01[:, :4] = 0.1  # a still patch
    p = FlowParams()
    ts = np.array([0.25, 0.5, 0.75])
    got = warp_frames(f0, f1, flow01, flow10, ts, params=p)
    ref = naive_warp_frames(
        f0,
        f1,
        flow01,
        flow10,
        ts,
        still=p.still,
        moving=p.moving,
        sigma=p.sigma,
        floor=p.floor,
        window=p.window,
        noise_floor=p.noise_floor,
        photometric=p.photometric,
    )
    assert np.abs(got - ref).max() < 0.01
    assert np.abs(got - ref).mean() < 1e-3


def test_warp_frames_rejects_bad_inputs():
    f = np.zeros((8, 8), np.float32)
    flow = np.zeros((8, 8, 2), np.float32)
    with pytest.raises(SpikesimError, match="flows must be"):
        warp_frames(f, f, flow[:4], flow, [0.5])
    with pytest.raises(SpikesimError, match="strictly between"):
        warp_frames(f, f, flow, flow, [1.0])
    with pytest.raises(SpikesimError, match="finite"):
        warp_frames(f, f, np.full_like(flow, np.nan), flow, [0.5])


# --------------------------------------------------------------------------- errors, plug-ins


@pytest.mark.parametrize("factor", [0, -2, 1.5, True, "2"])
def test_a_bad_factor_is_a_one_line_error(factor):
    with pytest.raises(SpikesimError, match="factor"):
        Interpolator(factor)


def test_an_unknown_method_lists_the_known_ones():
    with pytest.raises(SpikesimError, match="none, linear, flow"):
        interpolate(np.zeros((2, 8, 8), np.float32), factor=2, method="rife")


def test_bad_frames_are_refused():
    with pytest.raises(SpikesimError, match=r"\(T, H, W\)"):
        interpolate(np.zeros((8, 8), np.float32), factor=2)
    with pytest.raises(SpikesimError, match=r"\[0, 1\]"):
        interpolate(np.full((2, 8, 8), 2.0, np.float32), factor=2)
    with pytest.raises(SpikesimError, match=r"\[0, 1\]"):
        interpolate(np.full((2, 8, 8), np.nan, np.float32), factor=2)
    stream = Interpolator(2, "linear")
    stream.push(np.zeros((8, 8), np.float32))
    with pytest.raises(SpikesimError, match="differs"):
        stream.push(np.zeros((8, 9), np.float32))


def test_flow_params_are_validated():
    with pytest.raises(SpikesimError):
        FlowParams(still=2.0, moving=1.0)
    with pytest.raises(SpikesimError):
        FlowParams(estimator="tvl1")


def test_farneback_estimator_also_works():
    frames = translating(3, 48, 64, 2.0, 0.0, seed=14)
    pairs = FlowPairs(FlowParams(estimator="farneback"))
    mid = pairs(frames[0], frames[2], np.array([0.5]))[0]
    inner = (slice(8, -8), slice(8, -8))
    assert psnr(mid[inner], frames[1][inner]) > psnr(
        (0.5 * frames[0] + 0.5 * frames[2])[inner], frames[1][inner]
    )


def test_a_pair_function_plug_in_is_used_like_a_built_in(clean_registry):
    calls = []

    def factory(factor):
        def darkest(f0, f1, ts):  # stands in for a network with user-supplied weights
            calls.append(tuple(ts))
            return np.repeat(np.minimum(f0, f1)[None], len(ts), axis=0)

        return darkest

    register_method("toy-net", factory)
    assert "toy-net" in available_methods()
    frames = np.random.default_rng(15).random((3, 6, 8)).astype(np.float32)
    out = interpolate(frames, factor=4, method="toy-net")
    assert calls == [(0.25, 0.5, 0.75)] * 2
    assert np.array_equal(out[1:4], np.repeat(np.minimum(frames[0], frames[1])[None], 3, 0))
    assert np.array_equal(out[::4], frames)


def test_a_stream_plug_in_is_used_and_checked(clean_registry):
    class Hold:
        def __init__(self, factor, count=None):
            self.factor, self.count, self.prev = factor, count, None

        def push(self, frame):
            n = 1 if self.prev is None else self.factor
            out = np.repeat((frame if self.prev is None else self.prev)[None], n, 0)
            self.prev = frame
            return out if self.count is None else out[: self.count]

    register_method("hold-stream", Hold)
    frames = np.random.default_rng(16).random((3, 6, 8)).astype(np.float32)
    # The pushed frame always closes the chunk, so this equals sample and hold.
    assert np.array_equal(
        interpolate(frames, factor=3, method="hold-stream"),
        interpolate(frames, factor=3, method="none"),
    )
    register_method("broken", lambda factor: Hold(factor, count=1))
    with pytest.raises(SpikesimError, match="returned shape"):
        interpolate(frames, factor=3, method="broken")


def test_registering_twice_needs_replace(clean_registry):
    with pytest.raises(SpikesimError, match="exists"):
        register_method("linear", lambda factor: None)
    register_method("linear", lambda factor: interp_mod._hold, replace=True)
    frames = np.random.default_rng(17).random((2, 4, 4)).astype(np.float32)
    assert np.array_equal(interpolate(frames, factor=2, method="linear")[1], frames[0])
    with pytest.raises(SpikesimError, match="letters"):
        register_method("bad name", lambda factor: None)


def test_flow_does_not_depend_on_the_opencv_thread_count():
    frames = translating(3, 48, 64, 2.0, 1.0, seed=18)
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = interpolate(frames, factor=3)
        cv2.setNumThreads(2)
        two = interpolate(frames, factor=3)
    finally:
        cv2.setNumThreads(before)
    assert np.array_equal(one, two)


def ep_factory(factor):
    """Target of the fake entry point below."""
    return interp_mod._crossfade


def test_an_installed_entry_point_is_found_by_name(clean_registry, monkeypatch):
    from importlib.metadata import EntryPoint

    group = interp_mod.ENTRY_POINT_GROUP
    points = {
        "ep-linear": EntryPoint("ep-linear", f"{__name__}:ep_factory", group),
        "ep-broken": EntryPoint("ep-broken", "no_such_package.vfi:factory", group),
    }
    monkeypatch.setattr(interp_mod, "_entry_points", lambda: points)
    assert {"ep-linear", "ep-broken"} <= set(available_methods())
    frames = np.random.default_rng(19).random((3, 5, 6)).astype(np.float32)
    assert np.array_equal(
        interpolate(frames, factor=3, method="ep-linear"),
        interpolate(frames, factor=3, method="linear"),
    )
    with pytest.raises(SpikesimError, match="failed to load"):
        Interpolator(2, "ep-broken")


def test_the_caller_may_reuse_its_frame_buffer():
    frames = translating(3, 16, 20, 1.0, 0.0, seed=20)
    buffer = np.empty_like(frames[0])
    stream = Interpolator(2, "linear")
    chunks = []
    for f in frames:
        buffer[:] = f  # a decoder writing every frame into one buffer
        chunks.append(stream.push(buffer))
    assert np.array_equal(np.concatenate(chunks), interpolate(frames, factor=2, method="linear"))
