"""Evaluation of a checkpoint on a split of a converted dataset.

- Zero-shot classification: each class's text feature is the normalised mean of the
  features of its prompts under every template (the ensemble); a clip is scored against
  every class by cosine similarity. Top-1 / Top-5, per-class Top-1, confusion matrix.
- Retrieval between clips and texts: each clip's own caption when the dataset has
  captions, else its class prompt. R@1/5/10, median and mean rank, both directions.

Ties count against the model throughout (see ``spklip.metrics``).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from spikesim import clip_group, write_json

from .. import metrics
from ..checkpoint import load_model
from ..data import SpikeClips, check_compatible, checkpoint_dataset, make_loader
from ..device import pick_device
from ..errors import SpklipError
from ..model import SPKLIP
from ..prompts import TEMPLATES, class_text_groups
from . import figures


@torch.no_grad()
def encode_clips(
    model: SPKLIP,
    dataset: SpikeClips,
    *,
    batch_size: int = 16,
    workers: int = 0,
    progress: bool = False,
    desc: str = "encoding clips",
) -> np.ndarray:
    """float32 (N, D) L2-normalised video features of every clip of ``dataset``, in order
    (centred windows when ``dataset.augment`` is False)."""
    loader, _ = make_loader(dataset, batch_size=batch_size, shuffle=False, workers=workers)
    was_training = model.training
    model.eval()
    feats = np.zeros((len(dataset), model.config.embed_dim), dtype=np.float32)
    try:
        for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
            f = model.encode_video(batch["spikes"].to(model.device, non_blocking=True))
            feats[batch["index"].numpy()] = f.float().cpu().numpy()
    finally:
        model.train(was_training)
    return feats


@torch.no_grad()
def encode_texts(model: SPKLIP, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
    """float32 (M, D) L2-normalised text features."""
    was_training = model.training
    model.eval()
    try:
        parts = [
            model.encode_text(list(texts[i : i + batch_size])).float().cpu().numpy()
            for i in range(0, len(texts), batch_size)
        ]
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros((0, model.config.embed_dim), np.float32)


def class_features(
    model: SPKLIP,
    classes: Sequence[str],
    templates: Sequence[str] = TEMPLATES,
    class_texts: Mapping[str, Sequence[str]] | None = None,
) -> np.ndarray:
    """float32 (C, D): per class, the normalised mean of its texts' features (its prompts
    under ``templates``, or its own ``class_texts``)."""
    groups = class_text_groups(classes, templates, class_texts)
    flat = encode_texts(model, [p for g in groups for p in g])
    bounds = np.cumsum([0, *(len(g) for g in groups)])
    per = np.stack([flat[a:b].mean(axis=0) for a, b in itertools.pairwise(bounds)])
    return per / np.maximum(np.linalg.norm(per, axis=1, keepdims=True), 1e-12)


def zero_shot_top1(
    model: SPKLIP,
    dataset: SpikeClips,
    *,
    batch_size: int = 16,
    workers: int = 0,
    templates: Sequence[str] = TEMPLATES,
) -> float:
    """Zero-shot Top-1 on ``dataset`` (the quick check run after each training epoch)."""
    video = encode_clips(model, dataset, batch_size=batch_size, workers=workers)
    logits = video @ class_features(model, dataset.classes, templates).T
    return metrics.zero_shot_accuracy(logits, dataset.labels, ks=(1,))["top1"]


def evaluate_model(
    model: SPKLIP,
    dataset: SpikeClips,
    *,
    batch_size: int = 16,
    workers: int = 0,
    templates: Sequence[str] = TEMPLATES,
    class_texts: Mapping[str, Sequence[str]] | None = None,
    unseen: Sequence[str] = (),
    progress: bool = False,
) -> dict[str, Any]:
    """Zero-shot and retrieval metrics of ``model`` on ``dataset`` (see the module doc).

    ``class_texts``: each class's own texts in place of ``templates`` (``spklip eval
    --prompts``). ``unseen``: classes left out of training (``--exclude-classes``): Top-1
    is then also reported over their clips alone (``unseen_top1``, scored against every
    class, true zero-shot) and over the others (``seen_top1``).

    Returns ``{"zero_shot": {"top1", "top5", "per_class": {class: top1}, "confusion":
    [[int]]}, "retrieval": {"t2v_R@1", ..., "v2t_mean_rank", "texts", "text_source",
    "by_groups" (when the clips have captions and more than one group:
    ``spklip.metrics.retrieval_by_pool`` over the clips' groups)},
    "clips": N, "classes": [...]}``; fractions in [0, 1], ranks 1-based.
    """
    check_compatible(model, dataset)
    video = encode_clips(model, dataset, batch_size=batch_size, workers=workers, progress=progress)
    labels = dataset.labels
    classes = dataset.classes
    logits = video @ class_features(model, classes, templates, class_texts).T
    zero_shot: dict[str, Any] = metrics.zero_shot_accuracy(logits, labels, ks=(1, 5))
    if unseen:
        unknown = sorted(set(unseen) - set(classes))
        if unknown:
            raise SpklipError(f"unseen classes {unknown} are not classes of {dataset.path}")
        held = np.isin(labels, [classes.index(c) for c in unseen])
        for name, mask in (("unseen_top1", held), ("seen_top1", ~held)):
            if mask.any():
                zero_shot[name] = metrics.zero_shot_accuracy(logits[mask], labels[mask], ks=(1,))[
                    "top1"
                ]
        zero_shot["unseen_classes"] = sorted(unseen)
    present = sorted(set(labels.tolist()))
    per_class = metrics.per_class_accuracy(logits, labels, classes)
    zero_shot["per_class"] = {classes[c]: per_class[classes[c]] for c in present}
    zero_shot["confusion"] = metrics.confusion_matrix(logits, labels, len(classes)).tolist()

    texts = [dataset.eval_text(i) for i in range(len(dataset))]
    unique = sorted(set(texts))
    index = {t: k for k, t in enumerate(unique)}
    position = np.array([index[t] for t in texts])
    text_feats = encode_texts(model, unique)
    retrieval: dict[str, Any] = metrics.retrieval_metrics(video, text_feats, position)
    retrieval["texts"] = len(unique)
    retrieval["text_source"] = "caption" if dataset.has_captions else "prompt"
    groups = [clip_group(r.source or r.path, r.cls) for r in dataset.records]
    if dataset.has_captions and len(set(groups)) > 1:
        # R@k against pools of the clips of 1, 2, 4 and all groups (scenes); a caption
        # two clips share ties them, and ties count against
        retrieval["by_groups"] = metrics.retrieval_by_pool(video, text_feats[position], groups)
    return {
        "clips": len(dataset),
        "classes": list(classes),
        "zero_shot": zero_shot,
        "retrieval": retrieval,
    }


def evaluate(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    split: str | None = "test",
    *,
    batch_size: int = 16,
    workers: int = 0,
    device: str | torch.device | None = None,
    out: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    templates: Sequence[str] = TEMPLATES,
    class_texts: Mapping[str, Sequence[str]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint (folder, run folder or file in it) on ``split`` of ``data``.

    Returns the dict of :func:`evaluate_model` plus ``checkpoint``, ``epoch``, ``data``,
    ``split``, ``seconds``; writes it as JSON to ``out`` when given, and the confusion
    matrix as ``confusion.png`` into ``figures_dir`` when given. Classes the run left out of
    training (``exclude_classes`` in its config) are scored apart as ``unseen_top1``.
    """
    t0 = time.perf_counter()
    model, ckpt = load_model(checkpoint, device=pick_device(device))
    dataset = checkpoint_dataset(model, ckpt, data, split=split, augment=False, captions="caption")
    result = evaluate_model(
        model,
        dataset,
        batch_size=batch_size,
        workers=workers,
        templates=templates,
        class_texts=class_texts,
        unseen=ckpt.config.get("exclude_classes") or (),
        progress=progress,
    )
    result = {
        "checkpoint": str(ckpt.path),
        "epoch": ckpt.epoch,
        "data": str(data),
        "split": split,
        **result,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if figures_dir is not None:
        fig = figures.plot_confusion(
            np.array(result["zero_shot"]["confusion"]),
            dataset.classes,
            Path(figures_dir) / "confusion.png",
            title=f"Zero-shot confusion ({split}, top-1 {result['zero_shot']['top1']:.2f})",
        )
        result["figures"] = {"confusion": str(fig)}
    if out is not None:
        write_json(out, result)
    return result


def retrieve(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    query: str,
    *,
    top: int = 5,
    split: str | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> list[dict[str, Any]]:
    """The ``top`` clips of ``data`` (``split``, None: every clip) that match a text ``query``
    best: ``[{"rank", "score", "path", "class", "caption"}]``, highest cosine first."""
    if not query.strip():
        raise SpklipError(
            "the query is empty; describe the clips to find, e.g. 'a square moves left'"
        )
    model, ckpt = load_model(checkpoint, device=pick_device(device))
    dataset = checkpoint_dataset(model, ckpt, data, split=split, augment=False, captions="caption")
    check_compatible(model, dataset)
    video = encode_clips(model, dataset, batch_size=batch_size)
    scores = video @ encode_texts(model, [query])[0]
    order = np.argsort(-scores, kind="stable")[: max(int(top), 1)]
    return [
        {
            "rank": r + 1,
            "score": float(scores[i]),
            "path": dataset.records[i].path,
            "class": dataset.records[i].cls,
            "caption": dataset.records[i].caption,
        }
        for r, i in enumerate(order)
    ]
