"""TFI / TFP: the spec's edge cases, the slow references, and streaming over long files."""

from __future__ import annotations

import numpy as np
import pytest

from spikesim.errors import SpikesimError
from spikesim.reconstruct import iter_tfi, iter_tfp, tfi, tfp
from tests.spikesim.naive_reconstruct import naive_tfi, naive_tfp


def one_pixel(total: int, times: list[int]) -> np.ndarray:
    spikes = np.zeros((total, 1, 1), bool)
    spikes[times, 0, 0] = True
    return spikes


def random_spikes(shape: tuple[int, int, int], density: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < density


def mixed_spikes(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Pixels from dead to always-on, with long gaps, late starts and early stops (fade-outs)."""
    rng = np.random.default_rng(seed)
    total, height, width = shape
    rate = rng.choice([0.0, 0.004, 0.03, 0.2, 0.7, 1.0], size=(height, width))
    first = rng.integers(0, total, size=(height, width))
    last = rng.integers(0, total + 1, size=(height, width))
    t = np.arange(total)[:, None, None]
    return (rng.random(shape) < rate) & (t >= first) & (t <= last)


class ArraySource:
    """A DatFile stand-in over an in-memory array that records every slice it is asked for."""

    def __init__(self, spikes: np.ndarray) -> None:
        self._spikes = spikes
        self.height, self.width = spikes.shape[1:]
        self.reads: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._spikes)

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, _ = index.indices(len(self))
        self.reads.append((start, stop))
        return self._spikes[index].copy()


# --- TFI: the spec ----------------------------------------------------------------------


def test_tfi_spec_vector_t12_spikes_2_5_9_window_1():
    out = tfi(one_pixel(12, [2, 5, 9]), half_window=1)
    assert out.dtype == np.uint8
    assert out.shape == (10, 1, 1)
    assert out[:, 0, 0].tolist() == [0, 0, 85, 85, 85, 63, 63, 63, 63, 0]


def test_tfi_spike_at_t_counts_as_the_next_spike():
    # At t = 4 the spike at 4 is "at or after t" and the spike at 0 is "strictly before".
    out = tfi(one_pixel(8, [0, 4]), half_window=0)
    assert out[:, 0, 0].tolist() == [0, 63, 63, 63, 63, 0, 0, 0]


def test_tfi_window_only_crops():
    spikes = random_spikes((30, 3, 5), 0.2, seed=1)
    full = tfi(spikes, half_window=0)
    assert full.shape == (30, 3, 5)
    for w in (1, 4, 14):
        np.testing.assert_array_equal(tfi(spikes, half_window=w), full[w : 30 - w])


def test_tfi_silent_pixel_is_zero_and_always_on_pixel_is_255():
    spikes = np.zeros((10, 1, 2), bool)
    spikes[:, 0, 1] = True
    out = tfi(spikes, half_window=0)
    assert out[:, 0, 0].tolist() == [0] * 10
    assert out[:, 0, 1].tolist() == [0] + [255] * 9  # t = 0 has no spike before it


@pytest.mark.parametrize("total, window", [(2, 1), (10, 5), (10, 7), (1, 1)])
def test_tfi_too_few_frames_is_a_clear_error(total, window):
    with pytest.raises(SpikesimError, match=f"more than {2 * window} frames, got {total}"):
        tfi(np.zeros((total, 2, 4), bool), half_window=window)


@pytest.mark.parametrize("func", [tfi, tfp])
def test_no_frames_is_a_clear_error(func):
    with pytest.raises(SpikesimError, match="no frames"):
        func(np.zeros((0, 2, 4), bool), 0)


def test_tfi_one_frame_left():
    assert tfi(one_pixel(3, [0, 2]), half_window=1)[:, 0, 0].tolist() == [127]


@pytest.mark.parametrize("density", [0.0, 0.03, 0.2, 0.6, 1.0])
@pytest.mark.parametrize("shape, window", [((40, 5, 7), 3), ((23, 1, 9), 0), ((17, 6, 1), 8)])
def test_tfi_matches_the_slow_reference(shape, window, density):
    spikes = random_spikes(shape, density, seed=int(density * 100) + shape[0])
    np.testing.assert_array_equal(tfi(spikes, window), naive_tfi(spikes, window))


def test_tfi_mixed_pixels_match_the_slow_reference():
    spikes = mixed_spikes((90, 4, 6), seed=3)
    np.testing.assert_array_equal(tfi(spikes, 5), naive_tfi(spikes, 5))


def test_tfi_uint8_and_bool_agree_and_input_is_untouched():
    spikes = random_spikes((25, 4, 6), 0.3, seed=4)
    as_uint8 = spikes.astype(np.uint8)
    np.testing.assert_array_equal(tfi(as_uint8, 2), tfi(spikes, 2))
    np.testing.assert_array_equal(as_uint8, spikes)


def test_tfi_accepts_non_contiguous_input():
    spikes = random_spikes((20, 6, 8), 0.3, seed=5)
    view = spikes[:, ::2, 1::3]
    np.testing.assert_array_equal(tfi(view, 1), naive_tfi(np.ascontiguousarray(view), 1))


# --- TFP ----------------------------------------------------------------------------------


def test_tfp_known_values():
    out = tfp(one_pixel(7, [0, 2, 3, 6]), half_window=1)
    assert out.dtype == np.uint8
    assert out[:, 0, 0].tolist() == [170, 170, 170, 85, 85]


def test_tfp_all_on_is_255_and_all_off_is_0():
    spikes = np.zeros((9, 2, 4), bool)
    spikes[:, 1] = True
    out = tfp(spikes, half_window=2)
    assert out.shape == (5, 2, 4)
    assert (out[:, 0] == 0).all() and (out[:, 1] == 255).all()


def test_tfp_half_window_0_is_the_spikes_times_255():
    spikes = random_spikes((6, 2, 4), 0.5, seed=6)
    np.testing.assert_array_equal(tfp(spikes, 0), spikes.astype(np.uint8) * 255)


@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("shape, half", [((40, 5, 7), 3), ((23, 1, 9), 0), ((17, 6, 1), 8)])
def test_tfp_matches_the_slow_reference(shape, half, density):
    spikes = random_spikes(shape, density, seed=int(density * 10) + shape[1])
    np.testing.assert_array_equal(tfp(spikes, half), naive_tfp(spikes, half))


def test_tfp_too_few_frames_is_a_clear_error():
    with pytest.raises(SpikesimError, match="more than 40 frames, got 40"):
        tfp(np.zeros((40, 2, 4), bool), half_window=20)


# --- input checks -------------------------------------------------------------------------


@pytest.mark.parametrize("func", [tfi, tfp])
@pytest.mark.parametrize(
    "spikes, match",
    [
        (np.zeros((10, 8), bool), r"\(T, H, W\)"),
        (np.zeros((10, 2, 4), np.float32), "bool or uint8"),
        (np.zeros((10, 2, 4), np.int64), "bool or uint8"),
    ],
)
def test_bad_spike_arrays_are_rejected(func, spikes, match):
    with pytest.raises(SpikesimError, match=match):
        func(spikes, 1)


@pytest.mark.parametrize("func", [tfi, tfp])
@pytest.mark.parametrize("window", [-1, 1.5, "3", True, None])
def test_bad_windows_are_rejected(func, window):
    with pytest.raises(SpikesimError):
        func(np.zeros((10, 2, 4), bool), window)


def test_numpy_integer_window_is_fine():
    spikes = random_spikes((12, 2, 4), 0.3, seed=7)
    np.testing.assert_array_equal(tfi(spikes, np.int64(2)), tfi(spikes, 2))


# --- streaming over a long file -----------------------------------------------------------

CHUNKS = [1, 3, 7, 50, 1000]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_iter_tfi_concatenates_to_tfi(chunk):
    spikes = mixed_spikes((161, 5, 7), seed=8)
    src = ArraySource(spikes)
    parts = list(iter_tfi(src, 6, chunk=chunk))
    np.testing.assert_array_equal(np.concatenate(parts), tfi(spikes, 6))
    assert [len(p) for p in parts[:-1]] == [chunk] * (len(parts) - 1)
    assert 1 <= len(parts[-1]) <= chunk
    # Bounded memory: never more than window + chunk frames asked for at once.
    assert max(stop - start for start, stop in src.reads) <= 6 + chunk


@pytest.mark.parametrize("chunk", CHUNKS)
def test_iter_tfp_concatenates_to_tfp(chunk):
    spikes = mixed_spikes((161, 5, 7), seed=9)
    src = ArraySource(spikes)
    parts = list(iter_tfp(src, 6, chunk=chunk))
    np.testing.assert_array_equal(np.concatenate(parts), tfp(spikes, 6))
    assert [len(p) for p in parts[:-1]] == [chunk] * (len(parts) - 1)
    assert max(stop - start for start, stop in src.reads) <= 2 * 6 + chunk
    # Every frame is read exactly once.
    assert sorted(src.reads) == src.reads
    assert sum(stop - start for start, stop in src.reads) == len(spikes)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("window", [0, 2])
def test_iter_tfi_random_files_and_chunks(seed, window):
    rng = np.random.default_rng(seed)
    shape = (
        int(rng.integers(2 * window + 1, 120)),
        int(rng.integers(1, 5)),
        int(rng.integers(1, 6)),
    )
    spikes = mixed_spikes(shape, seed=seed)
    chunk = int(rng.integers(1, 40))
    parts = list(iter_tfi(ArraySource(spikes), window, chunk=chunk))
    np.testing.assert_array_equal(np.concatenate(parts), naive_tfi(spikes, window))


def test_iter_tfi_spec_vector_chunk_1():
    parts = list(iter_tfi(ArraySource(one_pixel(12, [2, 5, 9])), 1, chunk=1))
    assert np.concatenate(parts)[:, 0, 0].tolist() == [0, 0, 85, 85, 85, 63, 63, 63, 63, 0]


def test_iter_tfi_fade_out_is_not_read_over_and_over():
    # Pixel i spikes every other frame until 6 i, then never again: every small chunk has a
    # pixel whose next spike must be looked for to the end of the file. That scan happens
    # once; later chunks know from it that there is nothing further.
    total = 400
    spikes = np.zeros((total, 8, 8), bool)
    for i in range(64):
        spikes[0 : 6 * i + 1 : 2, i // 8, i % 8] = True
    src = ArraySource(spikes)
    out = np.concatenate(list(iter_tfi(src, 2, chunk=4)))
    np.testing.assert_array_equal(out, tfi(spikes, 2))
    assert sum(stop - start for start, stop in src.reads) <= 2 * total


def test_iter_tfi_long_gaps_are_reread_only_over_the_gap():
    # A pixel that spikes every 100 frames with chunk 10: each frame is read about twice.
    total = 1000
    spikes = np.zeros((total, 1, 8), bool)
    spikes[::100, 0, 0] = True
    spikes[:, 0, 1] = True
    src = ArraySource(spikes)
    out = np.concatenate(list(iter_tfi(src, 0, chunk=10)))
    np.testing.assert_array_equal(out, tfi(spikes, 0))
    assert sum(stop - start for start, stop in src.reads) <= 3 * total


@pytest.mark.parametrize("func", [iter_tfi, iter_tfp])
def test_iter_checks_arguments_before_reading(func):
    src = ArraySource(np.zeros((10, 2, 4), bool))
    with pytest.raises(SpikesimError, match="more than 10 frames"):
        func(src, 5)
    for chunk in (0, -3, 2.5):
        with pytest.raises(SpikesimError, match="chunk"):
            func(src, 1, chunk=chunk)
    with pytest.raises(SpikesimError, match="DatFile"):
        func(np.zeros((10, 2, 4), bool), 1)
    assert src.reads == []


def test_iter_tfi_rejects_a_source_that_returns_the_wrong_shape():
    class Short(ArraySource):
        def __getitem__(self, index: slice) -> np.ndarray:
            return super().__getitem__(index)[:1]

    with pytest.raises(SpikesimError, match="expected"):
        list(iter_tfi(Short(np.ones((20, 2, 4), bool)), 1, chunk=5))


def test_iter_on_a_real_dat_file(tmp_path):
    dat = pytest.importorskip("spikesim.dat", reason="spikesim.dat is not written yet")
    spikes = mixed_spikes((75, 4, 6), seed=10)
    path = dat.write_dat(tmp_path / "clip.dat", spikes)
    with dat.DatFile(path) as f:
        np.testing.assert_array_equal(f[:], spikes)
        got_tfi = np.concatenate(list(iter_tfi(f, 4, chunk=16)))
        got_tfp = np.concatenate(list(iter_tfp(f, 4, chunk=16)))
    np.testing.assert_array_equal(got_tfi, naive_tfi(spikes, 4))
    np.testing.assert_array_equal(got_tfp, naive_tfp(spikes, 4))
