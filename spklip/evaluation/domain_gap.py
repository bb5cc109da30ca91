"""The sim-to-real gap (paper Fig. A1): firing statistics of two converted datasets side by
side (per-pixel spike-count histograms, spikes per frame over time, spatial activity maps),
computed by ``spikesim.dataset_statistics``."""

from __future__ import annotations

import os
from typing import Any

from spikesim import compare_statistics, dataset_statistics, write_json

from ..errors import SpklipError
from . import figures


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
    result["figure"] = str(figures.plot_domain_gap(stats, out_png))
    if out_json is not None:
        write_json(out_json, result)
    return result
