"""HSFE temporal dynamics (the paper's Fig. 5).

- :func:`hsfe_dynamics`: how HSFE's features change along a clip. For each clip, the
  feature maps of its temporal points (HSFE's sub-blocks, or sub-windows of them, see
  below) are flattened, their mean over the points is removed (what stays is what changes
  in time, not the static scene), and the cosine similarity of every pair of points is
  drawn as a heatmap. A model that follows the motion shows a band along the diagonal
  (neighbouring points alike) and negative values far from it.

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

It also returns (and can write) its numbers as JSON.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from spikesim import write_json

from ..data import crop_start, load_checkpoint_clips
from ..errors import SpklipError
from ..model import SPKLIP
from . import figures

__all__ = [
    "hsfe_dynamics",
    "hsfe_point_features",
    "mean_removed_cosine",
]

MODES = ("auto", "blocks", "windows")


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
    result["figure"] = str(figures.plot_hsfe_dynamics(result, matrices, out_png))
    if out_json is not None:
        write_json(out_json, result)
    return result
