"""The optimiser side of training: AdamW parameter groups and the learning-rate schedule."""

from __future__ import annotations

import math
from typing import Any

import torch


def lr_factor(step: int, total: int, warmup: int, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak lr at ``step`` (0-based): linear warm-up over ``warmup``
    steps from 1/warmup, then a cosine from 1 down to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters: matrices and kernels decay by
    ``weight_decay``; biases, norms, embeddings, masks and the logit scale do not."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # Matrices and kernels decay; biases, norms, embeddings, masks and the scale do not.
        if p.ndim < 2 or "embed" in name or "logit_scale" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
