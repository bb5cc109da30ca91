"""Event files (spikesim.events): round trips, windows by time, atomic writes, v2e's own
files, the model representations, and the `events` command."""

from __future__ import annotations

import itertools
import json
import pickle
from pathlib import Path

import click
import cv2
import h5py
import numpy as np
import pytest

from cli._common import run_group
from cli.commands_events import events as events_command
from spikesim.dat import sidecar_path
from spikesim.dvs import EVENT_DTYPE, DVSEncoder, dvs
from spikesim.events import (
    EventFile,
    EventsError,
    EventWriter,
    event_count_frames,
    event_grey_frame,
    event_time_bins,
    read_events,
    write_events,
)
from spikesim.files import TMP_MARK


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    """Noisy DVS events of a random walk, 40 frames of 20x30 at 100 fps (0.4 s)."""
    rng = np.random.default_rng(0)
    x = np.clip(np.exp(rng.normal(0, 0.3, (40, 20, 30)).cumsum(0)) * 0.2, 0, 1)
    ev = dvs(x.astype(np.float32), fps=100.0, preset="noisy", seed=1)
    assert len(ev) > 5000
    return ev


def make_events(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    return np.array(rows, dtype=EVENT_DTYPE)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if TMP_MARK in p.name]


# -- files ------------------------------------------------------------------------------------


def test_round_trip_in_v2e_layout_with_sidecar(tmp_path, stream):
    path = tmp_path / "clip.h5"
    with EventWriter(path, 20, 30, meta={"source": "walk"}, chunk_rows=700) as w:
        for a, b in itertools.pairwise([0, 1, 1000, 1001, 4000, len(stream)]):
            w.append(stream[a:b])
            assert not path.exists()  # nothing under the final name before close
        w.append(stream[:0])
    np.testing.assert_array_equal(read_events(path), stream)
    with h5py.File(path, "r") as f:
        ds = f["events"]
        assert ds.shape == (len(stream), 4) and ds.dtype == np.int64
        assert ds.chunks == (700, 4) and ds.compression == "gzip"
        rows = ds[()]
        assert f.attrs["height"] == 20 and f.attrs["width"] == 30
    np.testing.assert_array_equal(rows[:, 0], stream["t"])
    np.testing.assert_array_equal(rows[:, 3], (stream["p"] > 0).astype(int))  # v2e: 1 ON, 0 OFF
    side = json.loads(sidecar_path(path).read_text())
    assert side["events"] == len(stream) and side["source"] == "walk"
    assert (side["height"], side["width"]) == (20, 30)
    assert side["t_first_us"] == stream["t"][0] and side["t_last_us"] == stream["t"][-1]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("step", [1, 997, 10_000, 10**7])
def test_windows_by_time_equal_slicing_the_whole_array(tmp_path, stream, step):
    path = write_events(tmp_path / "e.h5", stream, 20, 30, chunk_rows=512, index_step_us=step)
    t = stream["t"]
    rng = np.random.default_rng(step)
    edges = [None, -5, 0, 9_999, 10_000, 10_001, int(t[-1]), int(t[-1]) + 1, 10**9]
    edges += rng.integers(0, int(t[-1]) + 2, 20).tolist() + t[rng.integers(0, len(t), 10)].tolist()
    with EventFile(path) as f:
        assert len(f) == len(stream) and f.t_range == (t[0], t[-1])
        for t0, t1 in itertools.product(edges[:9], edges):
            lo = -(2**62) if t0 is None else t0
            hi = 2**62 if t1 is None else t1
            np.testing.assert_array_equal(f.read(t0, t1), stream[(t >= lo) & (t < hi)])
        for t0, t1 in zip(edges[9:], edges[19:], strict=False):
            np.testing.assert_array_equal(f.read(t0, t1), stream[(t >= t0) & (t < t1)])


def test_windows_stream_the_file_in_order(tmp_path, stream):
    path = write_events(tmp_path / "e.h5", stream, 20, 30, chunk_rows=256)
    with EventFile(path) as f:
        parts = list(f.windows(7_000))
        starts = [s for s, _ in parts]
        assert starts == list(range(0, int(stream["t"][-1]) + 1, 7_000))
        for s, ev in parts:
            assert ((ev["t"] >= s) & (ev["t"] < s + 7_000)).all()
        np.testing.assert_array_equal(np.concatenate([ev for _, ev in parts]), stream)
        middle = list(f.windows(5_000, t0=100_000, t1=112_000))
    assert [s for s, _ in middle] == [100_000, 105_000, 110_000]
    np.testing.assert_array_equal(middle[-1][1], read_events(path, 110_000, 112_000))


