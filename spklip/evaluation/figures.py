"""Every figure of training and evaluation, in one place (PNG): training curves, confusion
matrices, few-shot curves, HSFE dynamics heatmaps (paper Fig. 5), the sim-to-real gap (Fig. A1).

Matplotlib runs on the Agg backend (no display needed); every figure is written to a
temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from spikesim import SpikeStatistics, temp_name

from ..errors import SpklipError


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Write ``fig`` to ``path`` through a temporary name (the format from its suffix), close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path, path.suffix)
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
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def _point_labels(points: Sequence[dict[str, Any]], mode: str) -> list[str]:
    if mode == "blocks":
        return [f"B{p['block'] + 1}" for p in points]
    blocks = {p["block"] for p in points}
    if len(blocks) == 1:
        return [f"W{p['window'] + 1}" for p in points]
    return [f"B{p['block'] + 1}W{p['window'] + 1}" for p in points]


def plot_hsfe_dynamics(
    result: dict[str, Any], matrices: np.ndarray, out_png: str | os.PathLike
) -> Path:
    """The HSFE dynamics heatmaps of ``spklip.evaluation.dynamics.hsfe_dynamics``."""
    panels = [
        (f"{c['class']}\n{Path(c['path']).stem}", m)
        for c, m in zip(result["clips"], matrices, strict=True)
    ]
    if len(matrices) > 1:
        panels.append((f"mean of {len(matrices)} clips", matrices.mean(axis=0)))
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    p = matrices.shape[-1]
    side = max(2.6, 0.32 * p + 1.4)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(side * cols + 1.2, side * rows + 1.4),
        squeeze=False,
        layout="constrained",
    )
    labels = _point_labels(result["points"], result["mode"])
    spans = ", ".join(
        f"{lab} {q['spike_start']}-{q['spike_stop'] - 1}"
        for lab, q in zip(labels, result["points"], strict=True)
    )
    image = None
    for ax, (title, m) in zip(axes.flat, panels, strict=False):
        image = ax.imshow(m, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
        ax.set_xticks(range(p), labels=labels, rotation=90 if p > 6 else 0, fontsize=7)
        ax.set_yticks(range(p), labels=labels, fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("temporal point", fontsize=8)
        ax.set_ylabel("temporal point", fontsize=8)
        if p <= 8:
            for i in range(p):
                for j in range(p):
                    colour = "white" if abs(m[i, j]) > 0.6 else "black"
                    ax.text(
                        j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6, color=colour
                    )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    what = (
        "HSFE sub-blocks"
        if result["mode"] == "blocks"
        else f"{result['windows']} sub-windows per HSFE block (each stretched over the block)"
    )
    fig.suptitle(
        f"HSFE temporal dynamics: cosine similarity of mean-removed features of {what}\n"
        + textwrap.fill(
            f"{result['model_name']} epoch {result['epoch']}; spike frames of the "
            f"{result['input_spike_frames']}-frame input window: {spans}; points that share "
            f"nothing average {result['unrelated_level']:.2f}",
            width=120,
        ),
        fontsize=9,
    )
    fig.colorbar(image, ax=axes, shrink=0.6, label="cosine similarity")
    return save_figure(fig, out_png)


def plot_domain_gap(stats: dict[str, SpikeStatistics], out_png: str | os.PathLike) -> Path:
    """The sim-to-real figure of ``spklip.evaluation.domain_gap``."""
    names = list(stats)
    colours = ("tab:blue", "tab:orange")
    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.1), hspace=0.3, wspace=0.35)
    hist_ax = fig.add_subplot(grid[0, 0])
    time_ax = fig.add_subplot(grid[0, 1])
    for name, colour in zip(names, colours, strict=True):
        s = stats[name]
        share = s.count_histogram / max(s.count_histogram.sum(), 1)
        hist_ax.step(np.arange(share.size), share, where="mid", color=colour, label=name)
        t = np.arange(s.frames)
        time_ax.plot(t, s.temporal_mean, color=colour, lw=1.2, label=f"{name} (mean)")
        time_ax.fill_between(
            t,
            s.temporal_mean - s.temporal_std,
            s.temporal_mean + s.temporal_std,
            color=colour,
            alpha=0.2,
            label=f"{name} (±1 std over clips)",
        )
    used = max(int(np.flatnonzero(stats[n].count_histogram).max()) for n in names)
    hist_ax.set_xlim(-0.5, min(used * 1.1 + 2, stats[names[0]].frames + 0.5))
    hist_ax.set_yscale("log")
    hist_ax.set_xlabel(f"spikes per pixel in {stats[names[0]].frames} frames")
    hist_ax.set_ylabel("share of (clip, pixel) pairs")
    hist_ax.set_title("per-pixel spike-count histogram")
    hist_ax.legend()
    hist_ax.grid(alpha=0.3)
    time_ax.set_xlabel("spike frame")
    time_ax.set_ylabel("spikes per frame (all pixels)")
    time_ax.set_title("temporal activity")
    time_ax.set_ylim(bottom=0)
    time_ax.legend(fontsize=8, loc="lower right")
    time_ax.grid(alpha=0.3)
    # one colour scale for both maps, spanning their values (not from 0: a flat map stays
    # flat, a textured one shows its texture)
    low = min(float(np.percentile(stats[n].spatial_rate, 0.5)) for n in names)
    top = max(float(np.percentile(stats[n].spatial_rate, 99.5)) for n in names)
    for col, name in enumerate(names):
        s = stats[name]
        ax = fig.add_subplot(grid[1, col])
        image = ax.imshow(s.spatial_rate, cmap="magma", vmin=low, vmax=top)
        ax.set_title(
            f"{name}: spatial activity ({s.clips} clips, mean rate {s.spatial_rate.mean():.3f})"
        )
        ax.set_xlabel("x (pixel)")
        ax.set_ylabel("y (pixel)")
        fig.colorbar(image, ax=ax, fraction=0.035, pad=0.03, label="spikes / pixel / frame")
    fig.suptitle(
        f"Domain gap: {names[0]} ({stats[names[0]].path}) vs {names[1]} ({stats[names[1]].path})",
        fontsize=10,
    )
    return save_figure(fig, out_png)


def plot_fewshot(report: dict[str, Any], path: str | os.PathLike) -> Path:
    """Test Top-1 against shots per class, with the unadapted checkpoint (K = 0) as a
    dashed baseline; from the dict :func:`fewshot` returns."""
    acc = report["accuracy"]
    ks = [0, *report["shots"]]
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.plot(ks, [acc[str(k)] for k in ks], marker="o", label="after fine-tuning")
    ax.axhline(acc["0"], color="grey", linestyle="--", label=f"no adaptation ({acc['0']:.2f})")
    if "chance" in report:
        ax.axhline(report["chance"], color="grey", linestyle=":", label="chance")
    for k in ks[1:]:
        ax.annotate(
            f"{acc[str(k)]:.2f}", (k, acc[str(k)]), textcoords="offset points", xytext=(0, 6),
            ha="center", fontsize=8,
        )  # fmt: skip
    ax.set_xticks(ks)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("training clips per class (K)")
    ax.set_ylabel("zero-shot top-1 on the test split")
    fraction = report["trainable_fraction"]
    ax.set_title(f"Few-shot adaptation ({fraction:.1%} of parameters trained)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_noise_curve(results: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Test Top-1 against the SNR of the white noise added to the audio, one line per variant
    (mean over seeds, band ± sd), from :func:`run_av_experiment` run with ``audio_at_snr``.
    Written as PNG (or the format of ``path``'s suffix) under a temporary name, then renamed."""
    variants = {k: v for k, v in results["variants"].items() if v.get("noise")}
    if not variants:
        raise SpklipError("no noise curves in these results; run the experiment with audio_at_snr")
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for name, e in variants.items():
        snr = [p["snr_db"] for p in e["noise"]]
        mean = np.array([p["top1_mean"] for p in e["noise"]])
        sd = np.array([p["top1_sd"] for p in e["noise"]])
        (line,) = ax.plot(snr, mean, marker="o", ms=3, label=name)
        ax.fill_between(snr, mean - sd, mean + sd, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("SNR of the white noise on the audio, dB")
    ax.set_ylabel("test Top-1")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Noise robustness (mean ± sd over {len(results['seeds'])} seeds)")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_distill_summary(
    summary: dict, ablations: Sequence[str], shots: Sequence[int], path: str | os.PathLike
) -> Path:
    """The event-CLIP demo's figure (``spklip.evaluation.distill.summarize``). Two panels:
    unseen-class Top-1 of each ablation (bars, sd error bars) and the few-shot
    curves of f_I-on-events, the full-loss f_E and f_S. Written with ``save_figure``."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    means = [100 * summary[f"events/{n}/unseen_top1"]["mean"] for n in ablations]
    sds = [100 * summary[f"events/{n}/unseen_top1"]["sd"] for n in ablations]
    a.bar(range(len(ablations)), means, yerr=sds, capsize=4, color="#4c72b0")
    a.set_xticks(range(len(ablations)), [n.replace(" (", "\n(") for n in ablations], fontsize=7)
    a.set_ylabel("unseen-class Top-1 (%)")
    a.set_title("Loss ablation: events, held-out classes")
    curves = [
        ("f_I on events", f"events/{ablations[0]}/"),
        ("f_E full", f"events/{ablations[-1]}/"),
        ("f_S full (spikes)", "spikes/full/"),
    ]
    for label, p in curves:
        keys = [f"{p}few_shot_top1/{k}" for k in shots]
        if all(k in summary for k in keys):
            m = np.array([100 * summary[k]["mean"] for k in keys])
            s = np.array([100 * summary[k]["sd"] for k in keys])
            b.errorbar(shots, m, yerr=s, marker="o", capsize=3, label=label)
    b.set_xscale("log", base=2)
    b.set_xticks(list(shots), [str(k) for k in shots])
    b.set_xlabel("shots per class (K)")
    b.set_ylabel("Top-1 (%)")
    b.set_title("Few-shot, prototype classifier")
    b.legend()
    return save_figure(fig, path)


def plot_audio_spikes(
    spec: np.ndarray,
    spikes: np.ndarray,
    path: str | os.PathLike,
    *,
    hop_seconds: float,
    title: str = "",
) -> Path:
    """A sound's mel spectrogram (T, M) float dB over its audio spikes (T', M) 0/1 (the
    encoder's frames, ``T' / T`` per spectrogram frame), time in seconds (``hop_seconds`` per
    spectrogram frame), mel band upwards."""
    s, k = np.asarray(spec, dtype=np.float64), np.asarray(spikes)
    if s.ndim != 2 or k.ndim != 2 or s.shape[1] != k.shape[1] or not hop_seconds > 0:
        raise SpklipError(
            f"plot_audio_spikes: spec {s.shape} and spikes {k.shape} must be (T, M) with the "
            "same M, hop_seconds > 0"
        )
    seconds = s.shape[0] * hop_seconds
    fig, axes = plt.subplots(2, 1, figsize=(7.0, 5.0), sharex=True)
    im = axes[0].imshow(
        s.T, origin="lower", aspect="auto", extent=(0, seconds, 0, s.shape[1]), cmap="magma"
    )
    fig.colorbar(im, ax=axes[0], label="dB")
    axes[0].set_ylabel("mel band")
    axes[0].set_title(title or "mel spectrogram")
    t, m = np.nonzero(k)
    axes[1].scatter(t * seconds / k.shape[0], m + 0.5, s=2, marker="|", color="k")
    axes[1].set_ylim(0, k.shape[1])
    axes[1].set_ylabel("mel band")
    axes[1].set_xlabel("time, s")
    axes[1].set_title(f"audio spikes ({int(k.sum())} spikes, {k.mean():.3f} per band and frame)")
    fig.tight_layout()
    return save_figure(fig, path)
