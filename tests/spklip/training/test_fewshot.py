"""Few-shot adaptation: which parameters train, frozen BatchNorm statistics, the K-shot
picks, and the result JSON of a whole run on a minuscule checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spklip.checkpoint import save_checkpoint
from spklip.data import SpikeClips
from spklip.errors import SpklipError
from spklip.factory import create_model, create_model_from_config, get_model_config
from spklip.prompts import all_prompt_texts
from spklip.tokenizer import SpikeTokenizer
from spklip.training.fewshot import (
    FIGURE,
    RESULT,
    fewshot,
    fewshot_layers,
    finetune,
    freeze_for_fewshot,
    parse_shots,
    select_shots,
)
from tests.spklip.test_data import make_converted
from tests.spklip.training.test_loop import MINI

CLASSES = ("MoveLeft", "MoveRight", "Grow")
SIZE = (8, 16)


def tiny_model(temporal_layers: int = 1) -> torch.nn.Module:
    """The MINI model of test_train (with a BatchNorm'd STAR-Net stem) on 8x16 frames."""
    overrides = {**MINI, "star": {**MINI["star"], "temporal_layers": temporal_layers}}
    config = get_model_config("spklip-tiny", **overrides, image_size=list(SIZE))
    model = create_model_from_config(config, seed=0)
    texts = all_prompt_texts(CLASSES) + [f"a thing that does {c}" for c in CLASSES]
    model.tokenizer = SpikeTokenizer.train(texts, vocab_size=300)
    return model


def write_checkpoint(folder: Path, temporal_layers: int = 1) -> Path:
    model = tiny_model(temporal_layers)
    return save_checkpoint(
        folder,
        model,
        config={"model_config": model.config.to_dict(), "data_bin": 1, "epoch": 1},
        tokenizer_json=model.tokenizer.to_json(),
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # 5 clips per class: 3 train (k = 0, 2, 4), 2 test (k = 1, 3)
    return make_converted(
        tmp_path_factory.mktemp("conv"),
        classes=CLASSES,
        per_class=5,
        frames=16,
        size=SIZE,
        test_every=2,
    )


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("temporal_layers", [0, 1])
def test_only_the_final_two_layers_change_and_batchnorm_statistics_stay(data, temporal_layers):
    model = tiny_model(temporal_layers)
    layers = fewshot_layers(model)
    if temporal_layers:
        assert layers == [
            "visual.star.temporal.layers.0.linear1",
            "visual.star.temporal.layers.0.linear2",
            "visual.star.temporal.norm",
        ]
    else:
        pool = "visual.star.spatial.attnpool"
        assert layers == [f"{pool}.v_proj", f"{pool}.out_proj"]
    trainable = set(freeze_for_fewshot(model))
    assert trainable == {f"{m}.{p}" for m in layers for p in ("weight", "bias")}
    before = snapshot(model)
    model.train()  # finetune must put (and keep) it in eval mode regardless
    ds = SpikeClips(data, frames=12, split="train", augment=True, captions="prompt")
    losses = finetune(model, ds, select_shots(ds.labels, 2), epochs=2, lr=1e-2, batch_size=4)
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert not model.training
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == trainable  # every trainable tensor moved, nothing else did
    bn = [k for k in before if "running_" in k or "num_batches_tracked" in k]
    assert bn and not changed & set(bn)
    assert all(p.requires_grad for p in model.parameters())  # restored for later use


def test_adapting_batchnorm_moves_its_statistics_but_trains_the_same_parameters(data):
    model = tiny_model(0)
    before = snapshot(model)
    ds = SpikeClips(data, frames=12, split="train", augment=True, captions="prompt")
    finetune(model, ds, select_shots(ds.labels, 1), epochs=1, lr=1e-2, adapt_batchnorm=True)
    assert not model.training
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    stats = {k for k in changed if "running_" in k or "num_batches_tracked" in k}
    assert stats  # the BatchNorm statistics followed the new clips
    assert changed - stats == set(freeze_for_fewshot(model))


def test_trainable_layers_of_fsve_are_its_last_two_linear_layers():
    pytest.importorskip("spikingjelly")
    model = create_model("spklip-fsve-tiny", seed=0)
    layers = fewshot_layers(model)
    last = f"visual.fsve.temporal.{len(model.visual.fsve.temporal) - 1}"  # its MLP block
    assert layers == [f"{last}.fc2", f"{last}.bn2", "visual.fsve.head"]
    names = freeze_for_fewshot(model)
    assert names and all(n.startswith(tuple(layers)) for n in names)
    total = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) < total / 5
    with pytest.raises(SpklipError, match="not a module"):
        freeze_for_fewshot(model, ["visual.nope"])


def test_k_shots_per_class_are_seeded_and_nested():
    labels = np.repeat(np.arange(4), 10)[np.random.default_rng(3).permutation(40)]
    picks = {k: select_shots(labels, k, seed=5) for k in (2, 4, 6, 8)}
    for k, idx in picks.items():
        assert len(idx) == 4 * k and len(set(idx.tolist())) == 4 * k
        assert np.bincount(labels[idx], minlength=4).tolist() == [k] * 4
    assert set(picks[2]) <= set(picks[4]) <= set(picks[6]) <= set(picks[8])
    assert np.array_equal(select_shots(labels, 4, seed=5), picks[4])  # same seed, same clips
    assert not np.array_equal(select_shots(labels, 4, seed=6), picks[4])
    with pytest.raises(SpklipError, match="only 10 training clips"):
        select_shots(labels, 11)


def test_shots_are_parsed_or_refused_in_one_line():
    assert parse_shots("8, 2,4,4") == (2, 4, 8)
    assert parse_shots([6, 2]) == (2, 6)
    for bad, match in (("2,x", "whole numbers"), ("", "empty"), ("0,2", "at least 1")):
        with pytest.raises(SpklipError, match=match):
            parse_shots(bad)


def test_a_whole_run_writes_the_curve_and_its_json(data, tmp_path):
    ckpt = write_checkpoint(tmp_path / "ckpt", temporal_layers=0)
    out = tmp_path / "out"
    kw = {"epochs": 2, "lr": 1e-2, "batch_size": 4, "progress": False}
    result = fewshot(ckpt, data, shots="1,2", out=out, **kw)
    saved = json.loads((out / RESULT).read_text())
    assert saved == json.loads(json.dumps(result))
    assert (out / FIGURE).stat().st_size > 0
    assert list(saved["accuracy"]) == ["0", "1", "2"] and saved["shots"] == [1, 2]
    assert all(0.0 <= a <= 1.0 for a in saved["accuracy"].values())
    assert saved["train_clips"] == {"1": 3, "2": 6} and saved["test_clips"] == 6
    assert saved["chance"] == pytest.approx(1 / 3, abs=1e-6)
    assert 0 < saved["trainable_params"] < saved["total_params"]
    assert saved["trainable_fraction"] == pytest.approx(
        saved["trainable_params"] / saved["total_params"], abs=1e-6
    )
    assert saved["trainable_layers"] == fewshot_layers(tiny_model(0))
    settings = {"epochs", "lr", "batch_size", "seed", "data_bin", "temporal_bin", "frames"}
    assert settings <= set(saved["settings"])
    assert not list(out.glob(".*"))  # no temporaries left behind
    with pytest.raises(SpklipError, match="fewer than 4 shots"):
        fewshot(ckpt, data, shots=[4], epochs=1, progress=False)
