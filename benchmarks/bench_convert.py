"""Dataset conversion: speed per worker for each interpolation method, scaling from 1 to 2
workers, peak memory against clip length, and the HDF5 pack with and without compression.

    .venv/bin/python -m benchmarks.bench_convert [--factor 10] [--size 240x320] [--quick]

Every measure runs in a fresh process (``--child ...``) limited to one thread, as a convert
worker is, so that compile caches, page cache and allocator state do not carry over. Peak
memory is the child's own peak RSS (``ru_maxrss``). Prints Markdown tables; on a shared
machine the ratios measured side by side are what to read, the absolute rates are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._report import header, table

HERE = Path(__file__).resolve().parent


CLIPS = HERE.parent.parent / "shared" / "data" / "clips"
METHODS = ("flow", "linear", "none")
TARGET_FPS_FLOW = 25.0  # source frames / s / worker with flow at x10, 240x320
TARGET_SCALING = 1.8  # 2 workers vs 1 ("close to 2x")
TARGET_MEMORY = 1.3  # memory growth of a 900-frame clip / a 150-frame clip, at most


# ---------------------------------------------------------------------------- children


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def write_test_clip(path: Path, frames: int, size=(240, 320), fps: float = 30.0) -> Path:
    """A synthetic MJPG clip: a textured square moving over a drifting gradient."""
    import cv2

    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = (np.random.default_rng(0).random((48, 48)) * 255).astype(np.uint8)
    for t in range(frames):
        img = (127 + 100 * np.sin(xx / 40.0 + t / 15.0) * np.cos(yy / 55.0)).astype(np.uint8)
        x = int((w - 48) * (0.5 + 0.45 * np.sin(t / 20.0)))
        y = int((h - 48) * (0.5 + 0.45 * np.cos(t / 27.0)))
        img[y : y + 48, x : x + 48] = texture
        writer.write(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def child_clips(args: argparse.Namespace) -> dict:
    """Convert the given videos one after another in this process, one thread."""
    from spikesim.checks import parse_size
    from spikesim.pipeline import ConvertSettings, convert_clip
    from spikesim.pool import limit_threads

    limit_threads()
    settings = ConvertSettings(size=parse_size(args.size), factor=args.factor, interp=args.interp)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # warm up: compile / load the kernels and the codecs outside the timing
        warm = write_test_clip(tmp / "warm.avi", 4, size=settings.size)
        convert_clip(warm, tmp / "warm.dat", settings, seed=0, source="warm.avi")
        base_mb = _peak_rss_mb()
        source = spike = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for i, video in enumerate(args.videos):
            result = convert_clip(video, tmp / f"{i}.dat", settings, seed=i, source=str(video))
            source += result.source_frames
            spike += result.frames
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "source_frames": source,
        "spike_frames": spike,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_rss_mb(),
        "base_mb": base_mb,
    }


def child_dataset(args: argparse.Namespace) -> dict:
    """Convert a whole dataset folder with ``--workers`` processes."""
    from spikesim.checks import parse_size
    from spikesim.convert import ConvertSettings, convert_dataset

    settings = ConvertSettings(size=parse_size(args.size), factor=args.factor, interp=args.interp)
    t0 = time.perf_counter()
    summary = convert_dataset(
        args.videos[0], args.out, settings, workers=args.workers, progress=False
    )
    return {
        "seconds": time.perf_counter() - t0,
        "source_frames": summary.source_frames,
        "converted": summary.converted,
        "cpu_seconds": summary.cpu_seconds,
    }


def child_read(args: argparse.Namespace) -> dict:
    """Read 256-frame windows of every clip of a folder or .h5, unpacked to bool."""
    from spikesim.converted import open_dataset

    ds = open_dataset(args.videos[0])
    rng = np.random.default_rng(0)
    frames = 0
    t0 = time.perf_counter()
    for _ in range(3):
        for i, clip in enumerate(ds.clips):
            n = min(256, clip.frames)
            start = int(rng.integers(0, clip.frames - n + 1))
            frames += ds.read(i, start, n).shape[0]
    return {"seconds": time.perf_counter() - t0, "frames": frames}


def run_child(mode: str, *extra: str) -> dict:
    # benchmarks is a package: the child runs from the repository root, as `make bench` does.
    cmd = [sys.executable, "-m", "benchmarks.bench_convert", "--child", mode, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=HERE.parent)
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- the runs


def bench_methods(videos: list[Path], args: argparse.Namespace) -> list[dict]:
    """Per worker: source frames per CPU-second of a one-thread process (what one worker does
    with a core to itself), and the wall-clock rate on this machine as it is loaded now."""
    rows = []
    for method in METHODS:
        r = run_child(
            "clips", "--interp", method, "--factor", str(args.factor), "--size", args.size,
            *map(str, videos),
        )  # fmt: skip
        cpu_rate = r["source_frames"] / r["cpu_seconds"]
        wall_rate = r["source_frames"] / r["seconds"]
        flow = method == "flow"
        rows.append(
            {
                "name": f"{method}: source frames / CPU-s per worker (x{args.factor}, "
                f"{args.size}; wall clock {wall_rate:.1f}/s; "
                f"{r['spike_frames'] / r['cpu_seconds']:,.0f} spike frames / CPU-s)",
                "value": cpu_rate,
                "unit": "frames/s",
                "baseline": TARGET_FPS_FLOW if flow else None,
                "baseline_name": "target",
                "ratio": cpu_rate / TARGET_FPS_FLOW if flow else None,
                "target": 1.0 if flow else None,
            }
        )
    return rows


def bench_scaling(videos: list[Path], tmp: Path, args: argparse.Namespace) -> list[dict]:
    src = tmp / "scaling-src"
    copies = 1 if args.quick else 2
    for k in range(copies):  # equal-length clips, several per worker, so both stay busy
        for v in videos:
            dst = src / v.parent.name / f"{v.stem}_copy{k}{v.suffix}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(v, dst)
    common = ["--interp", args.scaling_interp, "--factor", str(args.factor), "--size", args.size]
    best: dict[int, dict] = {}
    for _ in range(args.repeat):  # interleaved, best of each: load from others varies
        for workers in (1, 2):
            out = tmp / f"w{workers}"
            shutil.rmtree(out, ignore_errors=True)
            r = run_child(
                "dataset", *common, "--workers", str(workers), "--out", str(out), str(src)
            )
            if workers not in best or r["seconds"] < best[workers]["seconds"]:
                best[workers] = r
    one, two = best[1], best[2]
    same = all(
        (tmp / "w1" / p.relative_to(tmp / "w2")).read_bytes() == p.read_bytes()
        for p in (tmp / "w2").rglob("*.dat")
    )
    fps1 = one["source_frames"] / one["seconds"]
    fps2 = two["source_frames"] / two["seconds"]
    # CPU-s per source frame summed over the workers: equal for 1 and 2 workers means the
    # second worker adds no overhead, so with two free cores the speed-up is about 2x.
    eff = (one["cpu_seconds"] / one["source_frames"]) / (two["cpu_seconds"] / two["source_frames"])
    return [
        {
            "name": f"2 workers vs 1 ({one['converted']} clips, {args.scaling_interp}, "
            f"identical bytes: {'yes' if same else 'NO'})",
            "value": fps2,
            "unit": "source frames/s",
            "baseline": fps1,
            "baseline_name": "1 worker",
            "ratio": fps2 / fps1,
            "target": TARGET_SCALING,
        },
        {
            "name": "2 workers vs 1: CPU-s per source frame, summed over workers "
            "(ratio 1 / 2: 1.0 = no parallel overhead; x2 = the speed-up on 2 free cores)",
            "value": 1000 * two["cpu_seconds"] / two["source_frames"],
            "unit": "CPU-ms/frame",
            "baseline": 1000 * one["cpu_seconds"] / one["source_frames"],
            "baseline_name": "1 worker",
            "ratio": eff,
            "target": round(TARGET_SCALING / 2, 2),
        },
    ]


def bench_memory(tmp: Path, args: argparse.Namespace) -> list[dict]:
    short = write_test_clip(tmp / "short.avi", 150)
    long = write_test_clip(tmp / "long.avi", 900)
    common = ["--interp", args.memory_interp, "--factor", str(args.factor), "--size", args.size]
    a = run_child("clips", *common, str(short))
    b = run_child("clips", *common, str(long))
    # Growth over the warm process (kernels, codecs, interpreter loaded): what converting a
    # clip adds. Total RSS would hide a length-dependent growth under ~150 MB of baseline.
    grow_a, grow_b = a["peak_mb"] - a["base_mb"], b["peak_mb"] - b["base_mb"]
    return [
        {
            "name": f"peak RSS growth over the warm process, 900-frame clip vs 150-frame clip "
            f"(process baselines {b['base_mb']:.0f} / {a['base_mb']:.0f} MB, totals "
            f"{b['peak_mb']:.0f} / {a['peak_mb']:.0f} MB); ratio = short / long, so >= 1/1.3",
            "value": grow_b,
            "unit": "MB",
            "baseline": grow_a,
            "baseline_name": "150 frames",
            "ratio": grow_a / grow_b if grow_b > 0 else float("inf"),
            "target": round(1 / TARGET_MEMORY, 2),
        }
    ]


def bench_pack(converted: Path, tmp: Path) -> list[dict]:
    from spikesim.converted.h5 import pack_dataset

    rows = []
    folder_bytes = sum(p.stat().st_size for p in converted.rglob("*.dat"))
    folder = run_child("read", str(converted))
    folder_rate = folder["frames"] / folder["seconds"]
    rows.append(
        {"name": "read folder (256-frame windows)", "value": folder_rate, "unit": "frames/s"}
    )
    for compression in (None, "lzf"):
        t0 = time.perf_counter()
        out = pack_dataset(converted, tmp / f"pack-{compression}.h5", compression=compression)
        pack_s = time.perf_counter() - t0
        size = out.stat().st_size
        r = run_child("read", str(out))
        rate = r["frames"] / r["seconds"]
        rows.append(
            {
                "name": f"h5 {compression or 'uncompressed'}: size vs .dat files "
                f"({size / 2**20:.1f} MB, packed in {pack_s:.1f} s)",
                "value": size / 2**20,
                "unit": "MB",
                "baseline": folder_bytes / 2**20,
                "baseline_name": ".dat MB",
                "ratio": size / folder_bytes,
            }
        )
        rows.append(
            {
                "name": f"h5 {compression or 'uncompressed'}: read (256-frame windows)",
                "value": rate,
                "unit": "frames/s",
                "baseline": folder_rate,
                "baseline_name": "folder",
                "ratio": rate / folder_rate,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--size", default="240x320")
    parser.add_argument("--quick", action="store_true", help="fewer clips (a smoke run)")
    parser.add_argument("--scaling-interp", default="flow")
    parser.add_argument("--repeat", type=int, default=2, help="scaling runs, best of")
    parser.add_argument("--memory-interp", default="flow")
    parser.add_argument(
        "--part", choices=["all", "memory"], default="all", help="memory: only memory vs length"
    )
    parser.add_argument("--child", choices=["clips", "dataset", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--interp", default="flow", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("videos", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = {"clips": child_clips, "dataset": child_dataset, "read": child_read}[args.child](
            args
        )
        print(json.dumps(result))
        return
    if not (CLIPS / "ucf101-mini").is_dir():
        raise SystemExit(f"real clips not found at {CLIPS}")
    ucf = sorted((CLIPS / "ucf101-mini").rglob("*.avi"))
    hmdb = sorted((CLIPS / "hmdb51-mini").rglob("*.avi"))
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.part == "memory":
            rows = bench_memory(tmp, args)
        else:
            rows = bench_methods(ucf[:1] if args.quick else ucf, args)
            rows += bench_scaling(hmdb, tmp, args)
            rows += bench_memory(tmp, args)
            rows += bench_pack(tmp / "w2", tmp)
    load1 = os.getloadavg()
    print(header("spikesim convert (benchmarks/bench_convert.py)"))
    print(
        f"factor x{args.factor}, {args.size}; load average {load0[0]:.1f} before, "
        f"{load1[0]:.1f} after; {time.perf_counter() - t0:.0f} s in all\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
