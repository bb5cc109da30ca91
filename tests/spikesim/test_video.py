"""Reading source videos: real clips, every container we promise, luma, resize + centre-crop,
streaming, and one clear VideoError line for every kind of bad file."""

from __future__ import annotations

import itertools
import shutil
import tracemalloc
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from spikesim.errors import VideoError
from spikesim.video import (
    VideoInfo,
    count_frames,
    iter_frames,
    probe_video,
    read_video,
    resize_crop,
    to_luma,
)

# SOURCES.md: frames that actually decode (HMDB51 headers report one more).
DECODED = {
    "v_SoccerJuggling_g23_c01.avi": 240,
    "v_Basketball_g01_c01.avi": 141,
    "RATRACE_wave_f_nm_np1_fr_goo_37.avi": 72,
    "SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi": 74,
    "Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi": 83,
}


def clip(real_clips: list[Path], stem: str) -> Path:
    return next(p for p in real_clips if p.name.startswith(stem))


def grey_levels(count: int) -> list[int]:
    return [(40 + 20 * k) % 256 for k in range(count)]


def write_video(path: Path, count: int, size=(48, 64), fourcc="MJPG", fps=25.0) -> Path:
    """``count`` flat grey frames, frame k at grey level 40 + 20 k."""
    height, width = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"this OpenCV cannot write {path.suffix} with {fourcc}"
    for level in grey_levels(count):
        writer.write(np.full((height, width, 3), level, np.uint8))
    writer.release()
    return path


def write_gif(path: Path, count: int, size=(48, 64)) -> Path:
    """A white square on black moving 5 px right per frame (OpenCV's GIF palette keeps black
    and white, not arbitrary greys)."""
    frames = []
    for k in range(count):
        frame = np.zeros((*size, 3), np.uint8)
        frame[10:20, 5 + 5 * k : 15 + 5 * k] = 255
        frames.append(frame)
    animation = cv2.Animation()
    animation.frames = frames
    animation.durations = [40] * count
    assert cv2.imwriteanimation(str(path), animation)
    return path


# --------------------------------------------------------------------------- real clips


def test_real_clips_decode_to_the_frame_counts_of_sources_md(real_clips):
    assert sorted(p.name for p in real_clips) == sorted(DECODED)
    for path in real_clips:
        assert count_frames(path) == DECODED[path.name], path.name
        frames = sum(1 for _ in iter_frames(path, size=(120, 160)))
        assert frames == DECODED[path.name], path.name


def test_hmdb51_headers_report_one_frame_too_many_and_are_not_trusted(real_clips):
    path = clip(real_clips, "RATRACE")
    info = probe_video(path)
    assert info.frames_reported == DECODED[path.name] + 1
    assert count_frames(path) == DECODED[path.name]  # and iter_frames does not call it truncated


def test_probe_gives_fps_and_size(real_clips):
    info = probe_video(clip(real_clips, "v_Basketball"))
    assert isinstance(info, VideoInfo)
    assert info.fps == pytest.approx(29.97, abs=0.01)
    assert (info.width, info.height) == (320, 240)
    assert probe_video(clip(real_clips, "RATRACE")).width == 560


def test_the_560_wide_clip_is_centre_cropped_to_240x320(real_clips):
    path = clip(real_clips, "RATRACE")
    native = next(iter_frames(path, size=None))
    assert native.shape == (240, 560)
    frame = next(iter_frames(path, size=(240, 320)))
    assert frame.shape == (240, 320) and frame.dtype == np.float32
    # Height already fits, so nothing is resampled: the centred 320 columns, exactly.
    assert np.array_equal(frame, native[:, 120:440])


def test_frames_are_float32_luma_in_0_1(real_clips):
    frame = next(iter_frames(clip(real_clips, "v_Soccer")))
    assert frame.dtype == np.float32 and frame.shape == (240, 320)
    assert 0.0 <= frame.min() and frame.max() <= 1.0
    assert len(np.unique(frame)) > 256  # float precision kept, not 8-bit grey levels


def test_iter_frames_streams_in_bounded_memory(real_clips):
    path = clip(real_clips, "v_Soccer")  # 240 frames = 70 MiB as float32 at 240x320
    frames = iter_frames(path, size=(240, 320))
    assert isinstance(frames, types.GeneratorType)
    tracemalloc.start()
    try:
        n = sum(1 for _ in frames)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 240
    assert peak < 8 * 240 * 320 * 4, peak  # a few frames, never the clip


def test_stopping_early_is_not_an_error(real_clips):
    frames = list(itertools.islice(iter_frames(clip(real_clips, "v_Basketball")), 3))
    assert len(frames) == 3


# --------------------------------------------------------------------------- containers


