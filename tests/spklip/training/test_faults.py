"""Training under faults (issue 15): a full disk at a checkpoint, a resume with other
settings, checkpoint files' modes, checkpoint retention."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from safetensors import SafetensorError

import spklip.checkpoint as checkpoint_module
from spklip.checkpoint import latest_checkpoint, load_checkpoint
from spklip.errors import SpklipError
from spklip.training.loop import RESULTS, TrainConfig, read_results, train
from tests.spklip.test_data import make_converted
from tests.spklip.training.test_loop import config


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_converted(tmp_path_factory.mktemp("conv"), per_class=4, frames=20, size=(8, 16))


def test_a_full_disk_at_the_first_checkpoint_is_one_line_and_leaves_no_results(
    data: Path, tmp_path: Path, monkeypatch
) -> None:
    def full_disk(model, filename, metadata=None):
        Path(filename).write_bytes(b"")  # what a full disk leaves: a file, no bytes
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(checkpoint_module, "save_model", full_disk)
    out = tmp_path / "run"
    with pytest.raises(SpklipError) as info:
        train(config(data, out))
    message = str(info.value)
    assert "\n" not in message and "epoch_001" in message and "No space left" in message
    assert not (out / RESULTS).exists()  # an empty results.jsonl said "trained", before
    assert list((out / "checkpoints").iterdir()) == []  # no half checkpoint, no temporary


def test_weights_are_written_with_the_mode_of_the_other_files(data: Path, tmp_path: Path):
    train(config(data, tmp_path / "run", epochs=1))
    folder = latest_checkpoint(tmp_path / "run")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"], modes  # was 0600


def test_resume_takes_the_runs_settings_and_refuses_other_ones(data: Path, tmp_path: Path):
    out = tmp_path / "run"
    train(config(data, out, stop_after=1))  # a spklip-tiny run, lr 3e-3, 2 epochs
    # `spklip train --resume` without --model used to continue it as spklip-paper (lr 2e-5,
    # mixed captions) and record that in its checkpoint.
    bare = TrainConfig(data=data, out=out, resume=True, workers=0, progress=False)
    with pytest.raises(SpklipError, match=r"lr=0\.5 \(the run has 0\.003\)"):
        train(TrainConfig(**{**bare.__dict__, "lr": 0.5}))
    with pytest.raises(SpklipError, match=r"model='spklip-paper' \(the run has 'spklip-tiny'\)"):
        train(TrainConfig(**{**bare.__dict__, "model": "spklip-paper"}))
    train(bare)
    saved = load_checkpoint(out).config
    assert saved["epoch"] == 2 and saved["model_name"] == "spklip-tiny"
    assert saved["train_config"]["lr"] == 3e-3 and saved["train_config"]["batch_size"] == 2
    assert [r["epoch"] for r in read_results(out)] == [1, 2]


def test_keep_last_keeps_the_newest_and_the_best(data: Path, tmp_path: Path, monkeypatch):
    import spklip.training.loop as loop_module

    # Epoch 2 scores best; epochs 4 and 5 are the newest two.
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.4])
    monkeypatch.setattr(loop_module, "zero_shot_top1", lambda *a, **k: next(scores))
    out = tmp_path / "run"
    train(config(data, out, epochs=5, keep_last=2))
    kept = sorted(p.name for p in (out / "checkpoints").iterdir() if p.is_dir())
    assert kept == ["epoch_002", "epoch_004", "epoch_005"]
    assert latest_checkpoint(out).name == "epoch_005"
    with pytest.raises(SpklipError, match="keep_last"):
        train(config(data, tmp_path / "other", keep_last=0))
