"""TFI / TFP speed: the Numba kernels against good vectorised NumPy, side by side in one run.

    .venv/bin/python -m benchmarks.core_tfi [--frames 1000] [--size 240x320] [--repeat 3]

Prints a Markdown table of frames per second (output frames) and the ratios. Each measure is
the best of ``repeat`` runs, so that other processes on a shared machine disturb it less.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from benchmarks._report import header, table
from spikesim.checks import parse_size
from spikesim.reconstruct import iter_tfi, tfi, tfp

WINDOW = 20


def numpy_tfi(spikes: np.ndarray, window: int) -> np.ndarray:
    """TFI with whole-array NumPy: running max / min of spike times along t, then 255 // gap."""
    total = len(spikes)
    itype = np.int16 if total < np.iinfo(np.int16).max else np.int32
    t = np.arange(total, dtype=itype)[:, None, None]
    # last[t]: last spike at or before t (-1: none); nxt[t]: first spike at or after t (total: none)
    last = np.where(spikes, t, itype(-1))
    np.maximum.accumulate(last, axis=0, out=last)
    nxt = np.where(spikes, t, itype(total))[::-1]  # a reversed view: accumulate from the end
    np.minimum.accumulate(nxt, axis=0, out=nxt)
    nxt = nxt[::-1]
    keep = slice(window, total - window)
    prev = np.empty_like(last[keep])  # last spike strictly before t = last[t - 1]
    prev[0] = last[window - 1] if window else -1
    prev[1:] = last[window : total - window - 1]
    after = nxt[keep]
    valid = (prev >= 0) & (after < total)
    gap = after - prev
    out = np.zeros(gap.shape, itype)
    np.floor_divide(itype(255), gap, out=out, where=valid)
    return out.astype(np.uint8)


def numpy_tfp(spikes: np.ndarray, half_window: int) -> np.ndarray:
    """TFP with whole-array NumPy: a cumulative sum along t, differences, a lookup table."""
    n = 2 * half_window + 1
    csum = np.zeros((len(spikes) + 1, *spikes.shape[1:]), np.int16)
    np.cumsum(spikes, axis=0, dtype=np.int16, out=csum[1:])
    counts = csum[n:] - csum[:-n]
    lut = (255 * np.arange(n + 1) // n).astype(np.uint8)
    return lut[counts]


def synthetic_spikes(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Integrate-and-fire spikes (threshold 5) of a drifting texture: like encoder output,
    dark pixels spike rarely and bright ones about every 5 frames."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    potential = rng.uniform(0, 5, (height, width)).astype(np.float32)
    spikes = np.empty((frames, height, width), bool)
    for t in range(frames):
        light = 0.5 + 0.5 * np.sin(x / 9 + t / 40) * np.cos(y / 13 - t / 60)
        potential += light
        spikes[t] = potential >= 5
        potential[spikes[t]] -= 5
    return spikes


class _InMemory:
    """A DatFile stand-in, used when spikesim.dat is not available."""

    def __init__(self, spikes: np.ndarray) -> None:
        self._spikes = spikes
        self.height, self.width = spikes.shape[1:]

    def __len__(self) -> int:
        return len(self._spikes)

    def __getitem__(self, index: slice) -> np.ndarray:
        return self._spikes[index]


def _race(contenders: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each contender, their runs interleaved so that load from other
    processes falls on all of them alike."""
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeat):
        for name, func in contenders.items():
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _one_thread(func: Callable[[], object]) -> Callable[[], object]:
    def run_alone() -> object:
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return func()
        finally:
            numba.set_num_threads(threads)

    return run_alone


def run(frames: int = 1000, height: int = 240, width: int = 320, repeat: int = 3) -> list[dict]:
    """Measure TFI / TFP output frames per second against vectorised NumPy; one dict per row."""
    spikes = synthetic_spikes(frames, height, width)
    out_frames = frames - 2 * WINDOW
    # Warm-up (JIT compile or load from cache) and a check that both sides agree.
    if not np.array_equal(tfi(spikes, WINDOW), numpy_tfi(spikes, WINDOW)):
        raise AssertionError("numpy_tfi and tfi disagree")
    if not np.array_equal(tfp(spikes, WINDOW), numpy_tfp(spikes, WINDOW)):
        raise AssertionError("numpy_tfp and tfp disagree")

    with tempfile.TemporaryDirectory() as tmp:
        try:
            from spikesim.dat import DatFile, write_dat
        except ImportError:
            source: object = _InMemory(spikes)
            streamed = "tfi streamed (iter_tfi, in memory)"
        else:
            source = DatFile(write_dat(Path(tmp) / "bench.dat", spikes))
            streamed = "tfi streamed (iter_tfi over .dat, chunk 256)"
        size = f"{height}x{width}, {frames} frames, w={WINDOW}"
        seconds = _race(
            {
                "numpy tfi": lambda: numpy_tfi(spikes, WINDOW),
                f"tfi ({size})": lambda: tfi(spikes, WINDOW),
                "tfi, 1 thread": _one_thread(lambda: tfi(spikes, WINDOW)),
                streamed: lambda: sum(len(c) for c in iter_tfi(source, WINDOW, chunk=256)),
                "numpy tfp": lambda: numpy_tfp(spikes, WINDOW),
                f"tfp ({size})": lambda: tfp(spikes, WINDOW),
                "tfp, 1 thread": _one_thread(lambda: tfp(spikes, WINDOW)),
            },
            repeat,
        )
        if hasattr(source, "close"):
            source.close()

    rows = []
    for name, sec in seconds.items():
        if name.startswith("numpy"):
            continue
        base_name = "numpy " + name[:3]
        base = out_frames / seconds[base_name]
        value = out_frames / sec
        rows.append(
            {
                "name": name,
                "value": value,
                "unit": "frames/s",
                "baseline": base,
                "baseline_name": base_name + (" in memory" if "streamed" in name else ""),
                "ratio": value / base,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", default="240x320", help="HxW")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    height, width = parse_size(args.size)
    rows = run(frames=args.frames, height=height, width=width, repeat=args.repeat)
    for r in rows:
        if r["name"].startswith("tfi"):
            r["target"] = 5.0
    print(header("spikesim TFI / TFP (benchmarks/core_tfi.py)"))
    print(table(rows))


if __name__ == "__main__":
    main()
