"""The paper's analysis figures: HSFE temporal dynamics (Fig. 5) and the sim-to-real gap (Fig. A1).

- :func:`hsfe_dynamics`: how HSFE's features change along a clip. For each clip, the
  feature maps of its temporal points (HSFE's sub-blocks, or sub-windows of them, see
  below) are flattened, their mean over the points is removed (what stays is what changes
  in time, not the static scene), and the cosine similarity of every pair of points is
  drawn as a heatmap. A model that follows the motion shows a band along the diagonal
  (neighbouring points alike) and negative values far from it.
- :func:`domain_gap`: firing statistics of two converted datasets side by side
  (per-pixel spike-count histograms, spikes per frame over time, spatial activity maps),
  computed by :mod:`spikesim.stats`.

Temporal points of :func:`hsfe_dynamics` (``mode``):

- ``"blocks"``: the model's ``n_blocks`` sub-blocks, as in the paper (five blocks).
- ``"windows"``: every sub-block is cut into ``windows`` consecutive, equal sub-windows of
  its 2r+1 frames (centred; the (2r+1) mod ``windows`` frames left over at the two ends are
  not used); the features of sub-window j are HSFE's output for the block whose frames
  are sub-window j stretched over the whole block (each frame repeated, in order: a slow
  motion replay). Every MTF branch then sees the sub-window at the spike-count rate it was
  trained on, and the heatmap shows what the same extractor makes of successive moments of
  its window. This is how a model with one or two blocks (the demo's ANN has one block of
  29 count frames) still gets a time axis: with one point there is nothing to correlate,
  and with two the mean-removed features are opposite by construction (cosine -1).
  (Zeroing the frames outside the sub-window instead is not usable: the shorter MTF
  branches read only the centre of the block, so which branches see a sub-window, not what
  happens in it, then decides the correlations; we tried it.)
- ``"auto"`` (default): ``"blocks"`` when the model has at least 3 blocks, else
  ``"windows"``.

Both functions also return (and can write) their numbers as JSON.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spikesim.stats import SpikeStatistics, compare_statistics, dataset_statistics, pick_spread

from .checkpoint import Checkpoint, load_model
from .data import SpikeClips, crop_start
from .errors import SpklipError
from .evaluate import check_compatible, checkpoint_dataset, pick_device, write_json
from .model import SPKLIP

__all__ = [
    "CheckpointClips",
    "domain_gap",
    "hsfe_dynamics",
    "hsfe_point_features",
    "load_checkpoint_clips",
    "mean_removed_cosine",
]

MODES = ("auto", "blocks", "windows")


@dataclass
class CheckpointClips:
    """A checkpoint's model with clips of a dataset read the way it was trained.

    ``spikes``: uint8 (N, frames, H, W), the centred window of each chosen clip, binned
    by ``dataset.bin`` (0/1 spikes when 1, counts otherwise); ``indices``: the clips'
    positions in ``dataset``.
    """

    model: SPKLIP
    checkpoint: Checkpoint
    dataset: SpikeClips
    indices: list[int]
    spikes: torch.Tensor

    def describe(self) -> dict[str, Any]:
        """Which model and clips, JSON-able."""
        cfg = self.checkpoint.config
        return {
            "checkpoint": str(self.checkpoint.path),
            "model_name": cfg.get("model_name"),
            "visual": self.model.config.visual,
            "epoch": self.checkpoint.epoch,
            "data": str(self.dataset.path),
            "data_bin": self.dataset.bin,
            "temporal_bin": getattr(self.model.config, "temporal_bin", 1),
            "input_shape": list(self.spikes.shape[1:]),
            "clip_paths": [self.dataset.records[i].path for i in self.indices],
        }


def load_checkpoint_clips(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str | None = "test",
    clips: int = 8,
    device: str | torch.device | None = "cpu",
) -> CheckpointClips:
    """Load ``checkpoint`` and read ``clips`` clips of ``split`` of ``data`` (spread evenly
    over the class-sorted clips, centred windows) exactly as the model was trained on them:
    the model's input frames (raw spike frames; the model bins them by its own
    ``temporal_bin``) and the training run's data-side bin (``spklip.evaluate.data_bin``)."""
    if clips < 1:
        raise SpklipError(f"clips = {clips}; need at least 1 clip")
    model, ckpt = load_model(checkpoint, device=pick_device(device))
    dataset = checkpoint_dataset(model, ckpt, data, split=split, train=False, captions="prompt")
    check_compatible(model, dataset)
    indices = pick_spread(len(dataset), clips)
    spikes = torch.stack([torch.from_numpy(dataset.read_clip(i)) for i in indices])
    return CheckpointClips(model, ckpt, dataset, indices, spikes)


