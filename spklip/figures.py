"""Figures of training and evaluation: training curves and confusion matrices (PNG).

Matplotlib runs on the Agg backend (no display needed); every figure is written to a
temporary name and renamed when complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def plot_confusion(
    matrix: np.ndarray,
    classes: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str = "Zero-shot confusion matrix",
) -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), counts
    written in the cells. ``matrix`` int (C, C) as from ``metrics.confusion_matrix``."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    n = len(classes)
    side = max(4.0, 0.45 * n + 2.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels=list(classes), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels=list(classes), fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:  # counts stay legible up to about 30 classes
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    colour = "white" if frac[i, j] > 0.5 else "black"
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    return _save(fig, path)


def plot_training_curves(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Loss, learning rate and (when logged) validation zero-shot Top-1 per epoch, from
    the rows of ``results.jsonl``."""
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    axes[0].plot(epochs, [r["loss"] for r in rows], marker="o", ms=3)
    axes[0].set_title("training loss")
    axes[1].plot(epochs, [r["lr"] for r in rows], marker="o", ms=3, color="tab:orange")
    axes[1].set_title("learning rate (end of epoch)")
    axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    val = [(r["epoch"], r["val_top1"]) for r in rows if r.get("val_top1") is not None]
    if val:
        axes[2].plot(*zip(*val, strict=True), marker="o", ms=3, color="tab:green")
        axes[2].set_ylim(0.0, 1.0)
    else:
        axes[2].text(0.5, 0.5, "no validation split", ha="center", va="center")
    axes[2].set_title("validation zero-shot Top-1")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)
