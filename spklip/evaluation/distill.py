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

__all__ = [
    "encode_frames",
    "few_shot",
    "report_markdown",
    "retrieval",
    "summarize",
    "zero_shot",
]


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


def _mean_sd(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": len(v)}


def _flat(d: dict, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "/"))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def summarize(results: Sequence[dict]) -> dict[str, dict[str, float]]:
    """Per-seed result dicts (``spklip.training.distill.run_experiment``) -> every numeric
    leaf as ``{"path/to/metric": {"mean", "sd" (sample sd, 0 for one seed), "n"}}``; a
    metric missing from some seeds is summarised over the seeds that have it."""
    if not results:
        raise SpklipError("summarize needs at least one result")
    flats = [_flat({k: v for k, v in r.items() if k != "seed"}) for r in results]
    keys = sorted({k for f in flats for k in f})
    return {k: _mean_sd([f[k] for f in flats if k in f]) for k in keys}


def _pm(summary: dict, key: str, pct: bool = True) -> str:
    s = summary.get(key)
    if s is None:
        return "-"
    scale = 100.0 if pct else 1.0
    return f"{s['mean'] * scale:.1f} ± {s['sd'] * scale:.1f}"


def report_markdown(
    summary: dict, ablations: Sequence[str], shots: Sequence[int], header: str
) -> str:
    """The demo's report.md: ablation table, spikes beside events, few-shot, retrieval."""
    lines = [header, "", "## Loss ablation (event encoder, held-out classes), % mean ± sd", ""]
    lines += [
        "| training | unseen Top-1 (unseen prompts) | unseen Top-5 | unseen Top-1 (all prompts)"
        " | all Top-5 |",
        "|---|---|---|---|---|",
    ]
    for name in ablations:
        p = f"events/{name}/"
        lines.append(
            f"| {name} | {_pm(summary, p + 'unseen_top1')} | {_pm(summary, p + 'unseen_top5')} | "
            f"{_pm(summary, p + 'all_top1')} | {_pm(summary, p + 'all_top5')} |"
        )
    lines += ["", "## Teacher and spike encoder (same held-out classes), %", ""]
    lines += [
        "| encoder / input | unseen Top-1 (unseen prompts) | unseen Top-1 (all prompts) |",
        "|---|---|---|",
    ]
    rows = [("teacher f_I / still images", "teacher_images/")]
    rows += [(f"f_E {ablations[-1]} / events", f"events/{ablations[-1]}/")]
    rows += [("f_I / spike-rate frames (no training)", "spikes/f_I on spikes (no training)/")]
    rows += [("f_S full / spike-rate frames", "spikes/full/")]
    for label, p in rows:
        lines.append(
            f"| {label} | {_pm(summary, p + 'unseen_top1')} | {_pm(summary, p + 'all_top1')} |"
        )
    lines += [
        "",
        "## Few-shot (prototype classifier on frozen features, held-out classes), % Top-1",
        "",
    ]
    lines += [
        "| encoder | " + " | ".join(f"K={k}" for k in shots) + " |",
        "|---|" + "---|" * len(shots),
    ]
    for label, p in [(f"events: {n}", f"events/{n}/") for n in ablations] + [
        ("spikes: f_S full", "spikes/full/")
    ]:
        cells = [_pm(summary, f"{p}few_shot_top1/{k}") for k in shots]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Cross-modal retrieval (held-out-class test set, full-loss f_E, f_I, f_S, f_T), %",
        "",
    ]
    lines += ["| query -> gallery | R@1 | R@5 | R@10 |", "|---|---|---|---|"]
    for pair in ("event_to_image", "image_to_event", "text_to_event", "event_to_spike"):
        cells = [_pm(summary, f"retrieval/{pair}_R@{k}") for k in (1, 5, 10)]
        lines.append(f"| {pair.replace('_to_', ' -> ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
