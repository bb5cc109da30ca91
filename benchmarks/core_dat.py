""".dat speed: our memory-mapped reader and packer against per-frame loops in the style of the
ecosystem's readers and writers, side by side in one run.

    .venv/bin/python -m benchmarks.core_dat [--frames 2000] [--size 240x320] [--repeat 3]

Prints a Markdown table of frames per second and the ratios. Each measure is the best of
``repeat`` runs, taken in turns with its baseline, so that other processes on a shared
machine disturb it less. The file is
read right after it is written, so every reader gets it from the page cache alike.
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
from spikesim.dat import DatFile, read_dat, write_dat

WINDOW = 256  # frames per DatFile slice, as a streaming consumer (iter_tfi, a loader) reads


def per_frame_read(path: Path, height: int, width: int, flipud: bool = True) -> np.ndarray:
    """The usual loader: for each frame read its bytes, shift out the 8 bits, reshape, flip."""
    frame_bytes = height * width // 8
    frames = []
    with open(path, "rb") as fh:
        while True:
            buf = fh.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            data = np.frombuffer(buf, dtype=np.uint8)
            pixels = np.zeros(height * width, dtype=np.uint8)
            for bit in range(8):
                pixels[bit::8] = (data >> bit) & 1
            frame = pixels.reshape(height, width)
            if flipud:
                frame = np.flipud(frame)
            frames.append(frame)
    return np.array(frames, dtype=bool)


def per_frame_write(path: Path, spikes: np.ndarray, flipud: bool = True) -> None:
    """The usual writer: for each frame flip, flatten, weight each group of 8 by 2**k, sum."""
    weights = 2 ** np.arange(8)
    with open(path, "wb") as fh:
        for frame in spikes:
            if flipud:
                frame = np.flipud(frame)
            groups = frame.reshape(-1, 8).astype(np.int64)
            fh.write((groups * weights).sum(axis=1).astype(np.uint8).tobytes())


def _interleaved_best(funcs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each function over ``repeat`` rounds, taking turns within a round so
    that a burst of load from other processes hits every candidate alike."""
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _windows(dat: DatFile) -> int:
    n = 0
    for a in range(0, len(dat), WINDOW):
        n += len(dat[a : a + WINDOW])
    return n


def _read_dat_one_thread(path: Path) -> np.ndarray:
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return read_dat(path)
    finally:
        numba.set_num_threads(threads)


def run(frames: int = 2000, height: int = 240, width: int = 320, repeat: int = 5) -> list[dict]:
    """Measure .dat read and write frames per second against per-frame loops; one dict per row."""
    rng = np.random.default_rng(0)
    spikes = rng.random((frames, height, width), dtype=np.float32) < 0.2
    size = f"{height}x{width}, {frames} frames"
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.dat", Path(tmp) / "theirs.dat"
        # Warm-up (load the kernels from Numba's cache) and a check that both sides agree.
        write_dat(ours, spikes)
        per_frame_write(theirs, spikes)
        if ours.read_bytes() != theirs.read_bytes():
            raise AssertionError("write_dat and the per-frame writer disagree")
        if not np.array_equal(read_dat(ours), per_frame_read(ours, height, width)):
            raise AssertionError("read_dat and the per-frame loader disagree")
        with DatFile(ours) as dat:
            reads = _interleaved_best(
                {
                    "per-frame loader": lambda: per_frame_read(ours, height, width),
                    f"dat read (read_dat, {size})": lambda: read_dat(ours),
                    f"dat read (DatFile[a:b], {WINDOW}-frame slices)": lambda: _windows(dat),
                    "dat read (read_dat, 1 thread)": lambda: _read_dat_one_thread(ours),
                },
                repeat,
            )
        writes = _interleaved_best(
            {
                "per-frame writer": lambda: per_frame_write(theirs, spikes),
                f"dat write (write_dat, {size})": lambda: write_dat(ours, spikes),
            },
            repeat,
        )
    rows = []
    for times, base_name in ((reads, "per-frame loader"), (writes, "per-frame writer")):
        base = frames / times.pop(base_name)
        for name, seconds in times.items():
            value = frames / seconds
            rows.append(
                {
                    "name": name,
                    "value": value,
                    "unit": "frames/s",
                    "baseline": base,
                    "baseline_name": base_name,
                    "ratio": value / base,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", default="240x320", help="HxW")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    height, width = parse_size(args.size)
    rows = run(frames=args.frames, height=height, width=width, repeat=args.repeat)
    for r in rows:
        if r["name"].startswith("dat read"):
            r["target"] = 10.0
    threads = numba.get_num_threads()
    print(header(f"spikesim .dat I/O (benchmarks/core_dat.py, Numba {threads} threads)"))
    print(table(rows))


if __name__ == "__main__":
    main()