def test_streaming_a_real_clip_through_encoder_and_writer(tmp_path, real_clips):
    from spikesim import iter_frames

    frames = list(itertools.islice(iter_frames(real_clips[1], size=(48, 64)), 30))
    enc = DVSEncoder(48, 64, fps=25.0, preset="v2e", seed=3)
    writer = EventWriter(tmp_path / "clip.h5", 48, 64)
    for a in range(0, 30, 7):
        writer.append(enc.push(np.stack(frames[a : a + 7])))
    writer.close(meta={"encoder": enc.settings(), "frames": enc.frames_done})
    got = read_events(tmp_path / "clip.h5")
    np.testing.assert_array_equal(got, dvs(np.stack(frames), fps=25.0, preset="v2e", seed=3))
    with EventFile(tmp_path / "clip.h5") as f:
        assert f.meta["encoder"]["preset"] == "v2e" and f.meta["frames"] == 30
        assert f.meta["events"] == len(got) > 0


def test_interrupted_writes_leave_nothing(tmp_path, stream):
    path = tmp_path / "e.h5"
    with pytest.raises(RuntimeError):
        with EventWriter(path, 20, 30) as w:
            w.append(stream[:100])
            raise RuntimeError("stop")
    w = EventWriter(path, 20, 30)
    w.append(stream)
    w.abort()
    assert list(tmp_path.iterdir()) == []
    w = EventWriter(path, 20, 30)
    del w  # dropped without close
    assert list(tmp_path.iterdir()) == []


def test_empty_file_round_trips(tmp_path):
    path = write_events(tmp_path / "none.h5", np.empty(0, EVENT_DTYPE), 4, 6)
    with EventFile(path) as f:
        assert len(f) == 0 and f.t_range is None
        assert len(f.read(0, 100)) == 0 and list(f.windows(10)) == []  # no time span


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (make_events([(5, 0, 0, 1), (4, 0, 0, 1)]), "sorted"),
        (make_events([(5, 30, 0, 1)]), "outside 20x30"),
        (make_events([(5, 0, 0, 0)]), r"\+1 or -1"),
        (make_events([(-1, 0, 0, 1)]), "sorted"),
        (np.zeros((3, 4), np.int64), "structured array"),
    ],
)
def test_writer_rejects_bad_events(tmp_path, bad, match):
    with EventWriter(tmp_path / "e.h5", 20, 30) as w:
        with pytest.raises(EventsError, match=match):
            w.append(bad)
        w.append(make_events([(10, 1, 1, 1)]))
        with pytest.raises(EventsError, match="before the last ones"):
            w.append(make_events([(9, 1, 1, 1)]))
    assert len(read_events(tmp_path / "e.h5")) == 1


def test_writer_rejects_bad_settings(tmp_path):
    with pytest.raises(EventsError, match="meta says height=3"):
        EventWriter(tmp_path / "e.h5", 20, 30, meta={"height": 3})
    with pytest.raises(EventsError, match="compression"):
        EventWriter(tmp_path / "e.h5", 20, 30, compression="zstd")
    with pytest.raises(EventsError, match="JSON"):
        EventWriter(tmp_path / "e.h5", 20, 30, meta={"x": object()})
    with pytest.raises(EventsError, match="width"):
        EventWriter(tmp_path / "e.h5", 20, 0)
    w = EventWriter(tmp_path / "e.h5", 20, 30)
    w.close()
    with pytest.raises(EventsError, match="already closed"):
        w.append(make_events([(1, 1, 1, 1)]))
    assert leftovers(tmp_path) == []


def test_v2e_files_are_read_by_bisection(tmp_path, stream):
    path = tmp_path / "v2e.h5"
    with h5py.File(path, "w") as f:  # as v2e writes it: uint32, polarity 0/1, no index
        rows = np.stack([stream["t"], stream["x"], stream["y"], stream["p"] > 0], 1)
        f.create_dataset("events", data=rows.astype(np.uint32), compression="gzip")
    with pytest.raises(EventsError, match="pass height and width"):
        EventFile(path)
    t = stream["t"]
    with EventFile(path, height=20, width=30) as f:
        np.testing.assert_array_equal(f.read(), stream)
        for t0, t1 in [(0, 1), (10_000, 55_555), (int(t[7]), int(t[-3])), (5, 10**9)]:
            np.testing.assert_array_equal(f.read(t0, t1), stream[(t >= t0) & (t < t1)])