def mean_removed_cosine(features: np.ndarray) -> np.ndarray:
    """(P, D) features of P temporal points -> (P, P) cosine similarities after removing
    the mean over the points (a point whose features equal the mean gets 0 everywhere)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise SpklipError(f"need features (points >= 2, dims); got shape {f.shape}")
    f = f - f.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    f = np.divide(f, norms, out=np.zeros_like(f), where=norms > 1e-12 * max(norms.max(), 1e-300))
    return np.clip(f @ f.T, -1.0, 1.0)


def _hsfe_input(model: SPKLIP, spikes: torch.Tensor) -> torch.Tensor:
    """What HSFE receives for ``spikes`` (after any binning the model does itself)."""
    if model.config.visual != "ann":
        raise SpklipError(
            f"HSFE dynamics need an HSFE (ANN) model; this checkpoint's encoder is "
            f"{model.config.visual!r}"
        )
    hsfe = model.visual.hsfe
    seen: dict[str, torch.Tensor] = {}

    def grab(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        seen["x"] = args[0]
        raise _Captured

    handle = hsfe.register_forward_pre_hook(grab)
    try:
        with torch.no_grad():
            model.visual(spikes.to(model.device))
    except _Captured:
        pass
    finally:
        handle.remove()
    x = seen["x"]
    if x.shape[1] != hsfe.frames:
        raise SpklipError(
            f"HSFE received {x.shape[1]} frames but is built for {hsfe.frames}; "
            "this model layout is not supported by the dynamics analysis"
        )
    return x


class _Captured(Exception):
    """Stops the encoder once HSFE's input is seen (STAR-Net is not needed)."""


def hsfe_point_features(
    model: SPKLIP, spikes: torch.Tensor, *, mode: str = "auto", windows: int = 5
) -> tuple[np.ndarray, list[dict[str, int]], str]:
    """HSFE features of each temporal point of each clip.

    ``spikes``: (B, frames, H, W) as the model takes them. Returns float32 features
    (B, P, features*H*W), the points (``block``, ``window``, ``start``, ``stop``: HSFE input
    frames [start, stop) the point reads) in time order, and the mode used (see the module
    doc for ``mode`` and ``windows``).
    """
    if mode not in MODES:
        raise SpklipError(f"mode = {mode!r}; choose one of {', '.join(MODES)}")
    x = _hsfe_input(model, spikes)
    hsfe = model.visual.hsfe
    cfg = hsfe.config
    length = cfg.block_length
    if mode == "auto":
        mode = "blocks" if cfg.n_blocks >= 3 else "windows"
    if mode == "blocks" and cfg.n_blocks < 2:
        raise SpklipError(
            "the model has one HSFE block: nothing to correlate between blocks; use "
            "mode 'windows' (sub-windows of the block) or 'auto'"
        )
    if mode == "windows" and not 2 <= windows <= length:
        raise SpklipError(f"windows = {windows}; need 2 to {length} (the block's 2r+1 frames)")
    starts = hsfe.block_starts
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if mode == "blocks":
                feats = hsfe(x).flatten(2)  # (B, n_blocks, C*H*W)
                points = [
                    {"block": k, "window": 0, "start": s, "stop": s + length}
                    for k, s in enumerate(starts)
                ]
            else:
                # equal sub-windows (one frame more or less would change how often each
                # frame is repeated, which shows in the features), centred in the block
                size = length // windows
                lead = (length - size * windows) // 2
                cuts = [lead + j * size for j in range(windows + 1)]
                columns, points = [], []
                for k, s in enumerate(starts):
                    for j in range(windows):
                        a, b = s + cuts[j], s + cuts[j + 1]
                        # sub-window [a, b) stretched over the block (slow motion)
                        idx = a + (torch.arange(length) * (b - a)) // length
                        stretched = x.clone()
                        stretched[:, s : s + length] = x[:, idx.to(x.device)]
                        out = hsfe(stretched)
                        columns.append(out[:, k].flatten(1))
                        points.append({"block": k, "window": j, "start": a, "stop": b})
                order = sorted(range(len(points)), key=lambda i: (points[i]["start"], i))
                feats = torch.stack([columns[i] for i in order], dim=1)
                points = [points[i] for i in order]
    finally:
        model.train(was_training)
    return feats.float().cpu().numpy(), points, mode


def _lag_means(matrices: np.ndarray) -> dict[str, float]:
    """Mean of the off-diagonal k of (N, P, P) matrices, per lag k = 1 .. P-1."""
    p = matrices.shape[-1]
    return {
        str(k): float(np.mean([np.diagonal(m, offset=k).mean() for m in matrices]))
        for k in range(1, p)
    }


