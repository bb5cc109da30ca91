"""Encoder speed against a plain NumPy loop and against this machine's memory bandwidth.

    .venv/bin/python -m benchmarks.core_encode [--frames 300] [--size 240x320] [--repeats 7]

All measures run interleaved in one process, `repeats` rounds, and each keeps its best round,
so load from other processes hits them alike. On a loaded machine the wall-clock ratio
understates a two-thread kernel against the one-thread NumPy loop, so the CPU-time ratio
(work per frame, all threads summed) is printed too. The NumPy baseline is the straightforward
per-frame vectorised loop (``v += frame; s = v >= th; v[s] -= th``). The bandwidth bound is
frames/s = (np.copyto bytes/s, read + write) / (bytes one frame must move: input read +
output write), i.e. what a kernel limited only by memory traffic could reach.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from spikesim.encode import Encoder

COPY_BYTES = 64 * 2**20  # per array: well above the last-level cache


def _numpy_loop(frames: np.ndarray, threshold: float, *, packed: bool = False) -> np.ndarray:
    """The baseline: one vectorised NumPy step per frame (optionally + np.packbits)."""
    t, h, w = frames.shape
    v = np.zeros((h, w), np.float32)
    th = np.float32(threshold)
    scale = np.float32(255) if frames.dtype == np.uint8 else None
    out = np.empty((t, h * w // 8), np.uint8) if packed else np.empty((t, h, w), np.bool_)
    for i in range(t):
        v += frames[i] if scale is None else frames[i] / scale
        s = v >= th
        v[s] -= th
        if packed:
            out[i] = np.packbits(s[::-1].reshape(-1), bitorder="little")
        else:
            out[i] = s
    return out


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
    fns = {
        "copy": lambda: np.copyto(dst, src),
        "numpy f32": lambda: _numpy_loop(f32, 5.0),
        "numpy u8": lambda: _numpy_loop(u8, 5.0),
        "numpy packed": lambda: _numpy_loop(f32, 5.0, packed=True),
        "encode f32": lambda: encoder.push(f32),
        "encode u8": lambda: encoder.push(u8),
        "encode packed": lambda: encoder.push_packed(f32),
    }
    for name, fn in fns.items():  # warm up: compile the kernels, fault the pages in
        if name.startswith("encode"):
            fn()
    times = _time_all(fns, repeats)
    wall = {name: min(t["wall"]) for name, t in times.items()}
    cpu = {name: min(t["cpu"]) for name, t in times.items()}
    fps = {name: frames / t for name, t in wall.items() if name != "copy"}
    bandwidth = 2 * src.nbytes / wall["copy"]
    bound = {  # bytes per frame: input read + output write
        "encode f32": bandwidth / (n * 4 + n),
        "encode u8": bandwidth / (n * 1 + n),
        "encode packed": bandwidth / (n * 4 + n / 8),
    }
    noise = max(statistics.median(t["wall"]) / min(t["wall"]) for t in times.values())

    size = f"{height}x{width}"
    rows = [
        {"name": "memory copy bandwidth (np.copyto, read+write)", "value": bandwidth / 1e9,
         "unit": "GB/s", "target": None},
    ]  # fmt: skip
    for key, label, base in (
        ("encode f32", f"encode float32 {size}", "numpy f32"),
        ("encode u8", f"encode uint8 {size}", "numpy u8"),
        ("encode packed", f"encode float32 -> packed .dat {size}", "numpy packed"),
    ):
        rows += [
            {"name": label, "value": fps[key], "unit": "frames/s", "baseline": fps[base],
             "baseline_name": "NumPy loop", "ratio": fps[key] / fps[base], "target": 8.0},
            {"name": f"{label}, CPU seconds (all threads)", "value": frames / cpu[key],
             "unit": "frames/CPU-s", "baseline": frames / cpu[base],
             "baseline_name": "NumPy loop", "ratio": cpu[base] / cpu[key], "target": None},
            {"name": f"{label}, share of the memory-bandwidth bound", "value": fps[key],
             "unit": "frames/s", "baseline": bound[key], "baseline_name": "bandwidth bound",
             "ratio": fps[key] / bound[key], "target": None},
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
    print(table(rows))


if __name__ == "__main__":
    main()
