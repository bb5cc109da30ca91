"""The contrastive loss: symmetric InfoNCE between video and text embeddings.

logits = logit_scale * V @ T.T for L2-normalised V, T (B, D). Video i's target over the texts
is text i; with label-aware targets it is uniform over every text in the batch with the same
label, so two captions of one class are not pushed apart as negatives. Each direction's
cross-entropy is averaged over the batch; ``reduction`` combines the two directions.

Two named losses (:data:`LOSSES`, the ``loss`` of a model's training recipe):

- ``"eq6"``, the paper's Eq. 6: identity targets (the positive of video i is text i only) and
  the SUM of the video->text and text->video terms (spklip-paper's recipe);
- ``"label-aware"``, our departure (docs/model.md): label-aware targets and the MEAN of the
  two directions. On a toy set with few classes, a batch often holds two clips of one class
  whose captions Eq. 6 pushes apart as negatives.
With training texts ``"both"`` (a prompt and a caption per clip) the loop uses
:func:`prompt_caption_loss`: the named loss against the prompts plus ``caption_weight`` x an
identity-target loss against the captions.

- ``"caption-aware"``, for retrieval on captions (docs/training.md): label-aware for class
  prompts, identity for a clip's own caption. A class prompt is right for every clip of its
  class, but a caption describes one clip, so the other clips of its class in the batch are
  its hard negatives (``instance`` marks which texts are captions).

The sum is twice the mean when the targets agree: under Adam only gradient clipping and the
epsilon see the factor.

The temperature is the model's: ``SPKLIP.forward`` returns ``logit_scale`` already
exponentiated and clamped at 100 (ln 100 on the parameter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SpklipError

__all__ = [
    "CAPTION_TARGETS",
    "LOSSES",
    "REDUCTIONS",
    "ContrastiveLoss",
    "contrastive_loss",
    "contrastive_positives",
    "contrastive_targets",
    "loss_options",
    "prompt_caption_loss",
    "uses_caption_targets",
]

REDUCTIONS = ("mean", "sum")  # how the two directions are combined
# Named losses: the keyword arguments of contrastive_loss they stand for.
LOSSES: dict[str, dict[str, object]] = {
    "eq6": {"label_aware": False, "reduction": "sum"},  # the paper's Eq. 6
    "label-aware": {"label_aware": True, "reduction": "mean"},  # ours (docs/model.md)
    # label-aware for prompts, identity for captions (hard negatives within a class): the
    # training loop passes ``instance`` flags for the losses named here
    "caption-aware": {"label_aware": True, "reduction": "mean"},
}
CAPTION_TARGETS: frozenset[str] = frozenset({"caption-aware"})


def loss_options(name: str) -> dict[str, object]:
    """``label_aware`` and ``reduction`` of the named loss (:data:`LOSSES`); whether it also
    takes caption flags (``instance``) is :func:`uses_caption_targets`."""
    if name not in LOSSES:
        raise SpklipError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return dict(LOSSES[name])


def uses_caption_targets(name: str) -> bool:
    """Whether the named loss gives a clip's own caption that clip alone as positive (the
    training loop then passes ``instance``: which texts of the batch are captions)."""
    loss_options(name)  # a SpklipError naming the choices
    return name in CAPTION_TARGETS


def contrastive_targets(
    labels: torch.Tensor | None,
    batch: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    instance: torch.Tensor | None = None,
) -> torch.Tensor:
    """Target distribution (B, B): row i is uniform over the j with labels[j] == labels[i].

    Without labels it is the identity (CLIP's targets). The matrix is symmetric, so it serves
    both directions. ``instance`` (B,) bool marks texts that describe their own clip only (a
    caption): text j with ``instance[j]`` is a positive of video j alone. The matrix is then
    the positives (video i, text j) normalised over texts (rows: video->text targets); for
    text->video targets normalise :func:`contrastive_positives` over videos instead.
    """
    if labels is None:
        return torch.eye(batch, dtype=dtype, device=device)
    pos = contrastive_positives(labels, instance, dtype=dtype, device=device)
    return pos / pos.sum(dim=1, keepdim=True)


def contrastive_positives(
    labels: torch.Tensor,
    instance: torch.Tensor | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """(B videos, B texts) 1/0: text j is right for video i when they share a label and text
    j is not an ``instance`` text (a caption), or when j == i. The diagonal is always 1."""
    labels = labels.to(device)
    same = labels.view(-1, 1) == labels.view(1, -1)
    if instance is not None:
        if instance.shape != labels.shape:
            raise SpklipError(
                f"instance flags have shape {tuple(instance.shape)}, expected "
                f"{tuple(labels.shape)} (one per text)"
            )
        own = torch.eye(len(labels), dtype=torch.bool, device=same.device)
        same = (same & ~instance.to(same.device).bool().view(1, -1)) | own
    return same.to(dtype)


def contrastive_loss(
    video_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    labels: torch.Tensor | None = None,
    *,
    label_aware: bool = True,
    reduction: str = "mean",
    instance: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE. Features (B, D), L2-normalised; ``logit_scale`` the multiplier (not
    its log); ``labels`` (B,) int, used when ``label_aware``; ``instance`` (B,) bool, with
    label-aware targets: texts that are their own clip's caption, whose only positive is
    that clip (the other clips of its class are negatives; :func:`contrastive_positives`).

    Returns ``loss`` (``reduction`` "mean": the mean of the two directions; "sum": their sum,
    Eq. 6), ``loss_v2t``, ``loss_t2v`` (each a batch mean) and ``logit_scale`` (detached,
    for logging).
    """
    if reduction not in REDUCTIONS:
        raise SpklipError(f"reduction = {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
    if video_features.ndim != 2 or video_features.shape != text_features.shape:
        raise SpklipError(
            f"video features {tuple(video_features.shape)} and text features "
            f"{tuple(text_features.shape)} must both be (batch, dim) of the same shape"
        )
    batch = video_features.shape[0]
    if labels is not None and labels.shape != (batch,):
        raise SpklipError(f"labels have shape {tuple(labels.shape)}, expected ({batch},)")
    logit_scale = torch.as_tensor(
        logit_scale, dtype=video_features.dtype, device=video_features.device
    )
    logits = logit_scale * video_features @ text_features.t()  # (B videos, B texts)
    if label_aware and labels is not None:
        pos = contrastive_positives(labels, instance, dtype=logits.dtype, device=logits.device)
        targets_v2t = pos / pos.sum(dim=1, keepdim=True)  # (videos, texts)
        targets_t2v = (pos / pos.sum(dim=0, keepdim=True)).t()  # (texts, videos)
    else:
        targets_v2t = targets_t2v = torch.arange(batch, device=logits.device)  # the fast path
    loss_v2t = F.cross_entropy(logits, targets_v2t)
    loss_t2v = F.cross_entropy(logits.t(), targets_t2v)
    return {
        "loss": loss_v2t + loss_t2v if reduction == "sum" else (loss_v2t + loss_t2v) / 2,
        "loss_v2t": loss_v2t,
        "loss_t2v": loss_t2v,
        "logit_scale": logit_scale.detach(),
    }


def prompt_caption_loss(
    video_features: torch.Tensor,
    prompt_features: torch.Tensor,
    caption_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    labels: torch.Tensor,
    *,
    caption_weight: float = 1.0,
    label_aware: bool = True,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """The loss of a batch in which every clip has a class prompt AND its own caption
    (training texts ``"both"``): the contrastive loss against the prompts (label-aware when
    ``label_aware``: classification) plus ``caption_weight`` x the loss against the captions
    with identity targets (every other clip, of its class too, is a negative: retrieval).

    Returns ``loss``, ``loss_v2t`` / ``loss_t2v`` (the two directions, both terms weighted as
    in ``loss``), ``loss_prompt``, ``loss_caption`` and ``logit_scale``.
    """
    if not caption_weight >= 0:
        raise SpklipError(f"caption_weight must be >= 0, got {caption_weight}")
    prompt = contrastive_loss(
        video_features,
        prompt_features,
        logit_scale,
        labels,
        label_aware=label_aware,
        reduction=reduction,
    )
    caption = contrastive_loss(
        video_features, caption_features, logit_scale, None, label_aware=False, reduction=reduction
    )
    w = float(caption_weight)
    return {
        "loss": prompt["loss"] + w * caption["loss"],
        "loss_v2t": prompt["loss_v2t"] + w * caption["loss_v2t"],
        "loss_t2v": prompt["loss_t2v"] + w * caption["loss_t2v"],
        "loss_prompt": prompt["loss"],
        "loss_caption": caption["loss"],
        "logit_scale": prompt["logit_scale"],
    }


class ContrastiveLoss(nn.Module):
    """Module form of :func:`contrastive_loss`; ``label_aware`` and ``reduction`` are fixed
    at construction (``ContrastiveLoss(**loss_options("eq6"))`` is Eq. 6); caption flags
    (``instance``) are passed per batch."""

    def __init__(self, label_aware: bool = True, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise SpklipError(f"reduction = {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
        self.label_aware = label_aware
        self.reduction = reduction

    def forward(
        self,
        video_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        labels: torch.Tensor | None = None,
        instance: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        return contrastive_loss(
            video_features,
            text_features,
            logit_scale,
            labels,
            label_aware=self.label_aware,
            reduction=self.reduction,
            instance=instance,
        )

    def extra_repr(self) -> str:
        return f"label_aware={self.label_aware}, reduction={self.reduction!r}"
