"""Evaluation metrics as plain functions on score matrices, returning flat dicts.

Ties are counted against the model everywhere: an item that scores exactly as high as
the right answer is ranked before it. A model that outputs a constant therefore scores
zero, not 1/N.

Ranks are 1-based in reported medians and means (1 = the right answer came first);
``rank0`` arrays inside this module are 0-based (the number of wrong items ranked before
the right answer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import SpklipError


def _as_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise SpklipError(f"{name} must be 2-D (queries, items), got shape {s.shape}")
    return s


def true_class_ranks(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """0-based rank of the true class of each sample: how many other classes score
    ``>=`` it. ``logits`` (N, C) float, ``labels`` (N,) int in [0, C). -> int64 (N,)."""
    s = _as_scores(logits, "logits")
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (s.shape[0],):
        raise SpklipError(f"labels must have shape ({s.shape[0]},), got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= s.shape[1]):
        raise SpklipError(f"labels must be in [0, {s.shape[1]})")
    true = s[np.arange(len(y)), y][:, None]
    # Counting >= includes the true class itself once; take it off.
    return (s >= true).sum(axis=1) - 1


def predictions(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predicted class per sample, ties against the model: the true class only when it
    scores strictly highest, otherwise the first highest-scoring wrong class. -> int64 (N,)."""
    s = _as_scores(logits, "logits").copy()
    y = np.asarray(labels, dtype=np.int64)
    rows = np.arange(len(y))
    correct = true_class_ranks(s, y) == 0
    s[rows, y] = -np.inf
    wrong_best = s.argmax(axis=1) if s.shape[1] > 1 else y
    return np.where(correct, y, wrong_best)


