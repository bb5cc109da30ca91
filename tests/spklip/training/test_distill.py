"""Distillation learns: held-out-class Top-1 of the event encoder well above chance, and not
when the event / image pairing is shuffled (the control that must fail to learn)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spikesim import GlyphSpec, glyph_prompts, make_glyph_set
from spklip.errors import SpklipError
from spklip.evaluation.distill import encode_frames, zero_shot
from spklip.training.distill import (
    DistillConfig,
    LossWeights,
    TeacherConfig,
    distill,
    split_classes,
    train_teacher,
)

CLASSES = [0, 1, 3, 7, 10, 13, 17, 20]  # 0 1 3 7 A D J M
SEEN, UNSEEN = CLASSES[:5], CLASSES[5:]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    spec = GlyphSpec(saccade_frames=8, spike_steps=1)
    train = make_glyph_set(CLASSES, 24, seed=5, spec=spec)
    test = make_glyph_set(UNSEEN, 12, seed=5, first_index=24, spec=spec)
    prompts = glyph_prompts(CLASSES, templates=("a photo of {}.", "a drawing of {}."))
    local = {c: i for i, c in enumerate(CLASSES)}
    y = np.array([local[c] for c in train.labels])
    cfg = TeacherConfig(
        embed_dim=32, width=8, epochs=25, batch_size=32, lr=3e-3, text="transformer"
    )
    teacher = train_teacher(train.images, y, prompts, cfg, seed=0)
    return train, test, teacher, y, local


def _unseen_top1(encoder, test, teacher, local) -> float:
    feats = encode_frames(encoder, test.events)
    labels = np.array([local[c] for c in test.labels])
    return zero_shot(feats, labels, teacher.class_text.numpy(), [local[c] for c in UNSEEN])[
        "unseen_top1"
    ]


def test_distillation_learns_and_shuffled_pairs_do_not(setup) -> None:
    train, test, teacher, y, local = setup
    seen = np.isin(train.labels, SEEN)
    args = (teacher, train.events[seen], train.images[seen], y[seen], [local[c] for c in SEEN])
    cfg = DistillConfig(epochs=25, batch_size=32, lr=2e-3)
    weights = LossWeights()
    good = _unseen_top1(distill(*args, weights, cfg, seed=0), test, teacher, local)
    bad = _unseen_top1(
        distill(*args, weights, cfg, seed=0, shuffle_pairs=True), test, teacher, local
    )
    chance = 1 / len(UNSEEN)
    assert good > chance + 0.25, (good, bad)
    assert bad < good - 0.2, (good, bad)


def test_split_and_inputs_are_checked() -> None:
    seen, unseen = split_classes(26, 8, seed=3)
    assert len(unseen) == 8 and sorted(seen + unseen) == list(range(26))
    assert split_classes(26, 8, seed=3) == (seen, unseen)
    with pytest.raises(SpklipError, match="n_unseen"):
        split_classes(5, 5, seed=0)
