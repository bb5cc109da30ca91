"""``spikesim synth | convert | pack`` from the command line: outputs and exit codes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli.spikesim_cli import main
from spikesim.converted import open_dataset

SMALL = ["--size", "48x64", "--factor", "2", "--interp", "linear", "--no-progress"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``spikesim ARGV`` as the console script does; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_synth_convert_pack_round_trip(capsys, tmp_path: Path) -> None:
    src, out, h5 = tmp_path / "synth", tmp_path / "converted", tmp_path / "ds.h5"
    code, stdout, _ = run(
        capsys, "synth", "--out", src, "--classes", "2", "--clips-per-class", "4",
        "--size", "48x64", "--video-frames", "8",
    )  # fmt: skip
    assert code == 0 and "wrote" in stdout
    code, stdout, stderr = run(capsys, "convert", src, "--out", out, *SMALL)
    assert code == 0, stderr
    assert "converted 8, skipped 0 (already done), failed 0 of 8 clips" in stdout
    assert "official UCF101 split 1" in stderr  # synth writes ucfTrainTestlist/
    ds = open_dataset(out)
    assert len(ds.clips) == 8 and all(c.frames == 15 for c in ds.clips)
    assert all(c.caption for c in ds.clips)  # from the synth captions.jsonl
    assert {c.split for c in ds.clips} == {"train", "test"}
    classind = (src / "ucfTrainTestlist" / "classInd.txt").read_text().split()[1::2]
    assert ds.classes == classind
    code, stdout, _ = run(capsys, "pack", out, "--out", h5)
    assert code == 0 and "packed" in stdout
    packed = open_dataset(h5)
    assert packed.clips == ds.clips
    for i in range(len(ds)):
        np.testing.assert_array_equal(packed.read_packed(i), ds.read_packed(i))
    code, _, stderr = run(capsys, "pack", out, "--out", h5)
    assert code == 2 and "--overwrite" in stderr
    # running convert again resumes: nothing to do
    code, stdout, _ = run(capsys, "convert", src, "--out", out, *SMALL)
    assert code == 0 and "converted 0, skipped 8" in stdout


def test_failed_clip_gives_exit_1_and_names_the_failures_file(
    capsys, clips_dir: Path, tmp_path: Path
) -> None:
    src = Path(shutil.copytree(clips_dir / "ucf101-mini", tmp_path / "ucf"))
    (src / "Basketball" / "v_Basketball_g02_c01.avi").write_bytes(os.urandom(4096))
    code, stdout, stderr = run(capsys, "convert", src, "--out", tmp_path / "out", *SMALL)
    assert code == 1
    assert "converted 2" in stdout and "failed 1" in stdout
    assert stderr.strip().splitlines()[-1] == (
        f"error: 1 clips failed; reasons in {tmp_path / 'out' / 'failures.jsonl'}"
    )
    rows = [json.loads(x) for x in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [r["clip"] for r in rows] == ["Basketball/v_Basketball_g02_c01.avi"]


def test_shards_then_merge(capsys, clips_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    src = clips_dir / "hmdb51-mini"
    code, _, _ = run(capsys, "convert", src, "--out", out, "--shard", "1/2", *SMALL)
    assert code == 0
    code, _, stderr = run(capsys, "convert", src, "--out", out, "--merge")
    assert code == 2 and "shard 0/2" in stderr
    code, _, _ = run(capsys, "convert", src, "--out", out, "--shard", "0/2", *SMALL)
    assert code == 0
    code, stdout, _ = run(capsys, "convert", src, "--out", out, "--merge")
    assert code == 0 and "merged 3 clips" in stdout
    assert len(open_dataset(out).clips) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "48x64"], "--factor is required"),
        (["--factor", "2", "--size", "47x63"], "not a multiple of 8"),
        (["--factor", "2", "--shard", "2/2"], "I/N"),
        (["--factor", "2", "--interp", "nonsense"], "nonsense"),
        (["--factor", "0"], "--factor"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys, clips_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, stderr = run(capsys, "convert", clips_dir / "ucf101-mini", "--out", tmp_path, *args)
    assert code == 2
    assert message in stderr
    assert "Traceback" not in stderr


def test_source_without_clips_exits_2_saying_what_was_expected(capsys, tmp_path: Path) -> None:
    (tmp_path / "src" / "Class").mkdir(parents=True)
    code, _, stderr = run(
        capsys, "convert", tmp_path / "src", "--factor", "2", "--out", tmp_path / "o"
    )
    assert code == 2
    assert stderr.startswith("error: ") and "SRC/<class>/<clip>" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_changed_settings_exit_2_until_overwrite(capsys, clips_dir: Path, tmp_path: Path) -> None:
    src, out = clips_dir / "ucf101-mini", tmp_path / "out"
    assert run(capsys, "convert", src, "--out", out, *SMALL)[0] == 0
    code, _, stderr = run(capsys, "convert", src, "--out", out, *SMALL, "--threshold", "4")
    assert code == 2 and "threshold=5.0 (now 4.0)" in stderr and "--overwrite" in stderr
    code, stdout, _ = run(
        capsys, "convert", src, "--out", out, *SMALL, "--threshold", "4", "--overwrite"
    )
    assert code == 0 and "converted 2" in stdout


def test_help_lists_the_options(capsys) -> None:
    code, stdout, _ = run(capsys, "convert", "--help")
    assert code == 0
    for option in ("--factor", "--size", "--interp", "--threshold", "--init", "--noise",
                   "--seed", "--workers", "--shard", "--limit", "--overwrite", "--splits",
                   "--merge"):  # fmt: skip
        assert option in stdout
