"""FrameWriter / save_npy: what is written reopens right, and nothing half-written is left."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from spikesim.errors import SpikesimError
from spikesim.writers import FrameWriter, NpyWriter, save_npy


def ramp_frames(n: int, height: int, width: int) -> np.ndarray:
    """n distinct, smooth grayscale frames (lossy codecs keep them close)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([((x + y) * 3 + 20 * i) % 200 + 20 for i in range(n)]).astype(np.uint8)


def read_video(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    cap.release()
    return frames, fps


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_reopens_with_frame_count_size_and_fps(tmp_path, suffix):
    frames = ramp_frames(7, 48, 64)
    out = tmp_path / f"tfi{suffix}"
    with FrameWriter(out, fps=25.0) as writer:
        writer.write(frames[:5])  # a stack
        writer.write(frames[5])  # one image
        writer.write(frames[6:7])
        assert not out.exists()  # only the temporary file exists until the end
    assert writer.frames == 7
    got, fps = read_video(out)
    assert len(got) == 7
    assert got[0].shape == (48, 64)
    assert fps == pytest.approx(25.0, rel=0.01)
    # Lossy, but clearly the same pictures in the same order.
    assert all(np.abs(g.astype(int) - f).mean() < 8 for g, f in zip(got, frames, strict=True))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".mp4", ".AVI"])
def test_odd_sizes_are_padded_to_even_for_video(tmp_path, suffix):
    out = tmp_path / f"odd{suffix}"
    with FrameWriter(out) as writer:
        writer.write(ramp_frames(3, 17, 33))
    got, _ = read_video(out)
    assert len(got) == 3
    assert got[0].shape == (18, 34)


def test_png_folder_is_lossless_and_numbered(tmp_path):
    frames = ramp_frames(12, 5, 7)
    frames[0, 0, 0], frames[0, -1, -1] = 0, 255
    out = tmp_path / "images"
    with FrameWriter(out) as writer:
        writer.write(frames[:10])
        writer.write(frames[10])
        writer.write(frames[11:])
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:06d}.png" for i in range(12)]
    for i, name in enumerate(names):
        np.testing.assert_array_equal(cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED), frames[i])
    assert leftovers(tmp_path) == []


def test_png_folder_may_replace_an_empty_folder_but_never_a_full_one(tmp_path):
    (tmp_path / "empty").mkdir()
    with FrameWriter(tmp_path / "empty") as writer:
        writer.write(ramp_frames(2, 4, 4))
    assert len(list((tmp_path / "empty").iterdir())) == 2
    with pytest.raises(SpikesimError, match="existing folder"):
        FrameWriter(tmp_path / "empty")


@pytest.mark.parametrize("name", ["clip.mp4", "clip.avi", "pngs"])
def test_an_error_inside_with_leaves_nothing(tmp_path, name):
    with pytest.raises(RuntimeError), FrameWriter(tmp_path / name) as writer:
        writer.write(ramp_frames(3, 16, 16))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_video_is_replaced_only_when_the_new_one_is_complete(tmp_path):
    out = tmp_path / "clip.avi"
    with FrameWriter(out) as writer:
        writer.write(ramp_frames(4, 16, 16))
    before = out.read_bytes()
    with pytest.raises(RuntimeError), FrameWriter(out) as writer:
        writer.write(ramp_frames(9, 16, 16))
        raise RuntimeError("stop")
    assert out.read_bytes() == before
    with FrameWriter(out) as writer:
        writer.write(ramp_frames(2, 16, 16))
    assert len(read_video(out)[0]) == 2


def test_bad_frames_are_rejected(tmp_path):
    with FrameWriter(tmp_path / "x") as writer:
        with pytest.raises(SpikesimError, match="uint8"):
            writer.write(np.zeros((4, 4), np.float32))
        with pytest.raises(SpikesimError, match="uint8"):
            writer.write(np.zeros((1, 2, 4, 4), np.uint8))
        writer.write(np.zeros((4, 4), np.uint8))
        with pytest.raises(SpikesimError, match="differs"):
            writer.write(np.zeros((4, 6), np.uint8))


@pytest.mark.parametrize("name", ["x.mkv", "x.png", "x.npy"])
def test_unsupported_file_suffixes_are_refused(tmp_path, name):
    with pytest.raises(SpikesimError, match=r"\.mp4, \.avi, or a folder"):
        FrameWriter(tmp_path / name)


def test_a_video_with_no_frames_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(SpikesimError, match="no frames"), FrameWriter(tmp_path / "x.mp4"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_bad_fps_is_refused(tmp_path):
    with pytest.raises(SpikesimError, match="fps"):
        FrameWriter(tmp_path / "x.mp4", fps=0)


def test_parent_folders_are_created(tmp_path):
    with FrameWriter(tmp_path / "a" / "b" / "clip.avi") as writer:
        writer.write(ramp_frames(1, 8, 8))
    assert (tmp_path / "a" / "b" / "clip.avi").is_file()


def test_save_npy_round_trips_atomically(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = save_npy(tmp_path / "out" / "tfi.npy", array)
    assert path == tmp_path / "out" / "tfi.npy"
    np.testing.assert_array_equal(np.load(path), array)
    assert leftovers(tmp_path / "out") == []
    # The name is used as given (np.save alone would add ".npy").
    assert save_npy(tmp_path / "raw", array).is_file()


def test_save_npy_failure_leaves_nothing(tmp_path):
    with pytest.raises(ValueError):
        save_npy(tmp_path / "bad.npy", np.array([object()]))
    assert list(tmp_path.iterdir()) == []


def test_npy_writer_streams_chunks_into_one_array(tmp_path):
    array = np.arange(5 * 3 * 4, dtype=np.uint8).reshape(5, 3, 4)
    path = tmp_path / "tfi.npy"
    with NpyWriter(path, array.shape) as writer:
        writer.write(array[:2])
        writer.write(array[2])  # one frame
        writer.write(array[3:])
        assert not path.exists()
    np.testing.assert_array_equal(np.load(path), array)
    assert leftovers(tmp_path) == []


def test_npy_writer_refuses_too_few_or_too_many_frames_and_leaves_nothing(tmp_path):
    with (
        pytest.raises(SpikesimError, match="2 of 3 frames"),
        NpyWriter(tmp_path / "a.npy", (3, 2)) as w,
    ):
        w.write(np.zeros((2, 2), np.uint8))
    with (
        pytest.raises(SpikesimError, match="more than"),
        NpyWriter(tmp_path / "b.npy", (1, 2)) as w,
    ):
        w.write(np.zeros((2, 2), np.uint8))
    with pytest.raises(SpikesimError, match="uint8"), NpyWriter(tmp_path / "c.npy", (1, 2)) as w:
        w.write(np.zeros((1, 2), np.float32))
    assert list(tmp_path.iterdir()) == []
