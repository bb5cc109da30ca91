""".dat speed: our memory-mapped reader and packer against the strongest simple baseline, the
NumPy one-liners (``np.unpackbits`` / ``np.packbits`` with ``bitorder="little"`` and the row
flip done on the packed rows), and against this machine's memory bandwidth.

    .venv/bin/python -m benchmarks.core_dat [--frames 2000] [--size 240x320] [--repeat 7]

Prints a Markdown table of frames per second and the ratios. Each measure is the median of
``repeat`` runs, taken in turns with its baseline, so that other processes on a shared
machine disturb them alike. The file is read right after it is written, so every reader gets
it from the page cache alike. The bandwidth bound is frames/s = (np.copyto bytes/s, read +
write, one thread) / (bytes a frame must move: packed bytes in + one byte per pixel out, or
the reverse for writing); the fraction of it is what a kernel limited only by memory traffic
would reach (1.0) against ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
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


COPY_BYTES = 64 * 2**20  # per array of the bandwidth probe: well above the last-level cache


def numpy_read(path: Path, height: int, width: int) -> np.ndarray:
    """The one-liner: read the file, flip the packed rows, unpack little-endian bits.

    Rows of a .dat frame are stored bottom-up; when ``width`` is a multiple of 8 a row is
    whole bytes, so flipping the packed rows (8x less data) before unpacking gives the
    frames top-down in one pass. bool (n, H, W)."""
    packed = np.fromfile(path, np.uint8).reshape(-1, height, width // 8)
    return np.unpackbits(packed[:, ::-1], axis=-1, bitorder="little").view(bool)


def numpy_write(path: Path, spikes: np.ndarray) -> None:
    """The one-liner: pack each row little-endian, rows bottom-up, write (``width`` % 8 == 0)."""
    np.packbits(spikes[:, ::-1], axis=-1, bitorder="little").tofile(path)


def _interleaved_median(funcs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median wall time of each function over ``repeat`` rounds, taking turns within a round
    so that a burst of load from other processes hits every candidate alike."""
    times: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def copy_bandwidth(repeat: int = 7) -> float:
    """Bytes per second np.copyto moves (read + write) between two large float32 arrays,
    median of ``repeat`` copies, in this thread."""
    src = np.ones(COPY_BYTES // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    seconds = _interleaved_median({"copy": lambda: np.copyto(dst, src)}, repeat)["copy"]
    return 2 * src.nbytes / seconds


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


def _write_dat_one_thread(path: Path, spikes: np.ndarray) -> None:
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        write_dat(path, spikes, overwrite=True)
    finally:
        numba.set_num_threads(threads)


def run(frames: int = 2000, height: int = 240, width: int = 320, repeat: int = 7) -> list[dict]:
    """Measure .dat read and write frames per second against the NumPy one-liners and as a
    share of the memory-bandwidth bound; one dict per row."""
    if width % 8:
        raise SystemExit(f"width {width}: the one-liner baselines need a multiple of 8")
    rng = np.random.default_rng(0)
    spikes = rng.random((frames, height, width), dtype=np.float32) < 0.2
    size = f"{height}x{width}, {frames} frames"
    threads = numba.get_num_threads()
    bandwidth = copy_bandwidth(repeat)
    with tempfile.TemporaryDirectory() as tmp:
        ours, theirs = Path(tmp) / "ours.dat", Path(tmp) / "theirs.dat"
        # Warm-up (load the kernels from Numba's cache) and a check that both sides agree.
        write_dat(ours, spikes)
        numpy_write(theirs, spikes)
        if ours.read_bytes() != theirs.read_bytes():
            raise AssertionError("write_dat and the NumPy one-liner disagree")
        if not np.array_equal(read_dat(ours), numpy_read(ours, height, width)):
            raise AssertionError("read_dat and the NumPy one-liner disagree")
        with DatFile(ours) as dat:
            reads = _interleaved_median(
                {
                    "numpy read": lambda: numpy_read(ours, height, width),
                    f"dat read (read_dat, {threads} threads, {size})": lambda: read_dat(ours),
                    f"dat read (DatFile[a:b], {WINDOW}-frame slices)": lambda: _windows(dat),
                    "dat read (read_dat, 1 thread)": lambda: _read_dat_one_thread(ours),
                },
                repeat,
            )
        writes = _interleaved_median(
            {
                "numpy write": lambda: numpy_write(theirs, spikes),
                f"dat write (write_dat, {threads} threads, {size})": lambda: write_dat(
                    ours, spikes, overwrite=True
                ),
                "dat write (write_dat, 1 thread)": lambda: _write_dat_one_thread(ours, spikes),
            },
            repeat,
        )
    # bytes one frame moves: the packed frame one way, one bool byte per pixel the other
    bound = bandwidth / (height * width + height * width / 8)
    rows: list[dict] = [
        {"name": "memory copy bandwidth (np.copyto, read+write, 1 thread, median)",
         "value": bandwidth / 1e9, "unit": "GB/s"},
    ]  # fmt: skip
    for times, base_name, label in (
        (reads, "numpy read", "np.fromfile + np.unpackbits one-liner"),
        (writes, "numpy write", "np.packbits + tofile one-liner"),
    ):
        base = frames / times.pop(base_name)
        rows.append({"name": f"{base_name} ({label})", "value": base, "unit": "frames/s",
                     "baseline": bound, "baseline_name": "bandwidth bound",
                     "ratio": base / bound})  # fmt: skip
        for name, seconds in times.items():
            value = frames / seconds
            rows.append(
                {
                    "name": name,
                    "value": value,
                    "unit": "frames/s",
                    "baseline": base,
                    "baseline_name": base_name + " one-liner",
                    "ratio": value / base,
                }
            )
            rows.append({"name": f"{name}, share of the memory-bandwidth bound", "value": value,
                         "unit": "frames/s", "baseline": bound,
                         "baseline_name": "bandwidth bound", "ratio": value / bound})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--size", default="240x320", help="HxW")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    height, width = parse_size(args.size)
    rows = run(frames=args.frames, height=height, width=width, repeat=args.repeat)
    for r in rows:  # the target, now against the one-liner
        if r["name"].startswith("dat read") and "share of" not in r["name"]:
            r["target"] = 10.0
    threads = numba.get_num_threads()
    load = os.getloadavg()[0]
    print(header(f"spikesim .dat I/O (benchmarks/core_dat.py, Numba {threads} threads)"))
    print(f"load average {load:.1f} at the start; median of {args.repeat} interleaved runs\n")
    print(table(rows))


if __name__ == "__main__":
    main()