def test_event_file_errors_and_pickling(tmp_path, stream):
    with pytest.raises(EventsError, match="no such event file"):
        EventFile(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(EventsError, match="not a readable HDF5"):
        EventFile(tmp_path / "junk.h5")
    path = write_events(tmp_path / "e.h5", stream, 20, 30)
    with pytest.raises(EventsError, match="disagrees"):
        EventFile(path, height=21)
    with EventFile(path) as f:
        f.read(0, 10)
        clone = pickle.loads(pickle.dumps(f))
    np.testing.assert_array_equal(clone.read(20_000, 30_000), read_events(path, 20_000, 30_000))
    clone.close()
    with pytest.raises(EventsError, match="out of range"):
        EventFile(path).read_rows(0, len(stream) + 1)


# -- representations --------------------------------------------------------------------------


def test_count_frames_count_each_event_once(stream):
    t0, t1, n_bins = 50_000, 330_000, 7
    got = event_count_frames(stream, 20, 30, n_bins, t0=t0, t1=t1)
    want = np.zeros((n_bins, 2, 20, 30), np.int32)
    for t, x, y, p in stream.tolist():
        if t0 <= t < t1:
            want[(t - t0) * n_bins // (t1 - t0), 0 if p > 0 else 1, y, x] += 1
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    whole = event_count_frames(stream, 20, 30, 1)
    assert whole.sum() == len(stream)
    assert whole[0, 0].sum() == (stream["p"] > 0).sum()


def test_grey_frame_is_counts_over_max_plus_one():
    ev = make_events([(1, 0, 0, 1), (2, 0, 0, -1), (3, 2, 1, 1), (4, 0, 0, 1)])
    grey = event_grey_frame(ev, 2, 3)
    want = np.zeros((2, 3), np.float32)
    want[0, 0], want[1, 2] = 3 / 4, 1 / 4
    np.testing.assert_allclose(grey, want)
    assert event_grey_frame(np.empty(0, EVENT_DTYPE), 2, 3).max() == 0.0


def test_time_bins_signed_and_voxel(stream):
    counts = event_count_frames(stream, 20, 30, 5)
    signed = event_time_bins(stream, 20, 30, 5)
    np.testing.assert_array_equal(signed, counts[:, 0] - counts[:, 1])
    voxel = event_time_bins(stream, 20, 30, 5, mode="voxel")
    # Each event's polarity is shared between two neighbouring bins: the sum per pixel stays.
    np.testing.assert_allclose(voxel.sum(0), signed.sum(0), atol=1e-4)
    ev = make_events([(0, 0, 0, 1), (50, 1, 0, -1), (75, 2, 0, 1), (100, 0, 0, 1)])
    v = event_time_bins(ev, 1, 3, 3, t0=0, t1=101, mode="voxel")
    # tau = 2 t / 100: t=0 -> bin 0; t=50 -> bin 1; t=75 -> halves of bins 1, 2; t=100 -> 2.
    np.testing.assert_allclose(v[:, 0, 0], [1, 0, 1])
    np.testing.assert_allclose(v[:, 0, 1], [0, -1, 0])
    np.testing.assert_allclose(v[:, 0, 2], [0, 0.5, 0.5])


def test_representations_reject_bad_input(stream):
    with pytest.raises(EventsError, match="outside 10x30"):
        event_count_frames(stream, 10, 30, 2)
    with pytest.raises(EventsError, match="n_bins"):
        event_count_frames(stream, 20, 30, 0)
    with pytest.raises(EventsError, match="empty"):
        event_time_bins(stream, 20, 30, 2, t0=5, t1=5)
    with pytest.raises(EventsError, match="mode"):
        event_time_bins(stream, 20, 30, 2, mode="histogram")


# -- the `events` command -----------------------------------------------------------------------


def run_events(capsys, *args: str) -> tuple[int, str, str]:
    group = click.Group(commands={"events": events_command})
    with pytest.raises(SystemExit) as exit_:
        run_group(group, ["events", *args])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_events_command_draws_a_png_grid_and_a_video(tmp_path, stream, capsys):
    path = write_events(tmp_path / "e.h5", stream, 20, 30)
    code, out, err = run_events(capsys, str(path), "--out", str(tmp_path / "e.png"))
    assert code == 0, err
    assert "16 frames of 10 ms" in out
    png = cv2.imread(str(tmp_path / "e.png"))
    assert png.shape == (4 * 22 - 2, 4 * 32 - 2, 3)
    colours = {tuple(c) for c in png.reshape(-1, 3).tolist()}
    assert {(128, 128, 128), (0, 0, 255), (255, 0, 0), (64, 64, 192)} <= colours  # one ON: half
    assert (png[:20, :30] == 128).mean() > 0.5  # the first window: mostly no events
    code, out, err = run_events(
        capsys, str(path), "--out", str(tmp_path / "e.mp4"), "--bin-ms", "20"
    )
    assert code == 0, err
    cap = cv2.VideoCapture(str(tmp_path / "e.mp4"))
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert frames == -(-(int(stream["t"][-1]) + 1) // 20_000)
    assert leftovers(tmp_path) == []


def test_events_command_refuses_to_overwrite_and_bad_input(tmp_path, stream, capsys):
    path = write_events(tmp_path / "e.h5", stream, 20, 30)
    (tmp_path / "e.png").write_bytes(b"keep")
    code, _, err = run_events(capsys, str(path), "--out", str(tmp_path / "e.png"))
    assert code == 2 and "pass --overwrite" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "e.png").read_bytes() == b"keep"
    code, _, err = run_events(capsys, str(path), "--out", str(tmp_path / "e.png"), "--overwrite")
    assert code == 0 and cv2.imread(str(tmp_path / "e.png")) is not None
    code, _, err = run_events(capsys, str(path), "--out", str(tmp_path / "e.gif"))
    assert code == 2 and ".png, .mp4" in err
    code, _, err = run_events(capsys, str(tmp_path / "no.h5"), "--out", str(tmp_path / "x.png"))
    assert code == 2 and err.startswith("error:") and "no such event file" in err
    assert len(err.strip().splitlines()) == 1
