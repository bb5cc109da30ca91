"""spikesim's library under faults (issue 15): full disks, hostile or damaged inputs, files
that are not what their name says, leftovers of killed runs. Each test reproduces a fault the
issue reports (it fails on the behaviour before the fix)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spikesim.writers as writers_module
from spikesim.convert import ConvertSettings, convert_dataset
from spikesim.converted import open_dataset, pack_dataset
from spikesim.converted.folder import FolderDataset
from spikesim.converted.layout import ClipRecord, read_config, read_manifest
from spikesim.dat import DatFile, DatWriter, write_dat
from spikesim.errors import DatasetError, DatError, SpikesimError
from spikesim.files import TMP_MARK, read_text, write_atomic
from spikesim.interpolate import Interpolator, interpolate
from spikesim.sidecar import read_sidecar
from spikesim.sources import scan_source
from spikesim.writers import NpyWriter

SMALL = ConvertSettings(size=(48, 64), factor=2, interp="linear", seed=7)
ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TMP_MARK in p.name)


def converted(root: Path, clips: int = 2, frames: int = 4) -> Path:
    """A small converted folder: ``clips`` clips of class A."""
    rows = []
    for k in range(clips):
        rel = f"A/c{k}.dat"
        write_dat(root / rel, np.zeros((frames, 8, 16), bool))
        rows.append(json.dumps({"path": rel, "class": "A", "label": 0, "split": "train",
                                "frames": frames, "height": 8, "width": 16}))  # fmt: skip
    (root / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("A\n")
    return root


# ---------------------------------------------------------------------------- full disks


def test_write_atomic_on_a_full_disk_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    class FullFile:
        def __init__(self, fd: int, mode: str) -> None:
            os.close(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def write(self, data) -> None:
            raise ENOSPC

    monkeypatch.setattr("spikesim.files.os.fdopen", FullFile)
    target = tmp_path / "manifest.jsonl"
    with pytest.raises(OSError) as info:
        write_atomic(target, "{}\n")
    monkeypatch.undo()
    # "error: : No space left on device" did not say which file was lost.
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []


def test_a_dat_writer_on_a_full_disk_leaves_no_dat_no_sidecar_no_temporary(tmp_path: Path):
    path = tmp_path / "clip.dat"
    writer = DatWriter(path, 8, 16)

    class Full:
        def write(self, data) -> None:
            raise ENOSPC

        def close(self) -> None:
            pass

    writer._fh.close()
    writer._fh = Full()  # the disk fills up under the writer
    with pytest.raises(OSError) as info:
        writer.write(np.ones((3, 8, 16), bool))
    assert info.value.filename == str(path)
    assert list(tmp_path.iterdir()) == []


def test_a_memory_mapped_npy_reserves_its_blocks_first(tmp_path: Path, monkeypatch) -> None:
    # A sparse map on a full disk died of SIGBUS (exit 135, no message) at the first store;
    # the blocks are reserved up front now, so a full disk is an error before any frame.
    calls = []

    def full(fd: int, offset: int, length: int) -> None:
        calls.append(length)
        raise ENOSPC

    monkeypatch.setattr(writers_module.os, "posix_fallocate", full)
    path = tmp_path / "out.npy"
    with pytest.raises(OSError) as info:
        NpyWriter(path, (10, 64, 64))
    assert calls and calls[0] >= 10 * 64 * 64
    assert info.value.filename == str(path) and list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    frames = np.arange(10 * 4 * 5, dtype=np.uint8).reshape(10, 4, 5)
    with NpyWriter(path, frames.shape) as w:
        w.write(frames)
    np.testing.assert_array_equal(np.load(path), frames)  # the header we write is numpy's


# ---------------------------------------------------------------------------- outputs and inputs


def test_write_dat_refuses_to_replace_without_overwrite(tmp_path: Path) -> None:
    path = write_dat(tmp_path / "a.dat", np.ones((2, 8, 16), bool))
    before = path.read_bytes()
    with pytest.raises(DatError, match="overwrite"):
        write_dat(path, np.zeros((2, 8, 16), bool))
    assert path.read_bytes() == before
    write_dat(path, np.zeros((2, 8, 16), bool), overwrite=True)
    assert path.read_bytes() != before


# ---------------------------------------------------------------------------- hostile input


def test_a_yaml_alias_bomb_in_config_is_refused(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20)
    )
    (tmp_path / "config.yaml").write_text(bomb)
    with pytest.raises(DatasetError, match="not valid YAML"):
        read_config(tmp_path / "config.yaml")
    (tmp_path / "config.yaml").write_text("a: " + "x" * (2 << 20))
    with pytest.raises(DatasetError, match="larger than 1 MiB"):
        read_config(tmp_path / "config.yaml")


def test_non_utf8_text_files_are_one_line(tmp_path: Path) -> None:
    root = converted(tmp_path / "ds")
    (root / "manifest.jsonl").write_bytes(b'{"path": "A/c\xff.dat"}\n')
    with pytest.raises(DatasetError, match="not UTF-8") as info:
        open_dataset(root)
    assert "\n" not in str(info.value)
    (tmp_path / "classes.txt").write_bytes(b"\xfe\xff")
    with pytest.raises(DatasetError, match=r"classes\.txt: not UTF-8"):
        read_text(tmp_path / "classes.txt")


@pytest.mark.parametrize(
    ("field", "value"), [("height", True), ("frames", "15"), ("label", 1.0), ("path", 3)]
)
def test_manifest_rows_need_exact_types(field: str, value) -> None:
    row = {"path": "A/c.dat", "class": "A", "label": 0, "split": "train", "frames": 4,
           "height": 8, "width": 16}  # fmt: skip
    with pytest.raises(DatasetError, match=field):
        ClipRecord.from_row({**row, field: value})


def test_a_clip_listed_twice_is_refused(tmp_path: Path) -> None:
    root = converted(tmp_path / "ds", clips=1)
    line = (root / "manifest.jsonl").read_text()
    (root / "manifest.jsonl").write_text(line + line)
    with pytest.raises(DatasetError, match="listed twice"):
        read_manifest(root / "manifest.jsonl")


@pytest.mark.parametrize(("key", "value"), [("flipud", "no"), ("frames", "15"), ("height", True)])
def test_sidecars_need_exact_types(tmp_path: Path, key: str, value) -> None:
    path = write_dat(tmp_path / "a.dat", np.zeros((2, 8, 16), bool))
    side = tmp_path / "a.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, key: value}))
    with pytest.raises(DatError, match=key):
        read_sidecar(path)


def test_absurd_sizes_are_refused_before_allocating() -> None:
    with pytest.raises(SpikesimError, match=r"would need .* of memory"):
        interpolate(np.zeros((8, 32, 32), np.float32), factor=10**9, method="linear")
    with pytest.raises(SpikesimError, match=r"would need .* of memory"):
        Interpolator(10**11, "linear")


def test_info_reads_a_large_dat_in_bounded_chunks(tmp_path: Path, monkeypatch) -> None:
    # A sidecar claiming big frames made `info` unpack 512 frames at once (47.7 GiB asked).
    import cli.commands_core as core

    path = tmp_path / "big.dat"
    with open(path, "wb") as fh:
        fh.truncate(600 * 2000 * 2000 // 8)  # sparse: 600 frames of 2000x2000, 300 MB
    (tmp_path / "big.json").write_text(json.dumps({"height": 2000, "width": 2000, "frames": 600}))
    asked = []
    real = DatFile.read_packed

    def spy(self, start=0, count=None):
        out = real(self, start, count)
        asked.append(out.nbytes)
        return out

    monkeypatch.setattr(DatFile, "read_packed", spy)
    summary = core._dat_summary(path, None)
    assert summary["frames"] == 600 and summary["spikes"] == 0
    assert max(asked) <= 64 << 20, max(asked)


# ---------------------------------------------------------------------------- not what it says


def test_a_dat_linked_from_outside_the_dataset_is_refused(tmp_path: Path) -> None:
    root = converted(tmp_path / "ds")
    secret = write_dat(tmp_path / "elsewhere" / "secret.dat", np.ones((4, 8, 16), bool))
    (root / "A" / "c1.dat").unlink()
    (root / "A" / "c1.dat").symlink_to(secret)
    with pytest.raises(DatasetError, match="outside the dataset"):
        open_dataset(root)  # pack, train and eval all open it this way
    with pytest.raises(DatasetError, match="outside the dataset"):
        pack_dataset(root, tmp_path / "ds.h5")
    assert not (tmp_path / "ds.h5").exists()
    # a link that stays inside is fine
    (root / "A" / "c1.dat").unlink()
    shutil.copy(root / "A" / "c0.dat", root / "A" / "real.dat")
    (root / "A" / "c1.dat").symlink_to("real.dat")
    assert open_dataset(root).read_packed(1).shape == (4, 16)


def test_folders_fifos_and_devices_given_as_a_dat_are_named_for_what_they_are(tmp_path: Path):
    folder = tmp_path / "folder.dat"
    folder.mkdir()
    fifo = tmp_path / "pipe.dat"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.dat"
    loop.symlink_to(loop)
    for path, kind in ((folder, "a folder"), (fifo, "a FIFO"), (Path("/dev/zero"), "a device")):
        with pytest.raises(DatError, match=f"{kind}.*not a .dat file"):
            DatFile(path, height=8, width=16)
    with pytest.raises(DatError, match="symbolic links"):
        DatFile(loop, height=8, width=16)
    # In a converted folder, a FIFO in a clip's place is refused at once (it hung the reader).
    root = converted(tmp_path / "ds")
    (root / "A" / "c1.dat").unlink()
    os.mkfifo(root / "A" / "c1.dat")
    ds = FolderDataset(root, check_files=False)
    with pytest.raises(DatasetError, match="FIFO"):
        ds.read_packed(1)


def test_a_clip_that_is_a_symlink_loop_fails_alone(clips_dir: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(clips_dir / "hmdb51-mini", tmp_path / "src"))
    (src / "wave" / "loop.avi").symlink_to("loop.avi")
    summary = convert_dataset(src, tmp_path / "out", SMALL, progress=False)
    assert (summary.converted, summary.failed) == (3, 1)
    assert summary.failures[0]["clip"] == "wave/loop.avi"
    assert "symlink" in summary.failures[0]["reason"]


def test_a_class_folder_with_a_line_break_is_one_line(clips_dir: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(clips_dir / "hmdb51-mini", tmp_path / "src"))
    (src / "wave").rename(src / "wa\nve")
    with pytest.raises(DatasetError, match="line break") as info:
        scan_source(src)
    assert "\n" not in str(info.value).replace("'wa\\nve'", "")


# ---------------------------------------------------------------------------- leftovers


def test_pack_removes_the_temporary_of_a_killed_pack(tmp_path: Path) -> None:
    root = converted(tmp_path / "ds")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f"ds.h5{TMP_MARK}{dead}-abcd1234"
    stale.write_bytes(b"half an HDF5 file")
    mine = tmp_path / f"ds.h5{TMP_MARK}{os.getpid()}-live0000"  # a live process's: kept
    mine.write_bytes(b"in progress")
    pack_dataset(root, tmp_path / "ds.h5")
    assert not stale.exists() and mine.exists()
    assert len(open_dataset(tmp_path / "ds.h5")) == 2


def test_a_non_utf8_sidecar_is_one_line(tmp_path: Path) -> None:
    path = write_dat(tmp_path / "a.dat", np.zeros((2, 8, 16), bool))
    (tmp_path / "a.json").write_bytes(b'{"height": 8, "width": 16, "note": "\xff"}')
    with pytest.raises(SpikesimError, match=r"a\.json: sidecar is not readable") as info:
        read_sidecar(path)
    assert "\n" not in str(info.value)


def test_a_non_utf8_split_file_is_one_line(clips_dir: Path, tmp_path: Path) -> None:
    src = Path(shutil.copytree(clips_dir / "ucf101-mini", tmp_path / "src"))
    (src / "ucfTrainTestlist").mkdir()
    split = src / "ucfTrainTestlist" / "classInd.txt"
    split.write_bytes(b"1 Basketball\n2 SoccerJuggling\n3 Caf\xe9\n")  # Latin-1, not UTF-8
    for name in ("trainlist01.txt", "testlist01.txt"):
        (src / "ucfTrainTestlist" / name).write_text("")
    with pytest.raises(DatasetError, match=r"classInd\.txt: not UTF-8") as info:
        scan_source(src)
    assert "\n" not in str(info.value)


def test_shards_run_side_by_side_but_not_beside_a_plain_run(clips_dir: Path, tmp_path: Path):
    from spikesim.files import hold_lock

    src, out = clips_dir / "hmdb51-mini", tmp_path / "out"
    out.mkdir()
    with hold_lock(out / ".convert.shard-1-of-2.lock", what="shard 1"):
        with hold_lock(out / ".convert.lock", what="x", shared=True):  # shard 1 is running
            summary = convert_dataset(src, out, SMALL, shard=(0, 2), progress=False)
            assert summary.failed == 0  # another shard: fine
            with pytest.raises(DatasetError, match="already running"):
                convert_dataset(src, out, SMALL, progress=False)  # a plain run: refused
            with pytest.raises(DatasetError, match="already running"):
                convert_dataset(src, out, SMALL, shard=(1, 2), progress=False)  # the same shard
    with hold_lock(out / ".convert.lock", what="a spikesim convert"):  # a plain run
        with pytest.raises(DatasetError, match=f"process {os.getpid()}"):
            convert_dataset(src, out, SMALL, shard=(1, 2), progress=False)