@pytest.mark.parametrize(
    ("name", "fourcc"), [("a.avi", "MJPG"), ("a.mp4", "mp4v"), ("a.mkv", "MJPG")]
)
def test_avi_mp4_mkv_decode(tmp_path, name, fourcc):
    path = write_video(tmp_path / name, 7, fourcc=fourcc)
    frames = read_video(path, size=None)
    assert frames.shape == (7, 48, 64)
    levels = np.array(grey_levels(7)) / 255
    np.testing.assert_allclose(frames.mean(axis=(1, 2)), levels, atol=3 / 255)
    info = probe_video(path)
    assert (info.width, info.height, info.fps) == (64, 48, 25.0)


def test_gif_decodes(tmp_path):
    """This OpenCV build (FFmpeg backend) reads animated GIFs."""
    path = write_gif(tmp_path / "a.gif", 5)
    frames = read_video(path, size=None)
    assert frames.shape == (5, 48, 64)
    for k, frame in enumerate(frames):
        columns = np.nonzero(frame[15] > 0.5)[0]
        assert (columns.min(), columns.max()) == (5 + 5 * k, 14 + 5 * k)


# --------------------------------------------------------------------------- luma, resize


def test_luma_uses_the_bt601_weights_in_float():
    bgr = np.array([[[0, 0, 255], [0, 255, 0], [255, 0, 0], [10, 20, 30]]], np.uint8)
    expected = np.array([[0.299, 0.587, 0.114, (0.114 * 10 + 0.587 * 20 + 0.299 * 30) / 255]])
    np.testing.assert_allclose(to_luma(bgr), expected, atol=1e-6)
    assert to_luma(bgr).dtype == np.float32
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])
    np.testing.assert_allclose(to_luma(bgra), expected, atol=1e-6)
    assert to_luma(np.full((2, 2), 51, np.uint8))[0, 0] == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((240, 560), (240, 320)),
        ((480, 640), (240, 320)),
        ((120, 160), (240, 320)),
        ((320, 240), (240, 320)),
        ((101, 77), (32, 48)),
        ((240, 320), (240, 320)),
    ],
)
def test_resize_covers_the_size_then_crops_the_centre(shape, size):
    img = np.zeros(shape, np.float32)
    cy, cx = shape[0] // 2, shape[1] // 2
    img[cy - 2 : cy + 2, cx - 2 : cx + 2] = 1.0  # a dot in the middle stays in the middle
    out = resize_crop(img, size)
    assert out.shape == size and out.dtype == np.float32
    ys, xs = np.nonzero(out > 0.25)
    assert abs(ys.mean() - size[0] / 2) <= 2 and abs(xs.mean() - size[1] / 2) <= 2


def test_same_size_is_untouched():
    img = np.random.default_rng(0).random((24, 32)).astype(np.float32)
    assert np.array_equal(resize_crop(img, (24, 32)), img)


def test_shrinking_averages_areas():
    img = np.zeros((4, 4), np.float32)
    img[::2, ::2] = 1.0  # one bright pixel in every 2x2 block
    np.testing.assert_allclose(resize_crop(img, (2, 2)), 0.25)


# --------------------------------------------------------------------------- bad files


def one_line_video_error(fn, path, match):
    with pytest.raises(VideoError, match=match) as info:
        fn(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("fn", [probe_video, count_frames, read_video])
def test_a_missing_file_is_a_video_error(tmp_path, fn):
    one_line_video_error(fn, tmp_path / "nope.avi", "no such video file")


@pytest.mark.parametrize("fn", [probe_video, count_frames, read_video])
def test_a_text_file_renamed_avi_is_a_video_error(tmp_path, fn):
    path = tmp_path / "notes.avi"
    path.write_text("these are not frames\n" * 20)
    one_line_video_error(fn, path, "cannot open it as a video")


def test_an_empty_file_and_a_folder_are_video_errors(tmp_path):
    (tmp_path / "empty.mp4").touch()
    one_line_video_error(read_video, tmp_path / "empty.mp4", "empty")
    (tmp_path / "dir.avi").mkdir()
    one_line_video_error(read_video, tmp_path / "dir.avi", "not a file")


def test_a_truncated_clip_is_a_video_error_and_its_good_neighbour_still_reads(tmp_path, real_clips):
    good = shutil.copy(clip(real_clips, "v_Basketball"), tmp_path / "good.avi")
    data = Path(good).read_bytes()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(data[: len(data) // 2])
    one_line_video_error(read_video, bad, "truncated")
    assert sum(1 for _ in iter_frames(bad, size=(24, 32), strict=False)) > 10
    assert len(read_video(good, size=(24, 32))) == 141


def test_a_cut_mp4_is_a_video_error(tmp_path):
    path = write_video(tmp_path / "a.mp4", 12, fourcc="mp4v")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the index (moov atom) is at the end: lost
    one_line_video_error(read_video, path, "cannot open")


def test_a_bad_size_is_refused(real_clips):
    with pytest.raises(VideoError, match="size"):
        next(iter_frames(clip(real_clips, "v_Basketball"), size=(0, 320)))
