"""Firing statistics of a converted spike dataset, for comparing two domains (paper Fig. A1).

``dataset_statistics(path)`` reads clips of a converted folder or packed ``.h5`` one at a
time (memory stays at one clip) and measures, over the first ``frames`` spike frames of
each clip:

- **per-pixel spike counts**: for every (clip, pixel), how many of the ``frames`` frames
  fired; their histogram (``count_histogram[c]`` = number of (clip, pixel) pairs with c
  spikes). A spike camera fires at a rate set by the light a pixel receives, so this is
  the distribution of brightness the encoder saw, plus its noise;
- **temporal activity**: spikes per frame (summed over the pixels) at each frame index,
  mean and standard deviation over clips: flicker, motion bursts and noise show here;
- **spatial activity**: the firing rate of each pixel (spikes per frame), averaged over
  clips: where in the frame the activity is (centred objects, textured backgrounds).

``compare_statistics(a, b)`` adds numbers for the gap between two datasets. Plain NumPy:
spikesim never imports torch; the figure is drawn by ``spklip.evaluation.domain_gap``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .converted import open_dataset
from .errors import DatasetError
from .splits import VAL, carve_val

__all__ = ["SpikeStatistics", "compare_statistics", "dataset_statistics", "pick_spread"]


@dataclass
class SpikeStatistics:
    """What :func:`dataset_statistics` measured on one dataset.

    Arrays: ``count_histogram`` int64 (frames + 1,): (clip, pixel) pairs per spike count;
    ``temporal_mean`` / ``temporal_std`` float64 (frames,): spikes per frame (all pixels) at
    each frame index, over clips; ``spatial_rate`` float64 (H, W): spikes per pixel per frame,
    averaged over clips and frames; ``clip_rates`` float64 (clips,): mean firing rate of each
    clip; ``clip_temporal_cv`` float64 (clips,): std / mean of each clip's spikes per frame.
    """

    path: str
    split: str | None
    clip_paths: list[str]
    frames: int
    height: int
    width: int
    count_histogram: np.ndarray
    temporal_mean: np.ndarray
    temporal_std: np.ndarray
    spatial_rate: np.ndarray
    clip_rates: np.ndarray
    clip_temporal_cv: np.ndarray

    @property
    def clips(self) -> int:
        return len(self.clip_paths)

    def summary(self) -> dict[str, Any]:
        """Scalars, JSON-able: firing rates in spikes per pixel per frame, counts in spikes
        per pixel over ``frames`` frames."""
        hist = self.count_histogram
        total = int(hist.sum())
        cdf = np.cumsum(hist) / max(total, 1)
        values = np.arange(hist.size)
        mean_rate = float(self.spatial_rate.mean())
        return {
            "path": self.path,
            "split": self.split,
            "clips": self.clips,
            "frames_per_clip": self.frames,
            "height": self.height,
            "width": self.width,
            "mean_firing_rate": mean_rate,
            "clip_rate_std": float(self.clip_rates.std()),
            "clip_rate_min": float(self.clip_rates.min()),
            "clip_rate_max": float(self.clip_rates.max()),
            "spikes_per_frame_mean": float(self.temporal_mean.mean()),
            "per_pixel_count_mean": float((hist * values).sum() / max(total, 1)),
            "per_pixel_count_median": int(np.searchsorted(cdf, 0.5)),
            "per_pixel_count_p99": int(np.searchsorted(cdf, 0.99)),
            "silent_pixel_fraction": float(hist[0] / max(total, 1)),
            "saturated_pixel_fraction": float(hist[-1] / max(total, 1)),
            # how bursty a clip is in time (0: the same number of spikes in every frame)
            "temporal_cv": float(self.clip_temporal_cv.mean()),
            # how uneven the activity is across the frame (0: every pixel fires alike)
            "spatial_cv": float(self.spatial_rate.std() / mean_rate) if mean_rate else 0.0,
        }


def pick_spread(n: int, k: int | None) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (all when ``k`` is None or >= n).
    Clips are sorted by path, i.e. by class, so a spread pick covers the classes."""
    if k is None or k >= n:
        return list(range(n))
    if k < 1:
        raise DatasetError(f"asked for {k} clips; give at least 1")
    return sorted({round(float(x)) for x in np.linspace(0, n - 1, k)})


