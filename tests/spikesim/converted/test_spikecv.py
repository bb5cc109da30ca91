"""A converted folder loads with SpikeCV's loaders.

SpikeCV (github.com/Zyj061/SpikeCV) needs torch and a device SDK at import, so its loaders are
re-implemented here from their documented behaviour, as plain functions:

- ``data_parameter_dict(path, task)`` (spkData/load_dat.py): finds ``config.yaml`` by walking
  the given folder top-down (first hit); the task's code (``LABEL_DATA_TYPE``: raw 0 ...
  recognition 6) must be in ``labeled_data_type``, else ValueError; with ``is_labeled`` true and
  a folder it takes the first ``*.dat`` directly in that folder (IndexError when there is
  none); otherwise the parameters are ``spike_h``, ``spike_w``, ``filelist=None`` and
  ``filepath`` = the path given.
- ``DatasetRecognition(filepath, spike_h, spike_w, train)`` (spkData/object_recognition.py):
  ``<filepath>/train`` or ``/test``; classes are its sub-folders, sorted, label = index; every
  file in a class folder is a sample, read by ``SpikeStream``.
- ``SpikeStream.get_spike_matrix(flipud=True)``: appends ``.dat`` to a path without it; the
  file is frames of H*W bits, pixel k of a frame in byte k // 8 at bit k % 8 (least
  significant first), rows top to bottom as stored, then flipped upside down.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from spikesim.convert import ConvertSettings, convert_dataset, merge_shards
from spikesim.converted import open_dataset
from spikesim.converted.layout import read_manifest, write_spikecv_view
from spikesim.dat import DatFile
from spikesim.errors import DatasetError

LABEL_DATA_TYPE = {"raw": 0, "reconstruction": 1, "optical_flow": 2, "recognition": 6}
SMALL = ConvertSettings(size=(32, 48), factor=2, interp="linear", seed=3)


def spikecv_parameter_dict(path: Path, task: str) -> dict:
    config = None
    for root, _dirs, files in os.walk(path if path.is_dir() else path.parent):
        if "config.yaml" in files:
            config = Path(root) / "config.yaml"
            break
    assert config is not None, "SpikeCV finds no config.yaml"
    configs = yaml.load(config.read_text(), Loader=yaml.FullLoader)
    if LABEL_DATA_TYPE[task] not in configs.get("labeled_data_type"):
        raise ValueError("there is no labeled data for this task in the dataset")
    params = {"spike_h": configs["spike_h"], "spike_w": configs["spike_w"], "filelist": None}
    if configs.get("is_labeled") and path.is_dir():
        filelist = sorted(path.glob("*.dat"), key=os.path.getmtime)
        params["filepath"] = str(filelist[0])  # IndexError without a top-level .dat
        params["filelist"] = filelist
    else:
        params["filepath"] = str(path)
    return params


def spikecv_read(path: str, h: int, w: int) -> np.ndarray:
    if os.path.splitext(path)[-1][1:] != "dat":
        path = path + ".dat"
    raw = np.frombuffer(Path(path).read_bytes(), np.uint8)
    n = len(raw) // (h * w // 8)
    pix = np.arange(n * h * w).reshape(n, h, w)
    comparator = np.left_shift(1, pix % 8)
    frames = np.bitwise_and(raw[pix // 8], comparator) == comparator
    return frames[:, ::-1, :]


class SpikeCVRecognition:
    def __init__(self, filepath: str, spike_h: int, spike_w: int, train: bool = True, **_kw):
        self.path = os.path.join(filepath, "train" if train else "test")
        self.h, self.w = spike_h, spike_w
        self.classes = sorted(e.name for e in os.scandir(self.path) if e.is_dir())
        self.samples = [
            (os.path.join(self.path, c, f), i)
            for i, c in enumerate(self.classes)
            for f in os.listdir(os.path.join(self.path, c))
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        path, target = self.samples[index]
        return spikecv_read(path, self.h, self.w).astype(np.float32), target


def _with_test_split(src: Path) -> Path:
    """hmdb51-mini with an official split file: wave clips train, cartwheel test."""
    split = src / "testTrainMulti_7030_splits"
    split.mkdir()
    for cls in ("wave", "cartwheel"):
        tag = "2" if cls == "cartwheel" else "1"
        lines = [f"{p.name} {tag}" for p in sorted((src / cls).glob("*.avi"))]
        (split / f"{cls}_test_split1.txt").write_text("\n".join(lines) + "\n")
    return src


@pytest.fixture(scope="module")
def converted(clips_dir: Path, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("spikecv")
    src = _with_test_split(Path(shutil.copytree(clips_dir / "hmdb51-mini", tmp / "src")))
    out = tmp / "out"
    summary = convert_dataset(src, out, SMALL, progress=False)
    assert summary.failed == 0
    return out


def test_data_parameter_dict_for_recognition_and_raw(converted: Path) -> None:
    for task in ("recognition", "raw"):
        params = spikecv_parameter_dict(converted, task)
        assert params["filepath"] == str(converted)
        assert (params["spike_h"], params["spike_w"]) == SMALL.size
    with pytest.raises(ValueError, match="no labeled data"):
        spikecv_parameter_dict(converted, "optical_flow")
    # One clip as a raw stream: SpikeStream(filepath=clip, spike_h, spike_w) with the
    # folder's sizes (SpikeCV's data_parameter_dict joins a file's folder with "\\", which
    # finds nothing on Linux, so a single clip is opened directly).
    clip = next(converted.glob("wave/*.dat"))
    spikes = spikecv_read(str(clip.with_suffix("")), params["spike_h"], params["spike_w"])
    np.testing.assert_array_equal(spikes, DatFile(clip).read())


def test_recognition_dataset_lists_only_spike_files_with_our_labels(converted: Path) -> None:
    rows = read_manifest(converted / "manifest.jsonl")
    ours = open_dataset(converted)
    for train, split in ((True, "train"), (False, "test")):
        ds = SpikeCVRecognition(**spikecv_parameter_dict(converted, "recognition"), train=train)
        want = sorted(r.path for r in rows if r.split == split)
        assert len(want) > 0
        assert all(path.endswith(".dat") for path, _ in ds.samples)
        got = sorted(f"{Path(p).parent.name}/{Path(p).name}" for p, _ in ds.samples)
        assert got == want
        for index in range(len(ds)):
            spikes, target = ds[index]
            path = ds.samples[index][0]
            rel = f"{Path(path).parent.name}/{Path(path).name}"
            record = next(r for r in rows if r.path == rel)
            assert ds.classes[target] == record.cls
            assert spikes.shape == (record.frames, *SMALL.size) and spikes.dtype == np.float32
            np.testing.assert_array_equal(spikes.astype(bool), DatFile(converted / rel).read())
    assert len(ours) == len(rows)  # our own reader is untouched by the extra folders


def test_the_old_config_fails_as_the_issue_says(converted: Path, tmp_path: Path) -> None:
    """Before: is_labeled true, labeled_data_type [6], no split folders."""
    old = tmp_path / "old"
    shutil.copytree(converted, old, symlinks=True)
    config = yaml.safe_load((old / "config.yaml").read_text())
    config.update(is_labeled=True, labeled_data_type=[6])
    (old / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(IndexError):
        spikecv_parameter_dict(old, "recognition")
    with pytest.raises(ValueError):
        spikecv_parameter_dict(old, "raw")


def test_view_follows_the_manifest_and_shards(clips_dir: Path, tmp_path: Path) -> None:
    src = _with_test_split(Path(shutil.copytree(clips_dir / "hmdb51-mini", tmp_path / "src")))
    out = tmp_path / "out"
    for i in range(2):
        convert_dataset(src, out, SMALL, shard=(i, 2), progress=False)
    assert not (out / "train").exists()  # shards leave the view to the merge
    merge_shards(out)
    links = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.dat") if p.is_symlink())
    rows = read_manifest(out / "manifest.jsonl")
    assert links == sorted(f"{r.split}/{r.path}" for r in rows)
    # A clip dropped from the manifest loses its link; moving the folder keeps the others.
    assert write_spikecv_view(out, rows[1:]) == len(rows) - 1
    assert not (out / rows[0].split / rows[0].path).exists()
    moved = tmp_path / "moved"
    out.rename(moved)
    assert all(p.resolve().is_file() for p in moved.rglob("*.dat"))
    with pytest.raises(DatasetError, match="rename that class"):
        write_spikecv_view(moved, [rows[0].__class__(**{**rows[0].__dict__, "cls": "test"})])