def hsfe_dynamics(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    split: str | None = "test",
    clips: int = 4,
    mode: str = "auto",
    windows: int = 5,
    out_json: str | os.PathLike | None = None,
    device: str | torch.device | None = "cpu",
) -> dict[str, Any]:
    """HSFE temporal-dynamics heatmaps (paper Fig. 5) of a checkpoint on ``clips`` clips of
    ``split`` of ``data`` (spread over the classes), written to ``out_png``.

    Returns (and writes to ``out_json`` when given) ``{"mode", "points": [{"block",
    "window", "start", "stop", "spike_start", "spike_stop"}], "clips": [{"path", "class",
    "window_start", "correlation": [[...]]}], "mean_correlation": [[...]], "mean_by_lag":
    {"1": r, ...}, "figure", ...}``. ``start`` / ``stop`` are HSFE input frames,
    ``spike_start`` / ``spike_stop`` the raw spike frames of the model's input window (which
    begins at spike frame ``window_start`` of each clip). See the module doc for the modes.
    """
    loaded = load_checkpoint_clips(checkpoint, data, split=split, clips=clips, device=device)
    feats, points, used = hsfe_point_features(
        loaded.model, loaded.spikes, mode=mode, windows=windows
    )
    matrices = np.stack([mean_removed_cosine(f) for f in feats])
    ds = loaded.dataset
    per_input = ds.raw_frames // loaded.model.visual.hsfe.frames  # spike frames per HSFE frame
    for p in points:  # spike frames of the model's input window the point reads
        p["spike_start"] = p["start"] * per_input
        p["spike_stop"] = p["stop"] * per_input
    records = [ds.records[i] for i in loaded.indices]
    result: dict[str, Any] = {
        **loaded.describe(),
        "split": split,
        "mode": used,
        "windows": windows if used == "windows" else None,
        "n_blocks": loaded.model.config.hsfe.n_blocks,
        "input_spike_frames": ds.raw_frames,
        "points": points,
        "clips": [
            {
                "path": r.path,
                "class": r.cls,
                "window_start": crop_start(int(r.frames), ds.raw_frames, None),
                "correlation": m.round(4).tolist(),
            }
            for r, m in zip(records, matrices, strict=True)
        ],
        "mean_correlation": matrices.mean(axis=0).round(4).tolist(),
        "mean_by_lag": _lag_means(matrices),
        # after removing the mean of P points, unrelated points have cosine -1/(P-1) on average
        "unrelated_level": -1.0 / (len(points) - 1),
    }
    result["figure"] = str(_plot_dynamics(result, matrices, out_png))
    if out_json is not None:
        write_json(out_json, result)
    return result


def _point_labels(points: Sequence[dict[str, Any]], mode: str) -> list[str]:
    if mode == "blocks":
        return [f"B{p['block'] + 1}" for p in points]
    blocks = {p["block"] for p in points}
    if len(blocks) == 1:
        return [f"W{p['window'] + 1}" for p in points]
    return [f"B{p['block'] + 1}W{p['window'] + 1}" for p in points]


def _plot_dynamics(
    result: dict[str, Any], matrices: np.ndarray, out_png: str | os.PathLike
) -> Path:
    import matplotlib.pyplot as plt

    from .figures import _save

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
    return _save(fig, out_png)


def domain_gap(
    data_a: str | os.PathLike,
    data_b: str | os.PathLike,
    out_png: str | os.PathLike,
    *,
    names: tuple[str, str] = ("sim", "real"),
    split: str | None = None,
    max_clips: int | None = None,
    frames: int | None = None,
    out_json: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Sim-to-real statistics of two converted datasets (paper Fig. A1), drawn side by side
    in ``out_png``: per-pixel spike-count histograms, spikes per frame over time (mean and
    standard deviation over clips), spatial activity maps.

    ``split`` (None: every clip), ``max_clips`` (spread over the classes) and ``frames``
    (None: the shortest clip of both datasets, so both are measured over the same window)
    choose what is read. Returns (and writes to ``out_json`` when given) ``{"datasets":
    {name: summary}, "gap": {...}, "figure"}``; see :mod:`spikesim.stats` for the keys.
    """
    if len(names) != 2 or names[0] == names[1]:
        raise SpklipError(f"names = {list(names)}; give two different names")
    stats = {
        name: dataset_statistics(path, split=split, max_clips=max_clips, frames=frames)
        for name, path in zip(names, (data_a, data_b), strict=True)
    }
    window = min(s.frames for s in stats.values())
    if frames is None and any(s.frames != window for s in stats.values()):
        stats = {
            name: dataset_statistics(path, split=split, max_clips=max_clips, frames=window)
            for name, path in zip(names, (data_a, data_b), strict=True)
        }
    a, b = (stats[n] for n in names)
    result: dict[str, Any] = {
        "datasets": {n: s.summary() for n, s in stats.items()},
        "gap": {"of": f"{names[1]} relative to {names[0]}", **compare_statistics(a, b)},
    }
    result["figure"] = str(_plot_domain_gap(stats, out_png))
    if out_json is not None:
        write_json(out_json, result)
    return result


def _plot_domain_gap(stats: dict[str, SpikeStatistics], out_png: str | os.PathLike) -> Path:
    import matplotlib.pyplot as plt

    from .figures import _save

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
    return _save(fig, out_png)