def zero_shot_accuracy(
    logits: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Top-k accuracy for each k: ``{"top1": ..., "top5": ...}`` fractions in [0, 1].

    ``logits`` (N, C): score of each sample against each class; ``labels`` (N,).
    A sample counts for top-k when fewer than k other classes score ``>=`` its true class.
    When k exceeds the number of classes, top-k is 1.
    """
    rank0 = true_class_ranks(logits, labels)
    n = max(len(rank0), 1)
    return {f"top{k}": float((rank0 < k).sum() / n) for k in ks}


def per_class_accuracy(
    logits: np.ndarray, labels: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Top-1 accuracy of the samples of each class: ``{class name: fraction}``.
    A class with no samples gets NaN."""
    rank0 = true_class_ranks(logits, labels)
    y = np.asarray(labels, dtype=np.int64)
    out: dict[str, float] = {}
    for c, name in enumerate(classes):
        mask = y == c
        out[name] = float((rank0[mask] == 0).mean()) if mask.any() else float("nan")
    return out


def confusion_matrix(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``M[true, predicted]`` as int64 (C, C), with :func:`predictions` (ties
    against the model), so the diagonal sums to the number of top-1 hits."""
    y = np.asarray(labels, dtype=np.int64)
    pred = predictions(logits, y)
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (y, pred), 1)
    return m


def first_positive_ranks(scores: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """0-based rank of the best-placed right item for each query: the number of wrong
    items scoring ``>=`` the highest-scoring right one.

    ``scores`` (Q, N) float; ``positives`` (Q, N) bool, at least one True per row.
    -> int64 (Q,). With one right item per row this is "how many others score >= it".
    """
    s = _as_scores(scores)
    p = np.asarray(positives, dtype=bool)
    if p.shape != s.shape:
        raise SpklipError(f"positives shape {p.shape} differs from scores shape {s.shape}")
    if not p.any(axis=1).all():
        raise SpklipError("every query needs at least one right item")
    best_pos = np.where(p, s, -np.inf).max(axis=1, keepdims=True)
    return ((s >= best_pos) & ~p).sum(axis=1)


def rank_metrics(
    rank0: np.ndarray, prefix: str, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """Recall@k, median and mean 1-based rank from 0-based ranks:
    ``{prefix_R@1, ..., prefix_median_rank, prefix_mean_rank}``."""
    r = np.asarray(rank0, dtype=np.int64)
    if r.size == 0:
        raise SpklipError("no queries to rank")
    out = {f"{prefix}_R@{k}": float((r < k).mean()) for k in ks}
    out[f"{prefix}_median_rank"] = float(np.median(r + 1))
    out[f"{prefix}_mean_rank"] = float((r + 1).mean())
    return out


def retrieval_metrics(
    video_features: np.ndarray,
    text_features: np.ndarray,
    video_to_text: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Text-to-video and video-to-text retrieval.

    ``video_features`` (N, D) and ``text_features`` (M, D): L2-normalised embeddings of
    N clips and M distinct texts. ``video_to_text`` (N,) int: index of each clip's own
    text. A text's right videos are all clips whose text it is (one per text when every
    clip has its own caption, a whole class when the texts are class prompts); a clip's
    right text is its own. Returns ``t2v_R@k``, ``v2t_R@k``, ``t2v_median_rank``,
    ``t2v_mean_rank``, ``v2t_median_rank``, ``v2t_mean_rank``.
    """
    v = np.asarray(video_features, dtype=np.float64)
    t = np.asarray(text_features, dtype=np.float64)
    idx = np.asarray(video_to_text, dtype=np.int64)
    if v.ndim != 2 or t.ndim != 2 or v.shape[1] != t.shape[1]:
        raise SpklipError(f"feature shapes {v.shape} and {t.shape} do not match")
    if idx.shape != (v.shape[0],):
        raise SpklipError(f"video_to_text must have shape ({v.shape[0]},), got {idx.shape}")
    sim = v @ t.T  # (N videos, M texts)
    pos = np.zeros(sim.shape, dtype=bool)
    pos[np.arange(len(idx)), idx] = True
    # Texts no clip points to have no right answer: they are not queries.
    used = pos.any(axis=0)
    out = rank_metrics(first_positive_ranks(sim.T[used], pos.T[used]), "t2v", ks)
    out.update(rank_metrics(first_positive_ranks(sim, pos), "v2t", ks))
    return out


def retrieval_by_pool(
    video_features: np.ndarray,
    text_features: np.ndarray,
    groups: Sequence[str],
    sizes: Sequence[int] = (1, 2, 4),
    *,
    draws: int = 40,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Text-to-video R@1 / R@10 with the candidates restricted to the clips of k groups
    (scenes), for each k of ``sizes`` and for all groups: ``{str(k): {"clips", "t2v_R@1",
    "t2v_R@10"}}``, each the mean over up to ``draws`` seeded draws of k groups.

    ``video_features`` and ``text_features`` (N, D): clip i's embedding and its own text's
    (one text per clip). Within one group only what differs between its clips (the action,
    position, size) can tell them apart; each added group adds clips that differ by their
    look, so the curve separates the two and tells how a figure measured on a pool of one
    size reads on another (a validation split of 4 groups against a test split of 9).
    """
    g = np.asarray(groups)
    v = np.asarray(video_features)
    t = np.asarray(text_features)
    if g.shape != (len(v),) or t.shape != v.shape:
        raise SpklipError(
            f"retrieval_by_pool: {len(v)} clips, {len(t)} texts and {g.size} groups must match"
        )
    names = sorted(set(g.tolist()))
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, float]] = {}
    for k in sorted({int(s) for s in sizes if 0 < int(s) < len(names)} | {len(names)}):
        picks = {tuple(sorted(rng.choice(names, size=k, replace=False))) for _ in range(draws)}
        rows = []
        for pick in sorted(picks):
            m = np.isin(g, pick)
            r = retrieval_metrics(v[m], t[m], np.arange(int(m.sum())), ks=(1, 10))
            rows.append((m.sum(), r["t2v_R@1"], r["t2v_R@10"]))
        a = np.mean(np.array(rows, dtype=np.float64), axis=0)
        out[str(k)] = {"clips": float(a[0]), "t2v_R@1": float(a[1]), "t2v_R@10": float(a[2])}
    return out
