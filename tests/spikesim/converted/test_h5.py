"""Reading converted datasets (folder and packed .h5) through one API; packing round trips."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from spikesim.converted import FolderDataset, open_dataset
from spikesim.converted.h5 import FORMAT, H5Dataset, pack_dataset
from spikesim.dat import pack_frames, write_dat
from spikesim.errors import DatasetError

H, W = 16, 24
CLIPS = [  # (class, stem, label, split, caption, frames): frame counts around the chunk size
    ("Grow", "v_Grow_g01_c01", 0, "train", "a square grows", 70),
    ("Grow", "v_Grow_g02_c01", 0, "test", None, 1),
    ("Shrink", "v_Shrink_g01_c01", 1, "train", "a square shrinks", 130),
]


def spikes_of(i: int, frames: int) -> np.ndarray:
    return np.random.default_rng(i).random((frames, H, W)) < 0.2


@pytest.fixture
def converted(tmp_path: Path) -> Path:
    """A converted folder written by hand, as `spikesim convert` lays it out."""
    root = tmp_path / "converted"
    rows = []
    for i, (cls, stem, label, split, caption, frames) in enumerate(CLIPS):
        rel = f"{cls}/{stem}.dat"
        write_dat(root / rel, spikes_of(i, frames), meta={"factor": 3, "seed": i})
        rows.append(
            {"path": rel, "class": cls, "label": label, "split": split, "caption": caption,
             "frames": frames, "height": H, "width": W, "source": f"{cls}/{stem}.avi",
             "factor": 3}
        )  # fmt: skip
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "classes.txt").write_text("Grow\nShrink\n")
    (root / "config.yaml").write_text(yaml.safe_dump({"spike_h": H, "spike_w": W, "flipud": True}))
    return root


def assert_same_dataset(a, b) -> None:
    assert a.classes == b.classes
    assert a.clips == b.clips
    assert (a.height, a.width, a.flipud) == (b.height, b.width, b.flipud)
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        np.testing.assert_array_equal(a.read_packed(i), b.read_packed(i))


# ---------------------------------------------------------------------------- the folder


def test_folder_reads_back_what_was_written(converted: Path) -> None:
    ds = open_dataset(converted)
    assert isinstance(ds, FolderDataset)
    assert ds.classes == ["Grow", "Shrink"]
    assert [c.path for c in ds.clips] == [f"{c}/{s}.dat" for c, s, *_ in CLIPS]
    assert [c.caption for c in ds.clips] == [c[4] for c in CLIPS]
    assert (ds.height, ds.width, ds.flipud) == (H, W, True)
    assert ds.indices("train") == [0, 2]
    for i, (*_, frames) in enumerate(CLIPS):
        want = spikes_of(i, frames)
        np.testing.assert_array_equal(ds.read(i), want)
        np.testing.assert_array_equal(ds.read_packed(i), pack_frames(want, flipud=True))
    np.testing.assert_array_equal(ds.read(2, start=60, count=7), spikes_of(2, 130)[60:67])
    assert ds.read(0, start=70, count=0).shape == (0, H, W)


def test_reading_past_the_end_is_an_error(converted: Path) -> None:
    ds = open_dataset(converted)
    with pytest.raises(DatasetError, match=r"frames \[65, 75\) are out of range"):
        ds.read(0, start=65, count=10)


def test_folder_without_manifest_says_how_to_make_one(converted: Path) -> None:
    (converted / "manifest.jsonl").unlink()
    with pytest.raises(DatasetError, match="spikesim convert SRC --out"):
        open_dataset(converted)
    (converted / "manifest.shard-0-of-2.jsonl").write_text("")
    with pytest.raises(DatasetError, match="--merge"):
        open_dataset(converted)


def test_missing_dat_is_an_error_at_open(converted: Path) -> None:
    (converted / "Shrink" / "v_Shrink_g01_c01.dat").unlink()
    with pytest.raises(DatasetError, match=r"1 clips .* have no .dat \(first: Shrink/"):
        open_dataset(converted)


def test_truncated_dat_is_an_error_at_read(converted: Path) -> None:
    ds = open_dataset(converted)
    path = converted / "Shrink" / "v_Shrink_g01_c01.dat"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DatasetError, match="damaged"):
        ds.read(2, 0, 1)


def test_manifest_label_disagreeing_with_classes_is_an_error(converted: Path) -> None:
    (converted / "classes.txt").write_text("Shrink\nGrow\n")
    with pytest.raises(DatasetError, match="does not match the class list"):
        open_dataset(converted)


def test_manifest_path_leaving_the_folder_is_an_error(converted: Path) -> None:
    manifest = converted / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[0]["path"] = "../outside.dat"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError, match="outside the dataset"):
        open_dataset(converted)


def test_something_else_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="neither a converted folder nor an HDF5"):
        open_dataset(tmp_path / "notes.txt")
    with pytest.raises(DatasetError, match="no such folder or file"):
        open_dataset(tmp_path / "missing")


# ---------------------------------------------------------------------------- the pack


@pytest.mark.parametrize("compression", [None, "lzf"])
def test_pack_round_trip_equals_the_folder(converted: Path, tmp_path: Path, compression) -> None:
    out = pack_dataset(converted, tmp_path / "ds.h5", compression=compression, chunk_frames=64)
    packed = open_dataset(out)
    assert isinstance(packed, H5Dataset)
    assert_same_dataset(open_dataset(converted), packed)
    np.testing.assert_array_equal(packed.read(2, 100, 30), spikes_of(2, 130)[100:130])
    side = json.loads((converted / "Shrink" / "v_Shrink_g01_c01.json").read_text())
    assert packed.sidecar(2) == side
    assert packed.config["spike_h"] == H
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == FORMAT
        # chunks of at most 64 frames, evened out: 130 = 44 + 44 + 42, 70 = 35 + 35
        assert f["spikes/0000002"].chunks == (44, H * W // 8)
        assert f["spikes/0000000"].chunks == (35, H * W // 8)
        assert f["spikes/0000001"].chunks == (1, H * W // 8)
        assert list(f["labels"][()]) == [0, 0, 1]
        assert [s.decode() for s in f["splits"][()]] == ["train", "test", "train"]
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def _read_in_child(ds: H5Dataset) -> bytes:
    return ds.read_packed(2, 10, 5).tobytes()


def test_packed_dataset_opens_its_own_handle_in_each_process(
    converted: Path, tmp_path: Path
) -> None:
    ds = open_dataset(pack_dataset(converted, tmp_path / "ds.h5"))
    want = ds.read_packed(2, 10, 5).tobytes()  # the parent now holds an open handle
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.read_packed(2, 10, 5).tobytes() == want
    with multiprocessing.get_context("fork").Pool(2) as pool:  # as DataLoader workers do
        assert pool.map(_read_in_child, [ds, ds]) == [want, want]


def test_interrupted_pack_leaves_nothing(converted: Path, tmp_path: Path, monkeypatch) -> None:
    original = FolderDataset.read_packed
    calls = []

    def interrupted_on_second_clip(self, i, start=0, count=None):
        calls.append(i)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, i, start, count)

    monkeypatch.setattr(FolderDataset, "read_packed", interrupted_on_second_clip)
    with pytest.raises(KeyboardInterrupt):
        pack_dataset(converted, tmp_path / "ds.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["converted"]


def test_packing_a_pack_or_a_foreign_h5_is_an_error(converted: Path, tmp_path: Path) -> None:
    out = pack_dataset(converted, tmp_path / "ds.h5")
    with pytest.raises(DatasetError, match="already packed"):
        pack_dataset(out, tmp_path / "again.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(DatasetError, match="not a spikesim pack"):
        open_dataset(tmp_path / "other.h5")
