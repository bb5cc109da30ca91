"""synth --overwrite under faults (issue 15): it deleted a user's files that merely sat beside
files with synth's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikesim.errors import DatasetError
from spikesim.synth.write import RECORD, synthesize

TINY = {"classes": 1, "clips_per_class": 1, "size": (32, 32), "frames": 8}


def test_overwrite_refuses_a_folder_that_only_has_synths_names(tmp_path: Path) -> None:
    # A user's folder with two files named as synth names them, plus their own work.
    folder = tmp_path / "work"
    (folder / "ucfTrainTestlist").mkdir(parents=True)
    (folder / "captions.jsonl").write_text("{}\n")
    (folder / "ucfTrainTestlist" / "classInd.txt").write_text("1 Mine\n")
    (folder / "video.mp4").write_bytes(b"precious")
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match=RECORD):
        synthesize(folder, **TINY, overwrite=True)
    assert (folder / "video.mp4").read_bytes() == b"precious"
    assert (folder / "notes.txt").read_text() == "keep me"


def test_overwrite_refuses_when_a_foreign_file_was_added_to_a_synth_output(tmp_path: Path):
    out = synthesize(tmp_path / "synth", **TINY)
    assert RECORD in {p.name for p in out.iterdir()}
    (out / "Grow" / "my_notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match=r"Grow/my_notes\.txt, which synth did not write"):
        synthesize(out, **{**TINY, "clips_per_class": 2}, overwrite=True)
    assert (out / "Grow" / "my_notes.txt").read_text() == "keep me"
    (out / "Grow" / "my_notes.txt").unlink()
    synthesize(out, **{**TINY, "clips_per_class": 2}, overwrite=True)  # only synth's files: ok
    assert len(list(out.rglob("*.avi"))) == 2
