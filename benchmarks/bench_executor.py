"""Throughput of ``spikesim convert`` on the local pool and on a Dask cluster, side by side.

A source dataset of ``--copies`` copies of each real clip (``../shared/data/clips``)
is converted at ``--factor`` / ``--size`` with ``flow`` two ways: the local
pool with ``--workers N``, and a Dask ``LocalCluster`` of N single-thread worker processes on
loopback (``--executor dask --address``). Reports clips/s and source frames/s (wall) and per
CPU-second of the workers (what does not depend on other jobs loading a shared machine),
checks that both outputs are byte-identical, and projects the hours for UCF101 (13,320 clips
of about 7 s at 25 fps = 175 source frames each) from the per-CPU-second rate, for this
machine and for 4 nodes.

    .venv/bin/python -m benchmarks.bench_executor [--workers 2] [--copies 2] [--factor 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from spikesim.convert import ConvertSettings, convert_dataset

HERE = Path(__file__).resolve().parent
CLIPS = HERE.parent.parent / "shared" / "data" / "clips"
UCF101_CLIPS = 13_320
UCF101_FRAMES_PER_CLIP = 7 * 25


def _source(root: Path, copies: int) -> int:
    """Class folders of copies of the real clips; returns the clip count."""
    n = 0
    for clip in sorted(CLIPS.rglob("*.avi")):
        folder = root / clip.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for c in range(copies):
            shutil.copyfile(clip, folder / f"{clip.stem}_copy{c}{clip.suffix}")
            n += 1
    return n


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.suffix in (".dat", ".json")
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--copies", type=int, default=2)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--size", default="240x320")
    args = ap.parse_args()
    import distributed

    size = tuple(int(s) for s in args.size.lower().split("x"))
    settings = ConvertSettings(size=size, factor=args.factor, interp="flow", seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = _source(tmp / "src", args.copies)
        print(
            f"# {n} clips ({args.copies} copies of each real clip), {args.size}, x{args.factor}, "
            f"flow; {args.workers} workers; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} before\n"
        )
        rows = {}
        t0 = time.perf_counter()
        pool = convert_dataset(
            tmp / "src", tmp / "pool", settings, workers=args.workers, progress=False
        )
        rows["local pool"] = (pool, time.perf_counter() - t0, 0.0)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p
        )
        t_start = time.perf_counter()
        with distributed.LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=50,
        ) as cluster:
            start = time.perf_counter() - t_start
            t0 = time.perf_counter()
            dask = convert_dataset(
                tmp / "src",
                tmp / "dask",
                settings,
                executor="dask",
                address=cluster.scheduler_address,
                progress=False,
            )
            rows["dask LocalCluster"] = (dask, time.perf_counter() - t0, start)
        same = _outputs(tmp / "pool") == _outputs(tmp / "dask")
        print(
            "| executor | clips | source frames | wall s | clips/s | source frames/s "
            "| worker CPU-s | source frames per CPU-s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, (s, wall, _) in rows.items():
            print(
                f"| {name} | {s.converted} | {s.source_frames:,} | {wall:.1f} | "
                f"{s.converted / wall:.3f} | {s.source_frames / wall:.1f} | "
                f"{s.cpu_seconds:.1f} | {s.source_frames / s.cpu_seconds:.1f} |"
            )
        print(
            f"\ncluster start-up (not counted above): {rows['dask LocalCluster'][2]:.1f} s; "
            f"byte-identical outputs: {same}; load average {os.getloadavg()[0]:.1f} after"
        )
        d = rows["dask LocalCluster"][0]
        per_core = d.source_frames / d.cpu_seconds  # one worker on one free core
        core_hours = UCF101_CLIPS * UCF101_FRAMES_PER_CLIP / per_core / 3600
        print(
            f"UCF101 ({UCF101_CLIPS:,} clips x {UCF101_FRAMES_PER_CLIP} frames) at "
            f"{per_core:.1f} source frames per worker CPU-second: {core_hours:.0f} core-hours; "
            f"{core_hours / args.workers:.1f} h on this machine ({args.workers} free cores), "
            f"{core_hours / 64:.1f} h on 4 nodes of 16 cores, {core_hours / 128:.1f} h on 4 "
            "nodes of 32 cores (one worker per core)"
        )
        if not same:
            raise SystemExit("the Dask output differs from the local pool's")


if __name__ == "__main__":
    main()
