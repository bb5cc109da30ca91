"""Few-shot adaptation of a trained checkpoint to a new domain (paper section 4.3).

For each K in ``shots``: reload the checkpoint, take K clips of every class from the
training split of the new data, freeze everything except the final two layers of the video
encoder's STAR-Net, fine-tune those briefly with the training loss (symmetric InfoNCE
against class prompts, label-aware), and measure zero-shot Top-1 on the test split. K = 0,
the checkpoint before any adaptation, is the baseline. The demo runs it from a model
trained on ``spikesim synth --style sim`` onto ``--style real`` clips converted with the
``sensor`` noise preset, like the paper's sim-to-real experiment.

Which layers train (:func:`fewshot_layers`). "Layer" means a weight layer (a linear map),
counted backwards along the path from the spike features to the video embedding:

- STAR-Net without temporal Transformer layers (``star.temporal_layers = 0``, the demo's
  model): the attention pooling's value projection and output projection
  (``attnpool.v_proj``, ``attnpool.out_proj``). The pooled embedding is
  ``out_proj(sum_i a_i v_proj(token_i))``; the query / key projections and positional
  embeddings, which only set the attention weights ``a_i``, stay frozen.
- STAR-Net with temporal layers: the feed-forward of the last Transformer layer
  (``linear1``, ``linear2``) and the LayerNorm after it (``temporal.norm``).
- FSVE (the full-spiking encoder): the last two linear layers before the embedding, each
  with the threshold-dependent BatchNorm that follows it: the last temporal block's ``fc2`` +
  ``bn2`` (or ``token`` + ``token_bn`` without temporal blocks), and the readout ``head``.

The whole of the model else stays frozen: HSFE, the ResNet, the text encoder and the
temperature. Fine-tuning runs the model in eval mode, so no BatchNorm updates its running
statistics (a few dozen clips would only add noise to them) and dropout is off; the
trainable layers still get their gradients. The data are read exactly as the checkpoint was
trained (its frames and temporal bin), as ``spklip.evaluation.zeroshot`` does.

Clips are picked per class with a seeded permutation of that class's training clips and
the first K of it are used, so the sets are nested: the 4-shot clips include the 2-shot ones.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spikesim import write_atomic

from .. import metrics
from ..checkpoint import load_model
from ..data import SpikeClips, check_compatible, checkpoint_dataset
from ..device import pick_device
from ..errors import SpklipError
from ..evaluation import figures
from ..evaluation.zeroshot import class_features, encode_clips
from ..loss import contrastive_loss
from ..model import SPKLIP
from ..prompts import TEMPLATES
from .optim import lr_factor, param_groups

__all__ = [
    "FEWSHOT_DEFAULTS",
    "FIGURE",
    "RESULT",
    "fewshot",
    "fewshot_layers",
    "finetune",
    "freeze_for_fewshot",
    "parse_shots",
    "select_shots",
]

RESULT = "fewshot.json"
FIGURE = "fewshot.png"

# The short fine-tuning; checked on a shifted set made for tuning only (docs/fewshot.md,
# "The defaults, checked on tuning data"): BatchNorm adaptation +0.09, epochs/lr within noise.
FEWSHOT_DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "lr": 1e-3,
    "batch_size": 16,
    "weight_decay": 0.0,
}


def parse_shots(text: str | Iterable[int]) -> tuple[int, ...]:
    """``"2,4,6,8"`` (or a sequence of ints) -> ``(2, 4, 6, 8)``: positive, sorted, unique.

    Raises a one-line SpklipError for anything else."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise SpklipError(
                f"--shots {text!r}: expected comma-separated whole numbers, e.g. 2,4,6,8"
            ) from None
    else:
        values = [int(v) for v in text]
    if not values:
        raise SpklipError("--shots is empty; give clip counts per class, e.g. 2,4,6,8")
    if min(values) < 1:
        raise SpklipError(
            f"--shots {','.join(map(str, values))}: every K must be at least 1 "
            "(K = 0, the unadapted checkpoint, is always reported)"
        )
    return tuple(sorted(set(values)))


