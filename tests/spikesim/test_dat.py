"""``.dat`` files: the bit layout (spec test vectors), the kernels against the naive reference,
memory-mapped reads, the sidecar, atomic writes and the errors a user can hit."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import spikesim.dat as dat_module
from spikesim.dat import (
    FORMAT,
    DatFile,
    DatWriter,
    pack_frames,
    read_dat,
    sidecar_path,
    unpack_frames,
    write_dat,
)
from spikesim.errors import DatError
from tests.spikesim.naive_dat import naive_pack, naive_unpack

# -- the spec's test vectors ---------------------------------------------------------------

VECTOR_1 = np.zeros((1, 2, 8), dtype=bool)
VECTOR_1[0, 0, 0] = VECTOR_1[0, 1, 7] = True
VECTOR_2 = np.array([[[1, 1, 0, 0], [0, 0, 0, 1]], [[0, 0, 0, 0], [1, 0, 1, 0]]], dtype=bool)
VECTORS = [
    (VECTOR_1, True, "80 01"),
    (VECTOR_1, False, "01 80"),
    (VECTOR_2, True, "38 05"),
    (VECTOR_2, False, "83 50"),
]


@pytest.mark.parametrize(("spikes", "flipud", "hex_bytes"), VECTORS)
def test_spec_vectors_pack_and_unpack(spikes, flipud, hex_bytes):
    packed = pack_frames(spikes, flipud=flipud)
    assert packed.tobytes() == bytes.fromhex(hex_bytes)
    assert packed.shape == (spikes.shape[0], spikes.shape[1] * spikes.shape[2] // 8)
    _, h, w = spikes.shape
    np.testing.assert_array_equal(unpack_frames(packed, h, w, flipud=flipud), spikes)


@pytest.mark.parametrize(("spikes", "flipud", "hex_bytes"), VECTORS)
def test_spec_vectors_on_disk(tmp_path, spikes, flipud, hex_bytes):
    path = write_dat(tmp_path / "v.dat", spikes, flipud=flipud)
    assert path.read_bytes() == bytes.fromhex(hex_bytes)  # no header, nothing else
    back = read_dat(path)  # flipud from the sidecar
    assert back.dtype == np.bool_
    np.testing.assert_array_equal(back, spikes)
    _, h, w = spikes.shape
    bare = read_dat(path, height=h, width=w, flipud=flipud)
    np.testing.assert_array_equal(bare, spikes)


def test_layout_is_little_endian_packbits_of_flipped_rows():
    rng = np.random.default_rng(1)
    spikes = rng.random((5, 6, 16)) < 0.4
    expected = np.packbits(spikes[:, ::-1].reshape(5, -1), axis=1, bitorder="little")
    np.testing.assert_array_equal(pack_frames(spikes), expected)


# -- kernels against the naive reference ---------------------------------------------------

# (T, H, W): W % 8 == 0 (row path), W % 8 != 0 with H*W % 8 == 0 (bytes straddle rows),
# a single row, a single column, a single frame, no frames.
SHAPES = [
    (7, 3, 8),
    (4, 5, 24),
    (9, 4, 6),
    (3, 2, 12),
    (5, 6, 4),
    (2, 1, 40),
    (3, 16, 1),
    (1, 8, 3),
    (0, 4, 6),
    (33, 7, 16),
]


@pytest.fixture(params=["serial", "parallel"])
def threads(request, monkeypatch):
    """Run a test with the serial drivers (small arrays) and again with the parallel ones."""
    if request.param == "parallel":
        monkeypatch.setattr(dat_module, "_PARALLEL_PIXELS", 0)
    return request.param


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("flipud", [True, False])
def test_pack_unpack_match_naive(shape, flipud, threads):
    rng = np.random.default_rng(sum(shape) + flipud)
    spikes = rng.random(shape) < 0.35
    packed = pack_frames(spikes, flipud=flipud)
    expected = naive_pack(spikes, flipud=flipud)
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(packed, expected)
    _, h, w = shape
    unpacked = unpack_frames(expected, h, w, flipud=flipud)
    assert unpacked.dtype == np.bool_ and unpacked.shape == shape
    np.testing.assert_array_equal(unpacked, naive_unpack(expected, h, w, flipud=flipud))
    np.testing.assert_array_equal(unpacked, spikes)


@pytest.mark.parametrize("shape", [(6, 4, 8), (6, 4, 6)], ids=["row", "straddle"])
def test_uint8_input_counts_any_nonzero_as_a_spike(shape, threads):
    rng = np.random.default_rng(2)
    values = rng.choice(np.array([0, 1, 2, 7, 128, 255], dtype=np.uint8), size=shape)
    np.testing.assert_array_equal(pack_frames(values), naive_pack(values))
    np.testing.assert_array_equal(pack_frames(values), pack_frames(values != 0))


def test_random_bytes_round_trip_and_non_contiguous_input(threads):
    rng = np.random.default_rng(3)
    packed = rng.integers(0, 256, size=(12, 30), dtype=np.uint8)  # 5x48 frames
    spikes = unpack_frames(packed, 5, 48)
    np.testing.assert_array_equal(spikes, naive_unpack(packed, 5, 48))
    np.testing.assert_array_equal(pack_frames(spikes), packed)
    every_other = spikes[::2]  # a strided view
    np.testing.assert_array_equal(pack_frames(every_other), packed[::2])
    np.testing.assert_array_equal(unpack_frames(packed[::2], 5, 48), every_other)


def test_camera_sized_frames_agree_with_packbits(threads):
    rng = np.random.default_rng(6)
    spikes = rng.random((30, 240, 320), dtype=np.float32) < 0.2
    expected = np.packbits(spikes[:, ::-1], axis=2, bitorder="little").reshape(30, -1)
    packed = pack_frames(spikes)
    np.testing.assert_array_equal(packed, expected)
    np.testing.assert_array_equal(unpack_frames(packed, 240, 320), spikes)


def test_pack_and_unpack_reject_bad_input():
    with pytest.raises(DatError, match="multiple of 8"):
        pack_frames(np.zeros((2, 3, 3), dtype=bool))
    with pytest.raises(DatError, match=r"\(T, H, W\)"):
        pack_frames(np.zeros((4, 8), dtype=bool))
    with pytest.raises(DatError, match="bool or uint8"):
        pack_frames(np.zeros((1, 2, 8), dtype=np.float32))
    with pytest.raises(DatError, match=r"uint8 \(T, 2\)"):
        unpack_frames(np.zeros((1, 3), dtype=np.uint8), 2, 8)


# -- DatFile: memory-mapped reads ----------------------------------------------------------


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(4)
    spikes = rng.random((40, 6, 16)) < 0.3
    return write_dat(tmp_path / "clip.dat", spikes, meta={"threshold": 5.0}), spikes


def test_datfile_size_indexing_and_windows(clip):
    path, spikes = clip
    with DatFile(path) as dat:
        assert len(dat) == 40
        assert dat.shape == (40, 6, 16)
        assert (dat.height, dat.width, dat.flipud) == (6, 16, True)
        np.testing.assert_array_equal(dat[0], spikes[0])
        np.testing.assert_array_equal(dat[-1], spikes[-1])
        np.testing.assert_array_equal(dat[np.int64(7)], spikes[7])
        np.testing.assert_array_equal(dat[5:17], spikes[5:17])
        np.testing.assert_array_equal(dat[-10:], spikes[-10:])
        np.testing.assert_array_equal(dat[30:100], spikes[30:])
        np.testing.assert_array_equal(dat[3:30:4], spikes[3:30:4])
        assert dat[20:10].shape == (0, 6, 16)
        np.testing.assert_array_equal(dat.read(11, 9), dat[:][11:20])
        with pytest.raises(IndexError):
            dat[40]
        with pytest.raises(IndexError):
            dat[-41]


def test_read_packed_is_the_file_bytes(clip):
    path, spikes = clip
    raw = path.read_bytes()
    with DatFile(path) as dat:
        window = dat.read_packed(10, 3)
        assert window.dtype == np.uint8 and window.shape == (3, 12)
        assert window.tobytes() == raw[10 * 12 : 13 * 12]
        np.testing.assert_array_equal(window, pack_frames(spikes[10:13]))
        assert dat.read_packed().tobytes() == raw


def test_read_dat_start_count_equals_slicing_a_full_read(clip):
    path, spikes = clip
    full = read_dat(path)
    np.testing.assert_array_equal(full, spikes)
    np.testing.assert_array_equal(read_dat(path, start=12, count=5), full[12:17])
    np.testing.assert_array_equal(read_dat(path, start=35), full[35:])
    assert read_dat(path, start=40).shape == (0, 6, 16)


def test_window_read_of_a_big_file_does_not_load_it(tmp_path):
    # 64 MB of frames (sparse on disk, so cheap to make): reading the last 10 frames must
    # allocate about those 10 frames, not the file.
    height, width, frames = 240, 320, 7000
    path = tmp_path / "big.dat"
    with open(path, "wb") as fh:
        fh.truncate(frames * height * width // 8)
    dat = DatFile(path, height=height, width=width)
    dat[0]  # load the kernels first: compiling would count as allocations
    tracemalloc.start()
    try:
        tail = read_dat(path, height=height, width=width, start=frames - 10, count=10)
        packed = dat.read_packed(frames - 3, 3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tail.shape == (10, height, width) and not tail.any()
    assert packed.shape == (3, height * width // 8)
    assert peak < 4_000_000, f"peak {peak} bytes for a 10-frame window of a 64 MB file"


def test_datfile_pickles_by_path_and_reopens(clip):
    path, spikes = clip
    dat = DatFile(path)
    dat[0]  # map it first: the map itself must not be pickled
    clone = pickle.loads(pickle.dumps(dat))
    np.testing.assert_array_equal(clone[3:9], spikes[3:9])
    assert clone.meta == dat.meta
    dat.close()
    np.testing.assert_array_equal(dat[4], spikes[4])  # reopened lazily after close()


def test_a_file_cut_after_opening_is_an_error_on_read(clip):
    path, _ = clip
    dat = pickle.loads(pickle.dumps(DatFile(path)))  # as a DataLoader worker gets it
    with open(path, "r+b") as fh:
        fh.truncate(12 * 10)
    with pytest.raises(DatError, match="changed size"):
        dat[0]


def test_empty_file_has_no_frames(tmp_path):
    path = write_dat(tmp_path / "empty.dat", np.zeros((0, 4, 6), dtype=bool))
    assert path.stat().st_size == 0
    with DatFile(path) as dat:
        assert len(dat) == 0 and dat.shape == (0, 4, 6)
        assert dat[:].shape == (0, 4, 6)


# -- the sidecar ---------------------------------------------------------------------------


def test_sidecar_records_the_file_and_the_meta(clip):
    path, _ = clip
    assert sidecar_path(path) == path.with_name("clip.json")
    side = json.loads(sidecar_path(path).read_text())
    assert side["height"] == 6 and side["width"] == 16 and side["frames"] == 40
    assert side["flipud"] is True
    assert side["format"] == FORMAT == "spikesim-dat/1"
    assert isinstance(side["spikesim_version"], str)
    assert side["threshold"] == 5.0
    assert DatFile(path).meta == side


def test_meta_with_numpy_values_and_a_stale_frame_count(tmp_path):
    meta = {"seed": np.int64(3), "threshold": np.float32(4.5), "source": tmp_path / "v.avi"}
    meta["frames"] = 999  # the writer owns the frame count
    path = write_dat(tmp_path / "m.dat", np.ones((3, 2, 4), dtype=bool), meta=meta)
    side = DatFile(path).meta
    assert side["seed"] == 3 and side["threshold"] == 4.5 and side["frames"] == 3
    assert side["source"] == str(tmp_path / "v.avi")


def test_meta_that_contradicts_the_writer_is_refused(tmp_path):
    with pytest.raises(DatError, match="height"):
        DatWriter(tmp_path / "x.dat", 2, 4, meta={"height": 3})
    with pytest.raises(DatError, match="JSON"):
        DatWriter(tmp_path / "x.dat", 2, 4, meta={"bad": object()})
    assert list(tmp_path.iterdir()) == []


def test_flipud_false_file_reads_back_by_default(tmp_path):
    spikes = VECTOR_1
    path = write_dat(tmp_path / "raw.dat", spikes, flipud=False)
    assert json.loads(sidecar_path(path).read_text())["flipud"] is False
    np.testing.assert_array_equal(read_dat(path), spikes)
    assert DatFile(path).flipud is False
    # an explicit value overrides the sidecar
    np.testing.assert_array_equal(read_dat(path, flipud=True), spikes[:, ::-1])


# -- writing: streaming and atomic ---------------------------------------------------------


def test_streamed_writes_equal_one_write(tmp_path):
    rng = np.random.default_rng(5)
    spikes = rng.random((25, 4, 6)) < 0.5
    whole = write_dat(tmp_path / "whole.dat", spikes)
    path = tmp_path / "sub" / "streamed.dat"  # the folder is created
    with DatWriter(path, 4, 6) as writer:
        writer.write(spikes[:10])
        writer.write_packed(pack_frames(spikes[10:11]))
        assert writer.frames == 11
        assert not path.exists()  # nothing under the final name until the end
        (tmp,) = path.parent.glob("streamed.dat.tmp-*")  # a temporary in the same folder
        writer.write(spikes[11:])
    assert not tmp.exists()
    assert path.read_bytes() == whole.read_bytes()
    assert DatFile(path).meta["frames"] == 25


def test_an_exception_leaves_no_dat_no_sidecar_no_temporary(tmp_path):
    path = tmp_path / "broken.dat"
    with pytest.raises(KeyboardInterrupt), DatWriter(path, 2, 8) as writer:
        writer.write(np.ones((5, 2, 8), dtype=bool))
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_file(tmp_path, clip):
    path, spikes = clip
    before = path.read_bytes()
    with pytest.raises(RuntimeError), DatWriter(path, 6, 16, overwrite=True) as writer:
        writer.write(spikes[:3])
        raise RuntimeError("encoder crashed")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.dat", "clip.json"]


def test_a_killed_writer_leaves_no_dat(tmp_path):
    # The process dies mid-write (no exception handling runs): only a temporary file remains.
    code = (
        "import os, numpy as np\n"
        "from spikesim.dat import DatWriter\n"
        f"w = DatWriter({str(tmp_path / 'killed.dat')!r}, 2, 8)\n"
        "w.write(np.ones((100, 2, 8), dtype=bool))\n"
        "w._fh.flush()\n"
        "os._exit(9)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, check=False)
    assert done.returncode == 9
    assert not (tmp_path / "killed.dat").exists()
    assert not (tmp_path / "killed.json").exists()
    assert [p.name.startswith("killed.dat.tmp-") for p in tmp_path.iterdir()] == [True]


def test_close_inside_the_block_is_fine(tmp_path):
    with DatWriter(tmp_path / "c.dat", 2, 8) as writer:
        writer.write(np.ones((2, 2, 8), dtype=bool))
        assert writer.close() == tmp_path / "c.dat"
    assert len(DatFile(tmp_path / "c.dat")) == 2


def test_writer_rejects_wrong_shapes_and_writes_after_close(tmp_path):
    writer = DatWriter(tmp_path / "w.dat", 2, 8)
    with pytest.raises(DatError, match=r"\(t, 2, 8\)"):
        writer.write(np.zeros((1, 8, 2), dtype=bool))
    with pytest.raises(DatError, match=r"\(t, 2\)"):
        writer.write_packed(np.zeros((1, 3), dtype=np.uint8))
    writer.close()
    with pytest.raises(DatError, match="closed"):
        writer.write(np.zeros((1, 2, 8), dtype=bool))
    with pytest.raises(DatError, match="multiple of 8"):
        DatWriter(tmp_path / "odd.dat", 3, 3)


# -- errors a user can hit: one line each, saying what to do -------------------------------


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_bare_dat_needs_height_and_width(tmp_path):
    path = tmp_path / "camera.dat"
    path.write_bytes(pack_frames(VECTOR_2).tobytes())
    with pytest.raises(DatError) as err:
        read_dat(path)
    assert "pass height and width" in _one_line(err)
    np.testing.assert_array_equal(read_dat(path, height=2, width=4), VECTOR_2)
    assert DatFile(path, height=2, width=4).meta == {}


def test_truncated_file_is_an_error_not_a_cut(tmp_path, clip):
    path, _ = clip
    with open(path, "ab") as fh:
        fh.write(b"\x00" * 5)  # 40 frames of 12 bytes, plus 5 bytes
    with pytest.raises(DatError) as err:
        DatFile(path)
    text = _one_line(err)
    assert "485 bytes" in text and "12 bytes each" in text and "5 bytes left over" in text
    bare = tmp_path / "bare.dat"
    bare.write_bytes(b"\x00" * 13)
    with pytest.raises(DatError, match="13 bytes"):
        read_dat(bare, height=2, width=8)  # 2 bytes a frame


def test_sidecar_frame_count_must_match_the_file(clip):
    path, _ = clip
    path.write_bytes(path.read_bytes()[: 30 * 12])  # whole frames, but fewer than recorded
    with pytest.raises(DatError) as err:
        DatFile(path)
    assert "40 frames" in _one_line(err) and "30" in str(err.value)


def test_size_given_must_agree_with_the_sidecar(clip):
    path, spikes = clip
    with pytest.raises(DatError) as err:
        read_dat(path, height=12, width=8)
    assert "sidecar" in _one_line(err)
    np.testing.assert_array_equal(read_dat(path, height=6, width=16), spikes)


def test_unreadable_sidecar(clip):
    path, _ = clip
    sidecar_path(path).write_text("{not json")
    with pytest.raises(DatError) as err:
        DatFile(path)
    assert "JSON" in _one_line(err)
    sidecar_path(path).write_text('{"width": 16}')
    with pytest.raises(DatError, match="height"):
        DatFile(path)


def test_bad_size_missing_file_and_out_of_range(tmp_path, clip):
    path, _ = clip
    with pytest.raises(DatError) as err:
        read_dat(tmp_path / "nope.dat", height=2, width=8)
    assert "no such" in _one_line(err)
    bare = tmp_path / "odd.dat"
    bare.write_bytes(b"\x00" * 9)
    with pytest.raises(DatError, match="multiple of 8"):
        read_dat(bare, height=3, width=3)
    for start, count in [(41, None), (38, 5), (-1, 2), (0, -1)]:
        with pytest.raises(DatError) as err:
            read_dat(path, start=start, count=count)
        _one_line(err)
    with pytest.raises(DatError, match="out of range"):
        DatFile(path).read_packed(10, 31)
