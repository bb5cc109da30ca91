"""Encoder speed against a tuned NumPy loop and against this machine's memory bandwidth.

    .venv/bin/python -m benchmarks.core_encode [--frames 300] [--size 240x320] [--repeats 7]

All measures run interleaved in one process, ``repeats`` rounds, and each reports its median
round, so load from other processes hits them alike. The encoder runs per core (Numba 1
thread) and on all cores; the NumPy loop is one thread either way. The NumPy baseline is
the tuned per-frame loop: every step writes into preallocated arrays (``out=``), the
threshold subtraction is masked with ``where=`` (no boolean-index temporaries), uint8 input
is scaled in place, and the spike frame is written straight into the output. The bandwidth
bound is frames/s = (np.copyto bytes/s, read + write, one thread) / (bytes one frame must
move: input read + output write), i.e. what a kernel limited only by memory traffic could
reach.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numba
import numpy as np

from spikesim.encode import Encoder

COPY_BYTES = 64 * 2**20  # per array: well above the last-level cache


def _numpy_loop(frames: np.ndarray, threshold: float, *, packed: bool = False) -> np.ndarray:
    """The baseline: a tuned vectorised NumPy step per frame, no temporaries (optionally +
    np.packbits of the rows, bottom-up, as a .dat stores them)."""
    t, h, w = frames.shape
    v = np.zeros((h, w), np.float32)
    th = np.float32(threshold)
    scaled = np.empty((h, w), np.float32) if frames.dtype == np.uint8 else None
    inv = np.float32(1 / 255)
    s = np.empty((h, w), np.bool_)
    out = np.empty((t, h, w // 8), np.uint8) if packed else np.empty((t, h, w), np.bool_)
    for i in range(t):
        if scaled is None:
            np.add(v, frames[i], out=v)
        else:
            np.multiply(frames[i], inv, out=scaled)
            np.add(v, scaled, out=v)
        fired = s if packed else out[i]
        np.greater_equal(v, th, out=fired)
        np.subtract(v, th, out=v, where=fired)
        if packed:
            out[i] = np.packbits(fired[::-1], axis=-1, bitorder="little")
    return out.reshape(t, -1) if packed else out


def _one_thread(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        before = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            return fn()
        finally:
            numba.set_num_threads(before)

    return run


def _time_all(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """Interleaved rounds; per measure the wall and CPU (all threads) seconds of each round."""
    times: dict[str, dict] = {name: {"wall": [], "cpu": []} for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            times[name]["wall"].append(time.perf_counter() - wall)
            times[name]["cpu"].append(time.process_time() - cpu)
    return times


def run(frames: int = 300, height: int = 240, width: int = 320, repeats: int = 7) -> list[dict]:
    """Measure and return rows {name, value, unit, baseline, baseline_name, ratio, target}."""
    rng = np.random.default_rng(0)
    # Texture under a left-to-right ramp: varied firing rates (the speed does not depend on them).
    f32 = rng.random((frames, height, width), dtype=np.float32)
    f32 *= np.linspace(0.2, 1.0, width, dtype=np.float32)
    u8 = (f32 * 255).astype(np.uint8)
    n = height * width
    src = np.ones(COPY_BYTES // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch the pages once

    encoder = Encoder(height, width)
    threads = numba.get_num_threads()
    fns = {
        "copy": lambda: np.copyto(dst, src),
        "numpy f32": lambda: _numpy_loop(f32, 5.0),
        "numpy u8": lambda: _numpy_loop(u8, 5.0),
        "numpy packed": lambda: _numpy_loop(f32, 5.0, packed=True),
        "encode f32": lambda: encoder.push(f32),
        "encode u8": lambda: encoder.push(u8),
        "encode packed": lambda: encoder.push_packed(f32),
        "encode f32 1t": _one_thread(lambda: encoder.push(f32)),
        "encode u8 1t": _one_thread(lambda: encoder.push(u8)),
        "encode packed 1t": _one_thread(lambda: encoder.push_packed(f32)),
    }
    for name, fn in fns.items():  # warm up: compile the kernels, fault the pages in
        if name.startswith("encode"):
            fn()
    times = _time_all(fns, repeats)
    wall = {name: statistics.median(t["wall"]) for name, t in times.items()}
    cpu = {name: statistics.median(t["cpu"]) for name, t in times.items()}
    fps = {name: frames / t for name, t in wall.items() if name != "copy"}
    bandwidth = 2 * src.nbytes / wall["copy"]
    per_frame = {"f32": n * 4 + n, "u8": n * 1 + n, "packed": n * 4 + n / 8}  # in + out bytes
    noise = max(statistics.median(t["wall"]) / min(t["wall"]) for t in times.values())

    size = f"{height}x{width}"
    rows = [
        {"name": "memory copy bandwidth (np.copyto, read+write, 1 thread, median)",
         "value": bandwidth / 1e9, "unit": "GB/s", "target": None},
    ]  # fmt: skip
    for kind, label, base in (
        ("f32", f"encode float32 {size}", "numpy f32"),
        ("u8", f"encode uint8 {size}", "numpy u8"),
        ("packed", f"encode float32 -> packed .dat {size}", "numpy packed"),
    ):
        bound = bandwidth / per_frame[kind]
        rows.append({"name": f"tuned NumPy loop ({base}), share of the memory-bandwidth bound",
                     "value": fps[base], "unit": "frames/s", "baseline": bound,
                     "baseline_name": "bandwidth bound", "ratio": fps[base] / bound})  # fmt: skip
        for key, cores in ((f"encode {kind} 1t", "1 thread"),
                           (f"encode {kind}", f"{threads} threads")):  # fmt: skip
            rows += [
                {"name": f"{label}, {cores}", "value": fps[key], "unit": "frames/s",
                 "baseline": fps[base], "baseline_name": "tuned NumPy loop",
                 "ratio": fps[key] / fps[base], "target": 8.0},
                {"name": f"{label}, {cores}, CPU seconds (all threads)",
                 "value": frames / cpu[key], "unit": "frames/CPU-s",
                 "baseline": frames / cpu[base], "baseline_name": "tuned NumPy loop",
                 "ratio": cpu[base] / cpu[key], "target": None},
                {"name": f"{label}, {cores}, share of the memory-bandwidth bound",
                 "value": fps[key], "unit": "frames/s", "baseline": bound,
                 "baseline_name": "bandwidth bound", "ratio": fps[key] / bound,
                 "target": None},
            ]  # fmt: skip
    rows.append(
        {"name": "timing noise: worst median/best round over the measures", "value": noise,
         "unit": "x", "target": None}
    )  # fmt: skip
    return rows


def main() -> None:
    from benchmarks._report import header, table
    from spikesim.checks import parse_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="240x320", help="HxW")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    height, width = parse_size(args.size)
    rows = run(args.frames, height, width, repeats=args.repeats)
    print(header("spikesim encoder (benchmarks/core_encode.py)"))
    print(
        f"load average {os.getloadavg()[0]:.1f} at the start; median of {args.repeats} "
        "interleaved rounds\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
