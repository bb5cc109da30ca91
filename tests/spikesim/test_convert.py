"""Dataset conversion: frame counts, outputs, determinism across workers and shards,
failures, resume after an interruption, and settings changes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import spikesim
import spikesim.convert as convert_module
import spikesim.pipeline as pipeline_module
import spikesim.pool as pool_module
from spikesim.convert import (
    ConvertSettings,
    convert_dataset,
    merge_shards,
    parse_shard,
    select_clips,
)
from spikesim.converted import open_dataset
from spikesim.dat import DatFile, read_dat
from spikesim.errors import DatasetError, SpikesimError
from spikesim.pipeline import convert_clip
from spikesim.sources import clip_seed, scan_source

ROOT = Path(__file__).resolve().parents[2]
# frames that decode from each real clip (shared/data/clips/SOURCES.md)
DECODED = {
    "Basketball/v_Basketball_g01_c01.avi": 141,
    "SoccerJuggling/v_SoccerJuggling_g23_c01.avi": 240,
    "cartwheel/Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.avi": 83,
    "wave/RATRACE_wave_f_nm_np1_fr_goo_37.avi": 72,
    "wave/SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.avi": 74,
}
SMALL = ConvertSettings(size=(48, 64), factor=2, interp="linear", seed=7)


def convert(src: Path, out: Path, settings: ConvertSettings = SMALL, **kw):
    return convert_dataset(src, out, settings, progress=False, **kw)


def dat_bytes(out: Path) -> dict[str, bytes]:
    """Every .dat and sidecar under ``out`` by relative path (not the SpikeCV view's links)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.suffix in (".dat", ".json") and not p.is_symlink()
    }


def temp_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if ".tmp-" in p.name)


@pytest.fixture(scope="module")
def reference(clips_dir: Path, tmp_path_factory) -> Path:
    """hmdb51-mini converted once, uninterrupted, with one worker."""
    out = tmp_path_factory.mktemp("reference")
    summary = convert(clips_dir / "hmdb51-mini", out)
    assert summary.failed == 0
    return out


