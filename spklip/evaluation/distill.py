"""Evaluation of distilled event / spike encoders (the event-CLIP system, `spklip.eventclip`).

- Zero-shot: each sample's normalised feature against every class's text embedding (the
  prompt-template ensemble); Top-1 / Top-5 against all class prompts and against the
  held-out (unseen) classes' prompts only (``spklip.metrics.zero_shot_accuracy``; ties count
  against the model).
- Few-shot: a prototype classifier on frozen encoder features: each class's prototype is the
  normalised mean of its K support features, a query goes to the most cosine-similar
  prototype. Support samples are drawn (seeded) from a pool disjoint from the queries.
- Cross-modal retrieval between paired samples (event i <-> image i <-> spike i) and from
  class prompts to samples, R@1/5/10 (``spklip.metrics.retrieval_metrics``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import metrics
from ..errors import SpklipError

__all__ = ["encode_frames", "few_shot", "retrieval", "zero_shot"]


@torch.no_grad()
def encode_frames(encoder: nn.Module, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """frames float32 (N, H, W) -> L2-normalised float32 (N, D) features of ``encoder``
    (run in eval mode on the device of its parameters)."""
    x = np.asarray(frames, dtype=np.float32)
    if x.ndim != 3 or len(x) == 0:
        raise SpklipError(f"frames must be a non-empty (N, H, W) array, got shape {x.shape}")
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = [
        F.normalize(encoder(torch.from_numpy(x[i : i + batch_size]).to(device)), dim=-1).cpu()
        for i in range(0, len(x), batch_size)
    ]
    encoder.train(was_training)
    return torch.cat(out).numpy()


def zero_shot(
    features: np.ndarray,
    labels: np.ndarray,
    class_text: np.ndarray,
    unseen: Sequence[int],
) -> dict[str, float]:
    """features (N, D) normalised, labels (N,) class indices into class_text (C, D) rows.

    Returns ``all_top1``, ``all_top5`` (scored against every class) and ``unseen_top1``,
    ``unseen_top5`` (scored against the classes in ``unseen`` only; every label must be one
    of them)."""
    f = np.asarray(features, dtype=np.float64)
    t = np.asarray(class_text, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    unseen = [int(c) for c in unseen]
    where = {c: i for i, c in enumerate(unseen)}
    if not set(y.tolist()) <= set(where):
        raise SpklipError("zero_shot: every label must be one of the unseen classes given")
    logits = f @ t.T
    out = {f"all_{k}": v for k, v in metrics.zero_shot_accuracy(logits, y).items()}
    sub = metrics.zero_shot_accuracy(logits[:, unseen], np.array([where[c] for c in y]))
    out.update({f"unseen_{k}": v for k, v in sub.items()})
    return out


def few_shot(
    support: np.ndarray,
    support_labels: np.ndarray,
    query: np.ndarray,
    query_labels: np.ndarray,
    shots: Sequence[int] = (1, 2, 4, 8),
    *,
    seed: int = 0,
    trials: int = 5,
) -> dict[str, float]:
    """Prototype classifier Top-1 for each K in ``shots``, averaged over ``trials`` seeded
    draws of K support samples per class: ``{"1": acc, "2": acc, ...}``. support (S, D),
    query (Q, D) normalised features; every query class needs >= max(shots) support samples."""
    s, q = np.asarray(support, np.float64), np.asarray(query, np.float64)
    ys, yq = np.asarray(support_labels, np.int64), np.asarray(query_labels, np.int64)
    classes = np.unique(yq)
    need = max(shots)
    for c in classes:
        if (ys == c).sum() < need:
            raise SpklipError(
                f"few_shot: class {c} has {(ys == c).sum()} support samples, needs {need}"
            )
    where = {c: i for i, c in enumerate(classes)}
    yq_idx = np.array([where[c] for c in yq])
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    for k in shots:
        accs = []
        for _ in range(trials):
            protos = []
            for c in classes:
                pick = rng.choice(np.flatnonzero(ys == c), size=k, replace=False)
                p = s[pick].mean(axis=0)
                protos.append(p / max(np.linalg.norm(p), 1e-12))
            logits = q @ np.stack(protos).T
            accs.append(metrics.zero_shot_accuracy(logits, yq_idx, ks=(1,))["top1"])
        out[str(k)] = float(np.mean(accs))
    return out


def retrieval(
    events: np.ndarray,
    images: np.ndarray,
    spikes: np.ndarray,
    class_text: np.ndarray,
    labels: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Paired normalised features (N, D) of one set of scenes; class_text (C, D); labels (N,).

    ``event_to_image_R@k`` / ``image_to_event_R@k``: the right item is the other modality of
    the same scene; ``event_to_spike_R@k`` likewise; ``text_to_event_R@k``: a class prompt's
    right items are all events of its class (only classes present in ``labels`` are queries).
    """
    n = len(events)
    if not (len(images) == len(spikes) == len(labels) == n):
        raise SpklipError("retrieval: events, images, spikes and labels must have one length")
    own = np.arange(n)
    out: dict[str, float] = {}
    ei = metrics.retrieval_metrics(events, images, own, ks)
    es = metrics.retrieval_metrics(events, spikes, own, ks)
    for k in ks:
        out[f"event_to_image_R@{k}"] = ei[f"v2t_R@{k}"]
        out[f"image_to_event_R@{k}"] = ei[f"t2v_R@{k}"]
        out[f"event_to_spike_R@{k}"] = es[f"v2t_R@{k}"]
    present = np.unique(labels)
    where = {c: i for i, c in enumerate(present)}
    te = metrics.retrieval_metrics(
        events, np.asarray(class_text)[present], np.array([where[c] for c in labels]), ks
    )
    for k in ks:
        out[f"text_to_event_R@{k}"] = te[f"t2v_R@{k}"]
    return out