def fewshot_layers(model: SPKLIP) -> list[str]:
    """Qualified names of the modules that train in few-shot adaptation: the final two
    layers of STAR-Net (or of FSVE), as described in the module docstring."""
    return model.visual.fewshot_layers()


def freeze_for_fewshot(model: SPKLIP, layers: Sequence[str] | None = None) -> list[str]:
    """Set ``requires_grad`` on the parameters of ``layers`` (default
    :func:`fewshot_layers`) and clear it everywhere else. Returns the trainable parameter
    names. Unknown module names are a SpklipError."""
    layers = list(fewshot_layers(model) if layers is None else layers)
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise SpklipError(
            f"few-shot layer {unknown[0]!r} is not a module of this model; "
            "see spklip.training.fewshot.fewshot_layers"
        )
    keep = {f"{name}.{p}" for name in layers for p, _ in modules[name].named_parameters()}
    for name, param in model.named_parameters():
        param.requires_grad_(name in keep)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise SpklipError(f"few-shot layers {layers} hold no parameters")
    return trainable


def select_shots(labels: Sequence[int] | np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` clips of every class present in ``labels``, sorted.

    Each class's clips are put in a seeded order (the seed and the class index, not ``k``)
    and the first ``k`` are taken, so a larger ``k`` extends the smaller set. A class with
    fewer than ``k`` clips is a SpklipError."""
    labels = np.asarray(labels, dtype=np.int64)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            raise SpklipError(
                f"class {int(c)} has only {len(members)} training clips, fewer than {k} shots"
            )
        order = np.random.default_rng([seed, int(c)]).permutation(members)
        picked.append(order[:k])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def _check_shots(dataset: SpikeClips, shots: Sequence[int]) -> None:
    """One clear line when the largest K exceeds the clips of some class."""
    counts = np.bincount(dataset.labels, minlength=len(dataset.classes))
    present = [c for c in range(len(dataset.classes)) if counts[c]]
    fewest = min(present, key=lambda c: counts[c])
    if max(shots) > counts[fewest]:
        raise SpklipError(
            f"{dataset.path}: class {dataset.classes[fewest]} has {counts[fewest]} training "
            f"clips, fewer than {max(shots)} shots; use --shots up to {counts[fewest]}"
        )


def finetune(
    model: SPKLIP,
    dataset: SpikeClips,
    indices: Sequence[int],
    *,
    epochs: int = FEWSHOT_DEFAULTS["epochs"],
    lr: float = FEWSHOT_DEFAULTS["lr"],
    batch_size: int = FEWSHOT_DEFAULTS["batch_size"],
    weight_decay: float = FEWSHOT_DEFAULTS["weight_decay"],
    grad_clip: float | None = 1.0,
    seed: int = 0,
    layers: Sequence[str] | None = None,
    adapt_batchnorm: bool = False,
    progress: bool = False,
    desc: str = "few-shot",
) -> list[float]:
    """Fine-tune ``model`` in place on the clips ``indices`` of ``dataset`` (a training
    :class:`SpikeClips`: random crops, class prompts), training only ``layers`` (default
    :func:`fewshot_layers`). AdamW with a cosine decay from ``lr``, label-aware symmetric
    InfoNCE as in ``spklip.training.loop``. Returns the mean loss of each epoch.

    The model stays in eval mode throughout (see the module docstring), so every BatchNorm
    keeps its running statistics. With ``adapt_batchnorm`` the BatchNorm layers run in
    training mode instead: they normalise with the statistics of each batch of new-domain
    clips and their running statistics move to the new domain (AdaBN-style; buffers, not
    parameters: the trained parameters are still only those of ``layers``). The model is
    in eval mode on return, and every parameter has ``requires_grad`` set again.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise SpklipError("few-shot epochs and batch size must be >= 1 and the lr > 0")
    indices = np.asarray(indices, dtype=np.int64)
    if not len(indices):
        raise SpklipError("no clips to fine-tune on")
    freeze_for_fewshot(model, layers)
    model.eval()
    if adapt_batchnorm:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train()
    device = model.device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(param_groups(model, weight_decay), lr=lr)
    steps_per_epoch = math.ceil(len(indices) / batch_size)
    total = steps_per_epoch * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, 0))
    context = model.config.text.context_length
    losses = []
    try:
        bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
        for epoch in bar:
            order = np.random.default_rng([seed, epoch, len(indices)]).permutation(indices)
            loss_sum = 0.0
            for start in range(0, len(order), batch_size):
                items = [dataset[(epoch, int(i))] for i in order[start : start + batch_size]]
                spikes = torch.stack([it["spikes"] for it in items]).to(device)
                labels = torch.tensor([it["label"] for it in items], device=device)
                with torch.no_grad():  # the text encoder is frozen: no graph for it
                    tokens = model.tokenizer.encode_batch([it["text"] for it in items], context)
                    text = model.encode_text(tokens.to(device))
                video = model.encode_video(spikes)
                loss = contrastive_loss(video, text, model.scale().detach(), labels)["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
                optimizer.step()
                scheduler.step()
                loss_sum += float(loss.detach()) * len(items)
            losses.append(loss_sum / len(order))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    finally:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(True)
    return losses


def _zero_shot(
    model: SPKLIP, test: SpikeClips, text: np.ndarray, batch_size: int
) -> dict[str, float]:
    video = encode_clips(model, test, batch_size=batch_size)
    return metrics.zero_shot_accuracy(video @ text.T, test.labels, ks=(1, 5))


def _count(params: Iterable[nn.Parameter]) -> int:
    return int(sum(p.numel() for p in params))


def fewshot(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    shots: Sequence[int] | str = (2, 4, 6, 8),
    out: str | os.PathLike | None = None,
    epochs: int = FEWSHOT_DEFAULTS["epochs"],
    lr: float = FEWSHOT_DEFAULTS["lr"],
    batch_size: int = FEWSHOT_DEFAULTS["batch_size"],
    weight_decay: float = FEWSHOT_DEFAULTS["weight_decay"],
    seed: int = 0,
    adapt_batchnorm: bool = False,
    train_split: str = "train",
    test_split: str = "test",
    threads: int | None = None,
    device: str | torch.device | None = None,
    templates: Sequence[str] = TEMPLATES,
    progress: bool = True,
) -> dict[str, Any]:
    """Few-shot adaptation curve of ``checkpoint`` on ``data`` (see the module docstring).

    ``shots``: the K values ("2,4,6,8" or ints); K = 0 is always added. ``out``: folder for
    ``fewshot.json`` and ``fewshot.png`` (nothing written when None). ``threads``: torch CPU
    threads (None: leave torch's setting). ``adapt_batchnorm``: let BatchNorm statistics follow
    the new domain during fine-tuning (see :func:`finetune`; off by default).

    Returns ``{"accuracy": {"0": top1, "2": ...}, "top5": {...}, "shots": [2, ...],
    "trainable_params", "total_params", "trainable_fraction", "trainable_layers": [...],
    "train_clips": {"2": n, ...}, "test_clips", "chance", "loss": {"2": [per epoch], ...},
    "seconds": {"0": s, "2": s, ...}, "total_seconds", "checkpoint", "data",
    "settings": {...}}`` (+ ``"files"`` when ``out`` is given); accuracies in [0, 1].
    """
    t_start = time.perf_counter()
    shot_list = parse_shots(shots)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise SpklipError("--epochs and --batch-size must be >= 1 and --lr > 0")
    if threads is not None:
        torch.set_num_threads(threads)
    dev = pick_device(device)
    model, ckpt = load_model(checkpoint, device=dev)
    train_set = checkpoint_dataset(
        model,
        ckpt,
        data,
        split=train_split,
        augment=True,
        captions="prompt",
        seed=seed,
        templates=templates,
    )
    test_set = checkpoint_dataset(
        model, ckpt, data, split=test_split, augment=False, templates=templates
    )
    check_compatible(model, train_set)
    if list(train_set.classes) != list(test_set.classes):  # one dataset: never, but be sure
        raise SpklipError(f"{data}: the {train_split} and {test_split} splits disagree on classes")
    _check_shots(train_set, shot_list)

    # The text encoder never trains: the class features are the same for every K.
    text = class_features(model, test_set.classes, templates)
    t0 = time.perf_counter()
    base = _zero_shot(model, test_set, text, batch_size)
    accuracy, top5 = {"0": base["top1"]}, {"0": base["top5"]}
    seconds = {"0": round(time.perf_counter() - t0, 2)}
    trainable_names = freeze_for_fewshot(model)
    trainable = _count(p for p in model.parameters() if p.requires_grad)
    total = _count(model.parameters())
    layers = fewshot_layers(model)
    if progress:
        tqdm.write(
            f"K=0: top-1 {accuracy['0']:.3f} (the checkpoint before adaptation); "
            f"training {trainable:,} of {total:,} parameters ({trainable / total:.1%})"
        )
    losses, train_clips = {}, {}
    for k in shot_list:
        t0 = time.perf_counter()
        if k != shot_list[0]:
            model, _ = load_model(checkpoint, device=dev)  # every K starts from the checkpoint
        picked = select_shots(train_set.labels, k, seed=seed)
        losses[str(k)] = [
            round(v, 5)
            for v in finetune(
                model,
                train_set,
                picked,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                weight_decay=weight_decay,
                seed=seed,
                adapt_batchnorm=adapt_batchnorm,
                progress=progress,
                desc=f"{k}-shot",
            )
        ]
        result = _zero_shot(model, test_set, text, batch_size)
        accuracy[str(k)], top5[str(k)] = result["top1"], result["top5"]
        train_clips[str(k)] = len(picked)
        seconds[str(k)] = round(time.perf_counter() - t0, 2)
        if progress:
            tqdm.write(
                f"K={k}: top-1 {result['top1']:.3f} after {epochs} epochs on {len(picked)} "
                f"clips, loss {losses[str(k)][0]:.3f} -> {losses[str(k)][-1]:.3f} "
                f"({seconds[str(k)]:.0f} s)"
            )

    report: dict[str, Any] = {
        "checkpoint": str(ckpt.path),
        "data": str(data),
        "shots": list(shot_list),
        "accuracy": accuracy,
        "top5": top5,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_fraction": round(trainable / total, 6),
        "trainable_layers": layers,
        "trainable_parameters": trainable_names,
        "train_clips": train_clips,
        "test_clips": len(test_set),
        "chance": round(1 / len(test_set.classes), 6),
        "loss": losses,
        "seconds": seconds,
        "settings": {
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "seed": seed,
            "adapt_batchnorm": adapt_batchnorm,
            "train_split": train_split,
            "test_split": test_split,
            "frames": train_set.frames,
            "data_bin": train_set.bin,
            "temporal_bin": model.config.temporal_bin,
            "threads": torch.get_num_threads(),
            "device": str(dev),
        },
    }
    report["total_seconds"] = round(time.perf_counter() - t_start, 2)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figure = figures.plot_fewshot(report, out / FIGURE)
        report["files"] = {"result": str(out / RESULT), "figure": str(figure)}
        write_atomic(out / RESULT, _dumps(report))
    return report


def _dumps(report: dict[str, Any]) -> str:
    import json

    return json.dumps(report, indent=2) + "\n"
