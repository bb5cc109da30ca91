"""A training process killed with SIGKILL (mid-epoch, or while writing a checkpoint) resumes
to a valid last checkpoint and the results.jsonl of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spklip.checkpoint import latest_checkpoint, load_checkpoint
from spklip.training.loop import read_results, train
from tests.spklip.training.test_loop import config

ROOT = Path(__file__).resolve().parents[3]

# The child trains 3 epochs of 2 steps each and kills itself: "step" at the first step of
# epoch 2 (mid-epoch), "checkpoint" while epoch 2's training state is half written.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    import spklip.training.loop as loop
    from tests.spklip.training.test_loop import config

    data, out, mode = sys.argv[1:4]
    if mode == "step":
        calls = [0]
        def counted(real_loss):  # whichever loss the recipe's texts use
            def loss(*a, **k):
                calls[0] += 1
                if calls[0] == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real_loss(*a, **k)
            return loss
        loop.contrastive_loss = counted(loop.contrastive_loss)
        loop.prompt_caption_loss = counted(loop.prompt_caption_loss)
    else:
        saves = [0]
        real_save = torch.save
        def save(obj, f, *a, **k):
            saves[0] += 1
            if saves[0] == 2:
                real_save(obj, f, *a, **k)
                with open(f, "r+b") as fh:  # half the bytes reached the disk
                    fh.truncate(os.path.getsize(f) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, f, *a, **k)
        torch.save = save
    loop.train(config(data, out, epochs=3))
    """
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from tests.spklip.test_data import make_converted

    return make_converted(tmp_path_factory.mktemp("conv"), per_class=4, frames=20, size=(8, 16))


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("straight") / "run"
    train(config(data, out, epochs=3))
    return read_results(out)


@pytest.mark.parametrize("mode", ["step", "checkpoint"])
def test_a_killed_run_resumes_to_the_uninterrupted_results(data, straight, tmp_path, mode):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(out), mode],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # Killed in epoch 2: epoch 1 is the last finished checkpoint, results end there.
    assert latest_checkpoint(out).name == "epoch_001"
    assert [r["epoch"] for r in read_results(out)] == [1]

    train(config(data, out, epochs=3, resume=True))
    rows = read_results(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for a, b in zip(straight, rows, strict=True):
        assert (a["loss"], a["lr"], a["val_top1"]) == (b["loss"], b["lr"], b["val_top1"])
    last = load_checkpoint(latest_checkpoint(out), with_train_state=True)
    assert last.epoch == 3 and last.train_state["epoch"] == 3
    assert all(torch.isfinite(v).all() for v in last.state_dict.values())