def test_caption_paraphrases_reach_the_manifest(clips_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(clips_dir / "hmdb51-mini" / "wave", src / "wave")
    names = sorted(p.name for p in (src / "wave").iterdir())
    row = {"path": f"wave/{names[0]}", "caption": "someone waves", "paraphrases": ["a wave"]}
    (src / "captions.jsonl").write_text(json.dumps(row) + "\n")
    convert(src, tmp_path / "out", ConvertSettings(size=(24, 32), factor=1, interp="linear"))
    records = {r.source: r for r in open_dataset(tmp_path / "out").clips}
    assert records[f"wave/{names[0]}"].paraphrases == ("a wave",)
    assert records[f"wave/{names[1]}"].paraphrases == ()
    assert "paraphrases" not in records[f"wave/{names[1]}"].to_row()  # rows as before
    first = records[f"wave/{names[0]}"]
    assert spikesim.ClipRecord.from_row(first.to_row()) == first


@pytest.fixture
def hmdb_copy(clips_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(clips_dir / "hmdb51-mini", tmp_path / "hmdb51-mini"))


# ---------------------------------------------------------------------------- outputs


def test_ucf101_clips_give_n_minus_1_times_factor_plus_1_frames_with_flow(
    clips_dir: Path, tmp_path: Path
) -> None:
    settings = ConvertSettings(size=(48, 64), factor=3, interp="flow", seed=1)
    summary = convert(clips_dir / "ucf101-mini", tmp_path, settings)
    assert (summary.converted, summary.skipped, summary.failed) == (2, 0, 0)
    rows = [json.loads(line) for line in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == [
        "Basketball/v_Basketball_g01_c01.dat",
        "SoccerJuggling/v_SoccerJuggling_g23_c01.dat",
    ]
    for row in rows:
        n = DECODED[row["source"]]
        assert row["frames"] == (n - 1) * 3 + 1
        assert (row["height"], row["width"], row["factor"]) == (48, 64, 3)
        assert set(row) == {
            "path", "class", "label", "split", "caption", "frames", "height", "width",
            "source", "factor", "repeats",
        }  # fmt: skip
        assert isinstance(row["repeats"], int) and 0 <= row["repeats"] < n
        dat = DatFile(tmp_path / row["path"])
        assert dat.shape == (row["frames"], 48, 64)
        meta = dat.meta
        assert meta["source"] == row["source"]
        assert meta["interp"] == "flow" and meta["factor"] == 3 and meta["flipud"] is True
        assert meta["threshold"] == 5.0 and meta["init"] == "random" and meta["noise"] is None
        assert meta["seed"] == clip_seed(1, row["source"])
        assert meta["source_fps"] == pytest.approx(29.97, abs=0.01)
        assert isinstance(meta["encoder"], dict) and meta["spikesim_version"]
    assert summary.spike_frames == sum(r["frames"] for r in rows)
    assert (tmp_path / "classes.txt").read_text() == "Basketball\nSoccerJuggling\n"
    assert (tmp_path / "failures.jsonl").read_text() == ""
    config = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert (config["spike_h"], config["spike_w"]) == (48, 64)
    assert config["labels"] == ["Basketball", "SoccerJuggling"] and config["is_labeled"] is False
    assert config["labeled_data_type"] == [0, 6]  # SpikeCV: raw and recognition
    assert config["conversion"]["factor"] == 3 and config["data_path"] == "."
    # the reader sees exactly the files
    ds = open_dataset(tmp_path)
    assert [c.frames for c in ds.clips] == [r["frames"] for r in rows]
    np.testing.assert_array_equal(ds.read(1, 5, 9), read_dat(tmp_path / rows[1]["path"])[5:14])


def test_hmdb51_clips_including_a_wide_one_are_cropped_to_size(reference: Path) -> None:
    ds = open_dataset(reference)
    assert ds.classes == ["cartwheel", "wave"]
    assert {c.source: c.frames for c in ds.clips} == {
        src: (n - 1) * 2 + 1 for src, n in DECODED.items() if not src.startswith(("B", "S"))
    }
    assert all((c.height, c.width) == (48, 64) for c in ds.clips)
    # spikes fire: not an all-zero stream
    assert ds.read(0).mean() > 0.01


def test_second_run_skips_everything_and_keeps_the_bytes(
    reference: Path, tmp_path: Path, clips_dir: Path
) -> None:
    out = Path(shutil.copytree(reference, tmp_path / "out", symlinks=True))
    before = dat_bytes(out)
    summary = convert(clips_dir / "hmdb51-mini", out)
    assert (summary.converted, summary.skipped, summary.failed) == (0, 3, 0)
    assert dat_bytes(out) == before
    assert (out / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()


# ---------------------------------------------------------------------------- determinism


def test_bytes_do_not_depend_on_the_number_of_workers(
    reference: Path, clips_dir: Path, tmp_path: Path
) -> None:
    summary = convert(clips_dir / "hmdb51-mini", tmp_path, workers=2)
    assert summary.converted == 3
    assert dat_bytes(tmp_path) == dat_bytes(reference)
    assert (tmp_path / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()


def test_shards_merge_into_the_whole(reference: Path, clips_dir: Path, tmp_path: Path) -> None:
    first = convert(clips_dir / "hmdb51-mini", tmp_path, shard=(0, 2))
    with pytest.raises(DatasetError, match=r"shards \[1\] of 2 have not finished"):
        merge_shards(tmp_path)
    second = convert(clips_dir / "hmdb51-mini", tmp_path, shard=(1, 2))
    assert (first.converted, second.converted) == (2, 1)  # every other clip of the sorted list
    assert (tmp_path / "manifest.shard-0-of-2.jsonl").is_file()
    assert not (tmp_path / "manifest.jsonl").exists()
    manifest, n = merge_shards(tmp_path)
    assert n == 3
    assert manifest.read_bytes() == (reference / "manifest.jsonl").read_bytes()
    assert dat_bytes(tmp_path) == dat_bytes(reference)
    # a plain run over the sharded output converts nothing and writes the same manifest
    again = convert(clips_dir / "hmdb51-mini", tmp_path)
    assert again.converted == 0 and again.skipped == 3
    assert manifest.read_bytes() == (reference / "manifest.jsonl").read_bytes()


def test_limit_converts_the_first_clips_and_later_runs_list_everything(
    reference: Path, clips_dir: Path, tmp_path: Path
) -> None:
    one = convert(clips_dir / "hmdb51-mini", tmp_path, limit=1)
    assert (one.total, one.converted) == (1, 1)
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 1
    rest = convert(clips_dir / "hmdb51-mini", tmp_path)
    assert (rest.converted, rest.skipped) == (2, 1)
    assert dat_bytes(tmp_path) == dat_bytes(reference)
    # a later --limit run does not drop the other finished clips from the manifest
    convert(clips_dir / "hmdb51-mini", tmp_path, limit=1)
    assert (tmp_path / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()


def test_select_clips_partitions_the_sorted_list(clips_dir: Path) -> None:
    clips = scan_source(clips_dir / "hmdb51-mini").clips
    shards = [select_clips(clips, shard=(i, 3)) for i in range(3)]
    assert sorted(c.path for s in shards for c in s) == sorted(c.path for c in clips)
    assert select_clips(reversed(clips), shard=(0, 3)) == shards[0]
    assert select_clips(clips, limit=2) == list(clips[:2])
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b"):
        with pytest.raises(SpikesimError, match="I/N"):
            parse_shard(bad)


# ---------------------------------------------------------------------------- failures


def test_a_corrupt_video_is_recorded_and_the_run_goes_on(
    reference: Path, hmdb_copy: Path, tmp_path: Path
) -> None:
    bad = hmdb_copy / "wave" / "Broken_wave_f_nm_np1_fr_goo_1.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + os.urandom(2000))
    out = tmp_path / "out"
    summary = convert(hmdb_copy, out)
    assert (summary.converted, summary.failed) == (3, 1)
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["clip"] for f in failures] == ["wave/Broken_wave_f_nm_np1_fr_goo_1.avi"]
    assert failures[0]["reason"]
    assert not (out / "wave" / "Broken_wave_f_nm_np1_fr_goo_1.dat").exists()
    assert dat_bytes(out) == dat_bytes(reference)
    assert temp_files(out) == []


def test_a_full_disk_stops_the_run_instead_of_failing_every_clip(
    clips_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    def disk_full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(convert_module, "convert_clip", disk_full)
    with pytest.raises(OSError, match="No space left"):
        convert(clips_dir / "hmdb51-mini", tmp_path)
    assert not (tmp_path / "failures.jsonl").exists()


def _crash_on_marked_clips(parent: int) -> None:
    """Worker initializer for the test below: the worker dies on clips named CRASH_*."""
    pool_module._init_worker(parent)
    real = convert_module.convert_clip

    def convert_clip(video, *args, **kw):
        if Path(video).name.startswith("CRASH_"):
            os._exit(1)  # as a segfault in a decoder would: no exception, no cleanup
        return real(video, *args, **kw)

    convert_module.convert_clip = convert_clip


def test_a_clip_that_kills_its_worker_is_isolated_and_the_rest_convert(
    reference: Path, hmdb_copy: Path, tmp_path: Path, monkeypatch
) -> None:
    shutil.copyfile(
        hmdb_copy / "wave" / "RATRACE_wave_f_nm_np1_fr_goo_37.avi",
        hmdb_copy / "wave" / "CRASH_wave_f_nm_np1_fr_goo_9.avi",
    )
    monkeypatch.setattr(pool_module, "_init_worker", _crash_on_marked_clips)
    out = tmp_path / "out"
    summary = convert(hmdb_copy, out, workers=2)
    assert (summary.converted, summary.failed) == (3, 1)
    assert [f["clip"] for f in summary.failures] == ["wave/CRASH_wave_f_nm_np1_fr_goo_9.avi"]
    assert "worker process died" in summary.failures[0]["reason"]
    assert dat_bytes(out) == dat_bytes(reference)
    assert temp_files(out) == []


# ---------------------------------------------------------------------------- interruptions


def test_ctrl_c_mid_clip_leaves_no_half_file_and_the_rerun_matches(
    reference: Path, clips_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    real_iter_frames = pipeline_module.iter_frames
    clips_started = []

    def interrupted_in_second_clip(path, **kw):
        clips_started.append(path)
        for i, frame in enumerate(real_iter_frames(path, **kw)):
            if len(clips_started) == 2 and i == 20:
                raise KeyboardInterrupt
            yield frame

    monkeypatch.setattr(pipeline_module, "iter_frames", interrupted_in_second_clip)
    with pytest.raises(KeyboardInterrupt):
        convert(clips_dir / "hmdb51-mini", tmp_path)
    monkeypatch.undo()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.dat")) == [
        "cartwheel/Turnk_r_Pippi_Michel_cartwheel_f_cm_np2_le_med_6.dat"
    ]
    assert temp_files(tmp_path) == []
    # the manifest on disk lists what finished
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 1
    summary = convert(clips_dir / "hmdb51-mini", tmp_path)
    assert (summary.converted, summary.skipped) == (2, 1)
    assert dat_bytes(tmp_path) == dat_bytes(reference)


def test_an_interrupted_shard_is_not_merged_until_it_finishes(
    clips_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    src = clips_dir / "hmdb51-mini"
    convert(src, tmp_path, shard=(1, 2))
    real_iter_frames = pipeline_module.iter_frames
    started = []

    def interrupted_in_second_clip(path, **kw):
        started.append(path)
        if len(started) == 2:
            raise KeyboardInterrupt
        yield from real_iter_frames(path, **kw)

    monkeypatch.setattr(pipeline_module, "iter_frames", interrupted_in_second_clip)
    with pytest.raises(KeyboardInterrupt):
        convert(src, tmp_path, shard=(0, 2))
    monkeypatch.undo()
    assert not (tmp_path / "manifest.shard-0-of-2.jsonl").exists()
    assert len((tmp_path / "manifest.shard-0-of-2.partial.jsonl").read_text().splitlines()) == 1
    with pytest.raises(DatasetError, match=r"shards \[0\] of 2 have not finished"):
        merge_shards(tmp_path)
    summary = convert(src, tmp_path, shard=(0, 2))
    assert (summary.converted, summary.skipped) == (1, 1)
    assert not (tmp_path / "manifest.shard-0-of-2.partial.jsonl").exists()
    assert merge_shards(tmp_path)[1] == 3


def test_leftovers_of_a_killed_run_are_cleaned_and_redone(
    reference: Path, clips_dir: Path, tmp_path: Path
) -> None:
    out = Path(shutil.copytree(reference, tmp_path / "out", symlinks=True))
    wave = out / "wave"
    # kill -9 between the sidecar and the rename: a sidecar without .dat, and the temp file
    (wave / "RATRACE_wave_f_nm_np1_fr_goo_37.dat").rename(
        wave / "RATRACE_wave_f_nm_np1_fr_goo_37.dat.tmp-12345-abcd"
    )
    (wave / "RATRACE_wave_f_nm_np1_fr_goo_37.json.tmp-12345-efgh").write_text("{")
    (out / "manifest.jsonl.tmp-12345-ijkl").write_text("partial")
    # a truncated .dat (not something convert writes, but possible after a disk error)
    other = wave / "SchoolRulesHowTheyHelpUs_wave_f_nm_np1_ba_med_0.dat"
    other.write_bytes(other.read_bytes()[:1000])
    summary = convert(clips_dir / "hmdb51-mini", out)
    assert (summary.converted, summary.skipped) == (2, 1)
    assert temp_files(out) == []
    assert dat_bytes(out) == dat_bytes(reference)


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9")
def test_kill_9_mid_run_then_resume(reference: Path, clips_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        str(ROOT / ".venv" / "bin" / "spikesim"), "convert", str(clips_dir / "hmdb51-mini"),
        "--out", str(out), "--size", "48x64", "--factor", "2", "--interp", "linear",
        "--seed", "7", "--no-progress",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and any(out.rglob("*.dat.tmp-*")):
                break  # a clip is being written
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    for dat in out.rglob("*.dat"):  # whatever exists is whole
        assert DatFile(dat).shape[1:] == (48, 64)
    summary = convert(clips_dir / "hmdb51-mini", out)
    assert summary.converted + summary.skipped == 3 and summary.failed == 0
    assert temp_files(out) == []
    assert dat_bytes(out) == dat_bytes(reference)


# ---------------------------------------------------------------------------- settings


def test_other_settings_need_overwrite_which_converts_again(
    reference: Path, clips_dir: Path, tmp_path: Path
) -> None:
    out = Path(shutil.copytree(reference, tmp_path / "out", symlinks=True))
    other = ConvertSettings(size=(48, 64), factor=3, interp="linear", seed=7)
    with pytest.raises(DatasetError, match=r"factor=2 \(now 3\).*--overwrite"):
        convert(clips_dir / "hmdb51-mini", out, other)
    summary = convert(clips_dir / "hmdb51-mini", out, other, overwrite=True)
    assert summary.converted == 3
    assert all(c.factor == 3 for c in open_dataset(out).clips)
    # sidecars decide too, when config.yaml is gone: going back needs --overwrite again
    (out / "config.yaml").unlink()
    with pytest.raises(DatasetError, match="3 clips were converted with other settings"):
        convert(clips_dir / "hmdb51-mini", out)


def test_bad_settings_fail_before_any_work(clips_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SpikesimError):
        ConvertSettings(size=(47, 63))
    with pytest.raises(SpikesimError, match="factor"):
        ConvertSettings(factor=0)
    with pytest.raises(SpikesimError):
        convert(clips_dir / "hmdb51-mini", tmp_path / "out", ConvertSettings(interp="nope"))
    assert not (tmp_path / "out").exists()
    with pytest.raises(DatasetError, match="must not be the dataset folder"):
        convert(clips_dir / "hmdb51-mini", clips_dir / "hmdb51-mini")


# ---------------------------------------------------------------------------- the DVS sensor


def test_dvs_sensor_converts_the_real_clips_to_event_files_and_resumes(
    clips_dir: Path, tmp_path: Path
) -> None:
    settings = ConvertSettings(
        size=(48, 64), factor=2, interp="linear", seed=3, sensor="dvs", dvs_preset="noisy"
    )
    out = tmp_path / "events"
    summary = convert(clips_dir / "ucf101-mini", out, settings)
    assert summary.failed == 0 and summary.converted == summary.total > 0
    ds = open_dataset(out)
    assert ds.sensor == "dvs" and all(c.path.endswith(".h5") for c in ds.clips)
    for i, clip in enumerate(ds.clips):
        events = ds.read_events(i)
        assert len(events) > 1000  # real footage moves: plenty of events
        assert np.all(np.diff(events["t"]) >= 0) and set(np.unique(events["p"])) <= {-1, 1}
        assert events["x"].max() < 64 and events["y"].max() < 48
        meta = spikesim.read_sidecar(out / clip.path)
        assert meta["encoder"]["encoder"] == "dvs" and meta["frames"] == clip.frames
        # the event clock follows the interpolated frame rate of the source
        fps = meta["source_fps"] * settings.factor
        assert events["t"][-1] <= (clip.frames - 1) / fps * 1e6 + 1
    with pytest.raises(DatasetError, match="read_events"):
        ds.read(0)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.h5")}
    again = convert(clips_dir / "ucf101-mini", out, settings)
    assert again.skipped == again.total and again.converted == 0
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.h5")}


def test_dvs_conversion_is_the_library_call_on_the_same_frames(
    clips_dir: Path, tmp_path: Path
) -> None:
    video = next((clips_dir / "hmdb51-mini" / "wave").glob("*.avi"))
    settings = ConvertSettings(size=(24, 32), factor=1, interp="none", seed=5, sensor="dvs")
    result = convert_clip(video, tmp_path / "w.h5", settings, seed=5, source="w.avi")
    frames = np.stack(list(spikesim.iter_frames(video, size=(24, 32))))
    fps = spikesim.probe_video(video).fps
    expected = spikesim.dvs(frames, fps=fps, preset="clean", seed=5)
    got = spikesim.read_events(tmp_path / "w.h5")
    assert result.frames == len(frames)
    np.testing.assert_array_equal(got, expected)
