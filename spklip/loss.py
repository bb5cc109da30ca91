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
    "LOSSES",
    "REDUCTIONS",
    "ContrastiveLoss",
    "contrastive_loss",
    "contrastive_targets",
    "loss_options",
]

REDUCTIONS = ("mean", "sum")  # how the two directions are combined
# Named losses: the keyword arguments of contrastive_loss they stand for.
LOSSES: dict[str, dict[str, object]] = {
    "eq6": {"label_aware": False, "reduction": "sum"},  # the paper's Eq. 6
    "label-aware": {"label_aware": True, "reduction": "mean"},  # ours (docs/model.md)
}


def loss_options(name: str) -> dict[str, object]:
    """``label_aware`` and ``reduction`` of the named loss (:data:`LOSSES`)."""
    if name not in LOSSES:
        raise SpklipError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return dict(LOSSES[name])


def contrastive_targets(
    labels: torch.Tensor | None,
    batch: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Target distribution (B, B): row i is uniform over the j with labels[j] == labels[i].

    Without labels it is the identity (CLIP's targets). The matrix is symmetric, so it serves
    both directions.
    """
    if labels is None:
        return torch.eye(batch, dtype=dtype, device=device)
    labels = labels.to(device)
    same = (labels.view(-1, 1) == labels.view(1, -1)).to(dtype)
    return same / same.sum(dim=1, keepdim=True)


def contrastive_loss(
    video_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor | float,
    labels: torch.Tensor | None = None,
    *,
    label_aware: bool = True,
    reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE. Features (B, D), L2-normalised; ``logit_scale`` the multiplier (not
    its log); ``labels`` (B,) int, used when ``label_aware``.

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
        targets = contrastive_targets(labels, batch, dtype=logits.dtype, device=logits.device)
    else:
        targets = torch.arange(batch, device=logits.device)  # class indices: the fast path
    loss_v2t = F.cross_entropy(logits, targets)
    loss_t2v = F.cross_entropy(logits.t(), targets.t() if targets.ndim == 2 else targets)
    return {
        "loss": loss_v2t + loss_t2v if reduction == "sum" else (loss_v2t + loss_t2v) / 2,
        "loss_v2t": loss_v2t,
        "loss_t2v": loss_t2v,
        "logit_scale": logit_scale.detach(),
    }


class ContrastiveLoss(nn.Module):
    """Module form of :func:`contrastive_loss`; ``label_aware`` and ``reduction`` are fixed
    at construction (``ContrastiveLoss(**loss_options("eq6"))`` is Eq. 6)."""

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
    ) -> dict[str, torch.Tensor]:
        return contrastive_loss(
            video_features,
            text_features,
            logit_scale,
            labels,
            label_aware=self.label_aware,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return f"label_aware={self.label_aware}, reduction={self.reduction!r}"
