"""Metrics against slow, obvious full-loop recomputations, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from spklip import metrics
from spklip.errors import SpklipError


def slow_rank(scores_row, right: set[int]) -> int:
    """0-based position of the first right item in the list sorted by score, where at
    equal scores the wrong items come first (ties against the model)."""
    order = sorted(range(len(scores_row)), key=lambda j: (-scores_row[j], j in right))
    for pos, j in enumerate(order):
        if j in right:
            return pos
    raise AssertionError("no right item")


def slow_topk(logits, labels, k):
    hits = 0
    for row, y in zip(logits, labels, strict=True):
        hits += slow_rank(list(row), {int(y)}) < k
    return hits / len(labels)


def slow_retrieval(v, t, video_to_text, ks=(1, 5, 10)):
    sim = v @ t.T
    n, m = sim.shape
    t2v, v2t = [], []
    for j in range(m):
        right = {i for i in range(n) if video_to_text[i] == j}
        if right:
            t2v.append(slow_rank([sim[i, j] for i in range(n)], right))
    for i in range(n):
        v2t.append(slow_rank(list(sim[i]), {int(video_to_text[i])}))
    out = {}
    for name, ranks in (("t2v", t2v), ("v2t", v2t)):
        for k in ks:
            out[f"{name}_R@{k}"] = sum(r < k for r in ranks) / len(ranks)
        one_based = sorted(r + 1 for r in ranks)
        out[f"{name}_median_rank"] = float(np.median(one_based))
        out[f"{name}_mean_rank"] = sum(one_based) / len(one_based)
    return out


def quantised(rng, shape, levels=4):
    """Scores drawn from a few values so that ties are everywhere."""
    return rng.integers(0, levels, size=shape).astype(np.float64)


@pytest.mark.parametrize("seed", range(6))
def test_top_k_matches_a_full_sort_with_ties_against_the_model(seed):
    rng = np.random.default_rng(seed)
    n, c = 40, 7
    logits = quantised(rng, (n, c)) if seed % 2 else rng.normal(size=(n, c))
    labels = rng.integers(0, c, n)
    got = metrics.zero_shot_accuracy(logits, labels, ks=(1, 3, 5))
    for k in (1, 3, 5):
        assert got[f"top{k}"] == pytest.approx(slow_topk(logits, labels, k))


def test_a_constant_model_scores_zero_not_chance():
    logits = np.zeros((10, 5))
    labels = np.arange(10) % 5
    got = metrics.zero_shot_accuracy(logits, labels, ks=(1, 5))
    assert got["top1"] == 0.0
    # With 5 classes, top-5 holds every class, so it is 1 even for a constant model.
    assert got["top5"] == 1.0


def test_per_class_accuracy_and_confusion_agree_with_a_loop():
    rng = np.random.default_rng(3)
    classes = ["a", "b", "c", "d"]
    logits = quantised(rng, (50, 4), levels=3)
    labels = rng.integers(0, 3, 50)  # class "d" has no samples
    per = metrics.per_class_accuracy(logits, labels, classes)
    conf = metrics.confusion_matrix(logits, labels, 4)
    assert np.isnan(per["d"])
    for c in range(3):
        rows = [i for i in range(50) if labels[i] == c]
        hits = [slow_rank(list(logits[i]), {c}) == 0 for i in rows]
        assert per[classes[c]] == pytest.approx(sum(hits) / len(rows))
        assert conf[c, c] == sum(hits)
        assert conf[c].sum() == len(rows)
    # A tie for first place between the true class and another is a confusion with it.
    tie = metrics.confusion_matrix(np.array([[1.0, 1.0, 0.0]]), np.array([0]), 3)
    assert tie.tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]


@pytest.mark.parametrize("seed", range(4))
def test_retrieval_with_one_caption_per_clip_matches_a_full_loop(seed):
    rng = np.random.default_rng(seed)
    n, d = 30, 8
    v = quantised(rng, (n, d), levels=2) if seed % 2 else rng.normal(size=(n, d))
    t = quantised(rng, (n, d), levels=2) if seed % 2 else rng.normal(size=(n, d))
    got = metrics.retrieval_metrics(v, t, np.arange(n))
    want = slow_retrieval(v, t, np.arange(n))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


@pytest.mark.parametrize("seed", range(4))
def test_retrieval_with_class_prompts_counts_any_clip_of_the_class(seed):
    rng = np.random.default_rng(10 + seed)
    n, m, d = 24, 5, 6
    v = quantised(rng, (n, d), levels=3)
    t = quantised(rng, (m, d), levels=3)
    video_to_text = rng.integers(0, m - 1, n)  # the last text belongs to no clip
    got = metrics.retrieval_metrics(v, t, video_to_text)
    want = slow_retrieval(v, t, video_to_text)
    for key in want:
        assert got[key] == pytest.approx(want[key]), key


def test_perfect_and_constant_retrieval():
    eye = np.eye(12)
    perfect = metrics.retrieval_metrics(eye, eye, np.arange(12))
    assert perfect["t2v_R@1"] == perfect["v2t_R@1"] == 1.0
    assert perfect["t2v_median_rank"] == perfect["v2t_mean_rank"] == 1.0
    flat = metrics.retrieval_metrics(np.ones((12, 3)), np.ones((12, 3)), np.arange(12))
    # Every other item ties with the right one and goes first: rank 12 of 12.
    assert flat["t2v_R@10"] == flat["v2t_R@10"] == 0.0
    assert flat["t2v_median_rank"] == 12.0


def test_bad_shapes_are_refused():
    with pytest.raises(SpklipError, match="labels"):
        metrics.zero_shot_accuracy(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(SpklipError, match=r"\[0, 2\)"):
        metrics.zero_shot_accuracy(np.zeros((2, 2)), np.array([0, 2]))
    with pytest.raises(SpklipError, match="do not match"):
        metrics.retrieval_metrics(np.zeros((3, 2)), np.zeros((3, 4)), np.arange(3))


def test_retrieval_by_pool_separates_what_tells_clips_apart_within_and_across_groups():
    # 6 groups x 4 clips; the embedding knows a clip's place in its group, not its group
    within = np.eye(4)[np.tile(np.arange(4), 6)]
    groups = np.repeat([f"g{k}" for k in range(6)], 4)
    out = metrics.retrieval_by_pool(within, within, groups, sizes=(1, 2, 4), draws=30)
    assert sorted(out, key=int) == ["1", "2", "4", "6"]
    assert out["1"]["clips"] == 4 and out["6"]["clips"] == 24
    assert out["1"]["t2v_R@1"] == 1.0  # within a group every clip is told apart
    for k in ("2", "4", "6"):
        # k look-alikes tie for the top, and ties count against
        assert out[k]["t2v_R@1"] == 0.0 and out[k]["t2v_R@10"] == 1.0
    # an embedding that also knows the group is right at every pool size
    both = np.concatenate([within, np.eye(6)[np.repeat(np.arange(6), 4)]], axis=1) / np.sqrt(2)
    assert all(r["t2v_R@1"] == 1.0 for r in metrics.retrieval_by_pool(both, both, groups).values())
    with pytest.raises(SpklipError, match="must match"):
        metrics.retrieval_by_pool(within, within[:3], groups)
