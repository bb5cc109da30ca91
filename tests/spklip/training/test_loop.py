"""Training runs end to end on a minuscule model: results.jsonl, checkpoints, resume, eval."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from spklip.checkpoint import latest_checkpoint, load_checkpoint
from spklip.errors import SpklipError
from spklip.evaluation.zeroshot import evaluate
from spklip.training.loop import TrainConfig, read_results, train
from spklip.training.optim import lr_factor
from tests.spklip.test_data import make_converted

ROOT = Path(__file__).resolve().parents[3]

# spklip-tiny shrunk until a step takes milliseconds: the loop is under test, not the model.
MINI = {
    "frames": 12,
    "temporal_bin": 1,
    "embed_dim": 16,
    "hsfe": {
        "n_blocks": 2,
        "radius": 2,
        "step": None,
        "n_branches": 2,
        "channel_step": 1,
        "branch_width": 4,
        "branch_channels": 4,
        "gate_width": 4,
        "features": 8,
        "res_blocks": 0,
    },
    "star": {
        "layers": [1],
        "width": 4,
        "stage_strides": [1],
        "heads": 2,
        "temporal_layers": 1,
        "temporal_heads": 2,
    },
    # A run-trained BPE: 16 of its tokens hold a whole prompt (16 bytes would not), and it
    # keeps train.py's tokenizer-training path tested.
    "text": {
        "vocab_size": 300,
        "context_length": 16,
        "width": 16,
        "heads": 2,
        "layers": 1,
        "tokenizer": "bpe-run",
    },
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_converted(tmp_path_factory.mktemp("conv"), per_class=4, frames=20, size=(8, 16))


def config(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=data,
        out=out,
        model="spklip-tiny",
        model_overrides=MINI,
        epochs=2,
        batch_size=2,
        lr=3e-3,
        workers=0,
        progress=False,
    )
    return TrainConfig(**{**base, **kw})


def test_the_schedule_warms_up_then_follows_a_cosine():
    total, warm = 100, 10
    f = [lr_factor(s, total, warm, 0.1) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in itertools.pairwise(f[:10]))
    assert f[10] == pytest.approx(1.0)
    assert f[55] == pytest.approx(0.1 + 0.9 * 0.5)
    assert f[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(f[10:]))


def test_none_means_the_models_recipe():
    tiny = TrainConfig(data="d", model="spklip-tiny").resolved()
    assert (tiny.lr, tiny.batch_size, tiny.epochs, tiny.captions) == (1e-3, 16, 40, "both")
    paper = TrainConfig(data="d", model="spklip-paper").resolved()
    assert (paper.lr, paper.batch_size, paper.epochs, paper.captions) == (2e-5, 8, 30, "mixed")
    mine = TrainConfig(data="d", model="spklip-tiny", epochs=3, captions="mixed").resolved()
    assert (mine.epochs, mine.captions) == (3, "mixed")


def test_texts_both_add_the_caption_term_to_the_prompt_loss(data, tmp_path):
    # Same seed, same clips and prompts: "both" adds caption_weight x a caption loss (about
    # log(batch) per direction at the start), so its epoch-1 loss is the larger one.
    both = train(config(data, tmp_path / "both", epochs=1, captions="both"))["results"]
    prompt = train(config(data, tmp_path / "prompt", epochs=1, captions="prompt"))["results"]
    assert both[0]["loss"] > prompt[0]["loss"] + 0.3


def test_caption_weight_comes_from_the_recipe_unless_given_and_weights_the_caption_term(
    data, tmp_path
):
    assert TrainConfig(data="d", model="spklip-tiny").resolved().caption_weight == 1.0
    assert (
        TrainConfig(data="d", model="spklip-tiny", caption_weight=3.0).resolved().caption_weight
        == 3.0
    )
    with pytest.raises(SpklipError, match="caption_weight"):
        train(config(data, tmp_path / "bad", caption_weight=-1.0))
    # One epoch, same seed: weight 0 leaves the prompt loss alone; weight 2 adds twice the
    # caption term weight 1 adds.
    loss = {
        w: train(config(data, tmp_path / f"w{w}", epochs=1, captions="both", caption_weight=w))[
            "results"
        ][0]["loss"]
        for w in (0.0, 1.0, 2.0)
    }
    assert loss[2.0] > loss[1.0] + 0.3 > loss[0.0] + 0.6


def test_checkpoints_record_the_data_side_binning_under_its_old_name_too():
    from spklip.data import data_bin

    assert data_bin({"data_bin": 2}) == 2
    assert data_bin({"temporal_bin": 10}) == 10  # written before the model had temporal_bin
    assert data_bin({}) == 1


def test_a_run_writes_one_line_per_epoch_and_a_resume_repeats_it_exactly(data, tmp_path):
    straight = train(config(data, tmp_path / "straight"))
    rows = read_results(tmp_path / "straight")
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert {"epoch", "loss", "lr", "seconds", "val_top1", "logit_scale"} <= row.keys()
        assert 0.0 <= row["val_top1"] <= 1.0
    assert straight["checkpoint"].endswith("epoch_002")

    # Interrupted after epoch 1 (as if killed), then resumed.
    train(config(data, tmp_path / "split", epochs=2, stop_after=1))
    assert [r["epoch"] for r in read_results(tmp_path / "split")] == [1]
    with pytest.raises(SpklipError, match="--resume"):
        train(config(data, tmp_path / "split"))
    train(config(data, tmp_path / "split", resume=True))
    resumed = read_results(tmp_path / "split")
    assert [r["epoch"] for r in resumed] == [1, 2]
    for a, b in zip(rows, resumed, strict=True):
        assert a["loss"] == b["loss"] and a["lr"] == b["lr"] and a["val_top1"] == b["val_top1"]
    one = load_checkpoint(tmp_path / "straight").state_dict
    two = load_checkpoint(tmp_path / "split").state_dict
    assert one.keys() == two.keys()
    for name in one:
        assert torch.equal(one[name], two[name]), name

    # Resuming a finished run does nothing more; resuming an empty folder starts afresh.
    train(config(data, tmp_path / "split", resume=True))
    assert len(read_results(tmp_path / "split")) == 2
    assert latest_checkpoint(tmp_path / "split").name == "epoch_002"


def test_evaluate_reports_zero_shot_and_retrieval_as_json(data, tmp_path):
    train(config(data, tmp_path / "run", epochs=1))
    out = tmp_path / "eval" / "results.json"
    result = evaluate(tmp_path / "run", data, "test", out=out, figures_dir=out.parent)
    assert json.loads(out.read_text()) == result
    zs, rt = result["zero_shot"], result["retrieval"]
    assert result["clips"] == 2 and result["split"] == "test" and result["epoch"] == 1
    assert {"top1", "top5", "per_class", "confusion"} <= zs.keys()
    assert set(zs["per_class"]) == {"MoveLeft", "MoveRight"}
    assert sum(map(sum, zs["confusion"])) == 2
    for key in ("t2v_R@1", "t2v_R@5", "t2v_R@10", "v2t_R@1", "v2t_R@5", "v2t_R@10"):
        assert 0.0 <= rt[key] <= 1.0
    assert rt["t2v_median_rank"] >= 1 and rt["text_source"] == "caption"
    assert (out.parent / "confusion.png").stat().st_size > 0


def test_unknown_model_and_bad_data_fail_before_any_work(data, tmp_path):
    with pytest.raises(SpklipError, match="unknown model 'nope'"):
        train(config(data, tmp_path / "a", model="nope"))
    with pytest.raises(SpklipError, match="no such dataset"):
        train(config(tmp_path / "missing", tmp_path / "b"))
    with pytest.raises(SpklipError, match="no clips in split 'val'"):
        train(config(data, tmp_path / "c", train_split="val"))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_torchrun_with_two_cpu_processes_writes_one_line_per_epoch(data, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun is not installed beside this python")
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            sys.path.insert(0, {str(ROOT)!r})
            from spklip.training.loop import TrainConfig, train
            from tests.spklip.training.test_loop import MINI
            r = train(TrainConfig(data={str(data)!r}, out={str(tmp_path / "ddp")!r},
                                  model="spklip-tiny", model_overrides=MINI, epochs=2,
                                  batch_size=2, lr=3e-3, workers=0, progress=False))
            sys.stdout.write("WORLD%d\\n" % r["world_size"])  # one write per process
            sys.stdout.flush()
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # both processes report the world size (their lines may interleave, not their writes)
    assert proc.stdout.count("WORLD2") == 2
    rows = read_results(tmp_path / "ddp")
    assert [r["epoch"] for r in rows] == [1, 2]
    ckpt = load_checkpoint(tmp_path / "ddp")
    assert ckpt.config["world_size"] == 2 and ckpt.epoch == 2


def test_the_demo_runner_returns_the_report_parts_and_writes_figures(data, tmp_path):
    from scripts import demo_spklip as demo

    overrides = {k: v for k, v in MINI.items() if k != "frames"}
    report = demo.run(
        data, tmp_path, model_overrides=overrides, frames=6, bin=2, epochs=1, batch_size=2,
        workers=0, progress=False,
    )  # fmt: skip
    assert {"top1", "top5", "per_class"} <= report["zero_shot"].keys()
    for key in ("t2v_R@1", "t2v_R@5", "t2v_R@10", "v2t_R@1", "v2t_R@5", "v2t_R@10"):
        assert 0.0 <= report["retrieval"][key] <= 1.0
    assert report["train_seconds"] >= 0 and report["epochs"] == 1
    for path in report["figures"].values():
        assert Path(path).stat().st_size > 0
    assert json.loads((tmp_path / "eval.json").read_text())["epoch"] == 1


def test_validation_is_carved_from_train_recorded_and_reused_by_eval(data, tmp_path):
    from spklip.data import SpikeClips

    out = tmp_path / "run"
    result = train(config(data, out, epochs=1))
    splits = json.loads((out / "splits.json").read_text())
    assert splits["seed"] == 0 and splits["fraction"] == 0.2 and splits["val"]
    assert not set(splits["val"]) & set(splits["train"])
    test_paths = {p for p in SpikeClips(data, frames=4, split="test").records}
    assert not {r.path for r in test_paths} & set(splits["val"] + splits["train"])
    # the same carving through SpikeClips, and through the checkpoint in eval
    assert sorted(r.path for r in SpikeClips(data, frames=4, split="val").records) == splits["val"]
    assert "val_top1" in result["results"][0] and result["best"]["epoch"] == 1
    best = json.loads((out / "best.json").read_text())
    assert best["epoch"] == 1 and Path(best["checkpoint"]).is_dir()
    assert result["best_checkpoint"] == best["checkpoint"]  # what the demo reports
    ev = evaluate(out, data, "val")
    assert ev["clips"] == len(splits["val"])


def test_too_few_training_groups_to_carve_a_validation_split_warns_and_trains(tmp_path):
    # one training group per class (a smoke-sized dataset): nothing to validate on
    data = make_converted(tmp_path / "d", per_class=2, test_every=2, frames=20, size=(8, 16))
    with pytest.warns(UserWarning, match="no validation clips"):
        result = train(config(data, tmp_path / "run", epochs=1))
    rows = read_results(tmp_path / "run")
    assert len(rows) == 1 and "val_top1" not in rows[0]
    assert result["epochs"] == 1


def test_class_runs_train_and_are_a_setting_of_the_run(data, tmp_path):
    run = tmp_path / "runs"
    result = train(config(data, run, epochs=1, captions="both", class_run=2))
    assert result["results"][0]["loss"] > 0
    saved = load_checkpoint(latest_checkpoint(run)).config["train_config"]
    assert saved["class_run"] == 2
    with pytest.raises(SpklipError, match="class_run=3"):  # a resumed run keeps its own
        train(config(data, run, epochs=1, captions="both", class_run=3, resume=True))