def dataset_statistics(
    path: str | os.PathLike,
    *,
    split: str | None = None,
    max_clips: int | None = None,
    frames: int | None = None,
) -> SpikeStatistics:
    """Measure the clips of ``split`` (None: every clip) of a converted dataset; ``"val"``
    without a val split of its own is the default carving from train (``spikesim.carve_val``).

    ``max_clips``: use at most this many, spread evenly over the (class-sorted) clips.
    ``frames``: frames read from the start of each clip (None: the shortest clip's length;
    clips shorter than ``frames`` are a DatasetError, so that all clips count alike).
    """
    ds = open_dataset(path)
    try:
        chosen = ds.indices(split)
        if split == VAL and not any(c.split == VAL for c in ds.clips):
            side = carve_val(ds.clips)
            chosen = [i for i, c in enumerate(ds.clips) if side.get(c.path) == VAL]
        if not chosen:
            present = ", ".join(sorted({c.split for c in ds.clips})) or "none"
            raise DatasetError(f"{path}: no clips in split {split!r} (splits present: {present})")
        chosen = [chosen[i] for i in pick_spread(len(chosen), max_clips)]
        shortest = min(ds.clips[i].frames for i in chosen)
        window = shortest if frames is None else int(frames)
        if window < 1:
            raise DatasetError(f"{path}: frames = {window}; need at least 1 frame per clip")
        if window > shortest:
            raise DatasetError(
                f"{path}: the shortest chosen clip has {shortest} frames, fewer than the "
                f"{window} asked; lower frames"
            )
        h, w = ds.height, ds.width
        hist = np.zeros(window + 1, np.int64)
        per_frame = np.zeros((len(chosen), window), np.float64)
        spatial = np.zeros((h, w), np.float64)
        for row, i in enumerate(chosen):
            spikes = ds.read(i, 0, window)  # bool (window, H, W)
            counts = spikes.sum(axis=0, dtype=np.int64)
            hist += np.bincount(counts.ravel(), minlength=window + 1)
            per_frame[row] = spikes.reshape(window, -1).sum(axis=1)
            spatial += counts
        paths = [ds.clips[i].path for i in chosen]
    finally:
        close = getattr(ds, "close", None)
        if close is not None:
            close()
    n = len(chosen)
    pixels = h * w
    means = per_frame.mean(axis=1)
    cv = np.divide(per_frame.std(axis=1), means, out=np.zeros(n), where=means > 0)
    return SpikeStatistics(
        path=str(path),
        split=split,
        clip_paths=paths,
        frames=window,
        height=h,
        width=w,
        count_histogram=hist,
        temporal_mean=per_frame.mean(axis=0),
        temporal_std=per_frame.std(axis=0),
        spatial_rate=spatial / (n * window),
        clip_rates=means / pixels,
        clip_temporal_cv=cv,
    )


def _js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms, in bits (0: same, 1: disjoint)."""
    p = p / max(p.sum(), 1)
    q = q / max(q.sum(), 1)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return (kl(p) + kl(q)) / 2


def compare_statistics(a: SpikeStatistics, b: SpikeStatistics) -> dict[str, Any]:
    """Numbers for the gap between two datasets (B relative to A).

    ``firing_rate_ratio`` (B / A), ``count_histogram_js_bits`` (Jensen-Shannon divergence
    of the per-pixel count distributions, over the common frame window when the windows
    differ it compares rates binned alike), ``spatial_correlation`` (Pearson correlation of
    the two activity maps, when they have the same size, else None),
    ``temporal_cv_ratio`` (B / A).
    """
    ha, hb = a.count_histogram, b.count_histogram
    if ha.size != hb.size:  # different windows: compare rates on the coarser grid
        bins = min(ha.size, hb.size)
        ha = np.histogram(np.arange(ha.size) / (ha.size - 1), bins=bins, range=(0, 1), weights=ha)[
            0
        ]
        hb = np.histogram(np.arange(hb.size) / (hb.size - 1), bins=bins, range=(0, 1), weights=hb)[
            0
        ]
    corr = None
    if a.spatial_rate.shape == b.spatial_rate.shape:
        x, y = a.spatial_rate.ravel(), b.spatial_rate.ravel()
        if x.std() > 0 and y.std() > 0:
            corr = float(np.corrcoef(x, y)[0, 1])
    sa, sb = a.summary(), b.summary()
    return {
        "firing_rate_ratio": (
            sb["mean_firing_rate"] / sa["mean_firing_rate"] if sa["mean_firing_rate"] else None
        ),
        "count_histogram_js_bits": _js_divergence(ha.astype(float), hb.astype(float)),
        "spatial_correlation": corr,
        "temporal_cv_ratio": sb["temporal_cv"] / sa["temporal_cv"] if sa["temporal_cv"] else None,
    }
