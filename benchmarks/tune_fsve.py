"""Validation-only check of the FSVE recipe (issue 10): spklip-fsve-tiny with the demo's
overrides (scripts.demo_spklip.DEMO_FSVE) at a few peak learning rates, trained on the demo's
dataset (data seed 0) with validation carved from train by group; prints each run's best
validation Top-1 and the epoch it came at. The test split is never read.

    .venv/bin/python -m benchmarks.tune_fsve CONVERTED OUT [--lrs 3e-4,1e-3,3e-3] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def one(data: str, out: str, lr: float, seed: int) -> dict:
    from benchmarks.bench_learning import train_recipe

    t0 = time.perf_counter()
    result = train_recipe("fsve", data, out, seed, None, lr=lr)
    best = result["best"] or {}
    return {
        "lr": lr,
        "seed": seed,
        "best_epoch": best.get("epoch"),
        "val_top1": best.get("val_top1"),
        "last_val_top1": result["results"][-1].get("val_top1"),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--lrs", default="3e-4,1e-3,3e-3")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lrs = [float(x) for x in args.lrs.split(",")]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        jobs = [
            pool.submit(one, str(args.data), str(args.out / f"lr{lr:g}"), lr, args.seed)
            for lr in lrs
        ]
        rows = [j.result() for j in jobs]
    print(f"FSVE recipe on validation only (data {args.data}, training seed {args.seed})")
    print("| peak lr | best val Top-1 | at epoch | last-epoch val Top-1 | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['lr']:g} | {r['val_top1']:.3f} | {r['best_epoch']} | "
            f"{r['last_val_top1']:.3f} | {r['seconds']:.0f} |"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
