"""Training learns a learnable signal, evaluation scores a perfect model perfectly, and a
run on shuffled labels stays at chance (so the first test can fail)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spikesim import ClipRecord, write_dat
from spklip.data import SpikeClips
from spklip.evaluation.zeroshot import class_features, evaluate, evaluate_model
from spklip.factory import create_model_from_config, get_model_config
from spklip.prompts import all_prompt_texts
from spklip.tokenizer import SpikeTokenizer
from spklip.training.loop import TrainConfig, train
from tests.spklip.training.test_loop import MINI

CLASSES = ("MoveLeft", "MoveRight")
SIZE = (8, 16)


def make_learnable(
    root: Path, *, per_class: int = 16, frames: int = 16, shuffle: bool = False, seed: int = 0
) -> Path:
    """Two classes told apart by how often the clip fires: class 0 with probability 0.5 per
    pixel and frame, class 1 with 0.1 (fresh noise per clip; a rate survives any pooling,
    where a left/right layout would not survive the encoder's global pooling).
    Clip k is group ``gK`` alone; even k are test clips. ``shuffle``: a random half of each
    class's training clips take the other label (the test clips keep theirs), so a training
    label says nothing about the pixels (a plain permutation can leave most labels right)."""
    rng = np.random.default_rng(seed)
    h, w = SIZE
    rows = []
    for label, cls in enumerate(CLASSES):
        for k in range(per_class):
            p = 0.5 if label == 0 else 0.1
            spikes = rng.random((frames, h, w)) < p
            rel = f"{cls}/v_{cls}_g{k + 1:02d}_c01.dat"
            write_dat(root / rel, spikes)
            split = "test" if k % 2 == 0 else "train"
            rows.append(ClipRecord(rel, cls, label, split, None, frames, h, w, rel, 1))
    if shuffle:
        for label in range(len(CLASSES)):
            mine = [i for i, r in enumerate(rows) if r.split == "train" and r.label == label]
            for i in rng.permutation(mine)[: len(mine) // 2]:
                r, other = rows[i], 1 - label
                rows[i] = ClipRecord(
                    r.path, CLASSES[other], other, r.split, None, r.frames, h, w, r.source, 1
                )
    (root / "manifest.jsonl").write_text("".join(json.dumps(r.to_row()) + "\n" for r in rows))
    (root / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    (root / "config.yaml").write_text(yaml.safe_dump({"spike_h": h, "spike_w": w, "flipud": True}))
    return root


def run(data: Path, out: Path, seed: int = 0) -> dict:
    return train(
        TrainConfig(
            data=data,
            out=out,
            model="spklip-tiny",
            model_overrides=MINI,
            epochs=20,
            batch_size=4,
            # 1e-2 collapsed to the uniform solution for seed 0 once validation was carved
            # across classes (other training clips); 3e-3 learns at seeds 0-2 (test Top-1
            # 1.0, 1.0, 0.94) and stays at chance on shuffled labels (0.50-0.69)
            lr=3e-3,
            captions="prompt",
            seed=seed,
            workers=0,
            progress=False,
        )
    )


@pytest.fixture(scope="module")
def learnable(tmp_path_factory) -> Path:
    return make_learnable(tmp_path_factory.mktemp("learnable"))


def test_a_learnable_two_class_set_is_learned_perfectly_on_held_out_clips(learnable, tmp_path):
    result = run(learnable, tmp_path / "run")
    assert result["best"]["val_top1"] == 1.0  # validation (carved from train) sees it too
    test = evaluate(tmp_path / "run", learnable, "test")  # the trained model, last epoch
    assert test["clips"] == 16
    assert test["zero_shot"]["top1"] == 1.0


def test_shuffled_training_labels_stay_at_chance(tmp_path):
    data = make_learnable(tmp_path / "data", shuffle=True)
    run(data, tmp_path / "run")
    test = evaluate(tmp_path / "run", data, "test")  # the last epoch, whatever val said
    assert 0.25 <= test["zero_shot"]["top1"] <= 0.75


class Oracle(torch.nn.Module):
    """Wraps a model: its video embedding of a clip is its true class's text embedding
    (read from the clip's firing rate), or the other class's with ``wrong``."""

    def __init__(self, model, classes, wrong: bool = False) -> None:
        super().__init__()
        self.model = model
        self.text = torch.from_numpy(class_features(model, classes))
        self.wrong = wrong

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        label = (spikes.float().mean(dim=(1, 2, 3)) < 0.3).long()
        return self.text[1 - label if self.wrong else label]


def test_an_oracle_model_scores_one_and_its_opposite_zero(learnable):
    config = get_model_config("spklip-tiny", **MINI, image_size=list(SIZE))
    model = create_model_from_config(config, seed=0)
    model.tokenizer = SpikeTokenizer.train(all_prompt_texts(list(CLASSES)), vocab_size=300)
    data = SpikeClips(learnable, frames=12, split="test", captions="prompt")
    perfect = evaluate_model(Oracle(model, data.classes), data)
    assert perfect["zero_shot"]["top1"] == 1.0
    opposite = evaluate_model(Oracle(model, data.classes, wrong=True), data)
    assert opposite["zero_shot"]["top1"] == 0.0
