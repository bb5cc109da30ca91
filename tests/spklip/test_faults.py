"""spklip's library under faults (issue 15): damaged clips read in DataLoader workers,
device names, checkpoint pointers leaving the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikesim.errors import SpikesimError
from spklip.data import SpikeClips, make_loader
from spklip.errors import SpklipError
from tests.spklip.test_data import make_converted


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return make_converted(tmp_path / "conv", per_class=3, frames=20, size=(8, 16))


def _read_all(dataset: SpikeClips, workers: int) -> None:
    loader, sampler = make_loader(dataset, batch_size=2, shuffle=False, workers=workers)
    sampler.set_epoch(0)
    for _ in loader:
        pass


@pytest.mark.parametrize("workers", [0, 2])
def test_a_truncated_dat_is_one_line_also_from_loader_workers(data: Path, workers: int):
    dat = sorted(data.rglob("*.dat"))[1]
    dat.write_bytes(dat.read_bytes()[:7])  # cut mid-frame
    dataset = SpikeClips(data, frames=8, split=None)
    with pytest.raises(SpikesimError) as info:
        _read_all(dataset, workers)
    message = str(info.value)
    # With workers PyTorch put the worker's 30-line traceback into the message, before.
    assert "\n" not in message and "Traceback" not in message, message
    assert dat.name in message


@pytest.mark.parametrize("workers", [0, 2])
def test_a_read_error_inside_the_reader_names_the_clip(data: Path, workers: int, monkeypatch):
    # A corrupt HDF5 chunk: h5py raises OSError("Can't read data (inflate() failed)").
    from spikesim.converted.folder import FolderDataset

    def corrupt(self, index, start=0, count=None):
        raise OSError("Can't read data (inflate() failed)")

    monkeypatch.setattr(FolderDataset, "read_packed", corrupt)  # workers are forked: they see it
    dataset = SpikeClips(data, frames=8, split=None)
    with pytest.raises(SpklipError) as info:
        _read_all(dataset, workers)
    message = str(info.value)
    assert "\n" not in message and "inflate() failed" in message and "clip " in message


def test_device_names_that_cannot_work_are_one_line():
    from spklip.device import pick_device

    for name in ("banana", "cuda:7"):
        with pytest.raises(SpklipError) as info:
            pick_device(name)
        assert "\n" not in str(info.value)


def test_a_latest_pointer_leaving_the_run_is_ignored(tmp_path: Path):
    from spklip.checkpoint import CONFIG, latest_checkpoint

    run, other = tmp_path / "run" / "checkpoints", tmp_path / "other" / "checkpoints"
    for folder in (run / "epoch_001", other / "epoch_009"):
        folder.mkdir(parents=True)
        (folder / CONFIG).write_text("{}")
    for pointer in ("../../other/checkpoints/epoch_009", str(other / "epoch_009")):
        (run / "latest").write_text(pointer + "\n")
        assert latest_checkpoint(run.parent) == run / "epoch_001"


def test_a_checkpoint_config_with_an_absurd_vocabulary_is_refused_before_allocating():
    from spklip.factory import create_model_from_config, get_model_config

    config = get_model_config("spklip-tiny").to_dict()
    config["text"]["vocab_size"] = 10**11  # 47 TiB of float32 token table
    with pytest.raises(SpklipError, match=r"would need .*TiB of memory") as info:
        create_model_from_config(config)
    assert "\n" not in str(info.value)
