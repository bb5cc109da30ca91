"""Validation-only sweeps behind the demo's recipes (issue 10). The test split of the data a
recipe is scored on is never read here.

    .venv/bin/python -m benchmarks.tune_recipes fsve CONVERTED OUT [--variants a,b] [--lrs ...]
    .venv/bin/python -m benchmarks.tune_recipes text CONVERTED OUT [--captions prompt,both]
    .venv/bin/python -m benchmarks.tune_recipes fewshot CHECKPOINT OUT [--data-seed 5]

``fsve``: spklip-fsve-tiny with the demo's recipe (``scripts.demo_spklip.DEMO_FSVE``) and
with each of its overrides taken back to the model config's default (:data:`FSVE_VARIANTS`),
trained on CONVERTED (the demo's dataset, data seed 0) with validation carved from train by
group; prints each run's best validation Top-1 and the epoch it came at. ``--lrs`` sweeps the
peak lr of the recipe instead.

``text``: spklip-tiny with each text recipe (``--captions``: what its texts are in training;
the demo's recipe is ``both``), validation Top-1 (class prompts) and t2v R@1 / R@10 on the
validation clips' own captions.

``fewshot``: the few-shot defaults (epochs, lr, BatchNorm adaptation) on a shifted-domain
dataset made for tuning only (``--style real``, sensor noise, ``--data-seed``, not the demo's
seed 1 nor bench_learning's 8): a grid of settings, each the mean Top-1 over K = 2, 4, 6, 8 and
two clip draws, scored on that tuning dataset's held-out clips.

Two runs train at a time, one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

# Each of the FSVE recipe's choices taken back to the config's default, one at a time.
FSVE_VARIANTS: dict[str, dict[str, Any]] = {
    "recipe": {},
    "steps-default": {"model_overrides": {"fsve.pool_init": "mean", "fsve.head_norm": True}},
    "pool-random": {"model_overrides": {"fsve.steps": 1, "fsve.head_norm": True}},
    "no-head-norm": {"model_overrides": {"fsve.steps": 1, "fsve.pool_init": "mean"}},
    "bin-5": {"frames": 60, "bin": 5},
}
# The few-shot grid: (epochs, lr, adapt_batchnorm).
FEWSHOT_GRID: tuple[tuple[int, float, bool], ...] = (
    (10, 1e-3, True),
    (20, 3e-4, True),
    (20, 1e-3, True),
    (20, 3e-3, True),
    (40, 3e-4, True),
    (40, 1e-3, True),
    (20, 1e-3, False),
)
SHOTS = (2, 4, 6, 8)


def _train_one(kind: str, data: str, out: str, name: str, seed: int, **kw: Any) -> dict:
    from benchmarks.bench_learning import train_recipe
    from spklip.evaluation.zeroshot import evaluate

    t0 = time.perf_counter()
    result = train_recipe(kind, data, out, seed, None, **kw)
    best = result["best"] or {}
    row = {
        "variant": name,
        "seed": seed,
        "best_epoch": best.get("epoch"),
        "val_top1": best.get("val_top1"),
        "last_val_top1": result["results"][-1].get("val_top1"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if kind == "spklip":  # retrieval on the validation clips' captions, selected checkpoint
        val = evaluate(result["best_checkpoint"], data, "val")
        row["val_t2v_r1"] = val["retrieval"]["t2v_R@1"]
        row["val_t2v_r10"] = val["retrieval"]["t2v_R@10"]
    return row


def _fewshot_one(checkpoint: str, data: str, epochs: int, lr: float, bn: bool, seed: int) -> dict:
    from spklip.training.fewshot import fewshot

    few = fewshot(
        checkpoint,
        data,
        shots=SHOTS,
        epochs=epochs,
        lr=lr,
        adapt_batchnorm=bn,
        seed=seed,
        threads=1,
        progress=False,
    )
    acc = few["accuracy"]
    return {
        "epochs": epochs,
        "lr": lr,
        "adapt_bn": bn,
        "seed": seed,
        **{f"K={k}": acc[str(k)] for k in (0, *SHOTS)},
        "mean_K": statistics.fmean(acc[str(k)] for k in SHOTS),
    }


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn"))


def _train_all(kind: str, plan: list[tuple[str, dict]], args: argparse.Namespace) -> list[dict]:
    """Every (name, keyword arguments of train_recipe) of ``plan`` with every seed."""
    with _pool() as pool:
        jobs = [
            pool.submit(_train_one, kind, str(args.data), str(args.out / f"{n}_s{s}"), n, s, **kw)
            for n, kw in plan
            for s in args.seed_list
        ]
        return [j.result() for j in jobs]


def _print_table(title: str, columns: list[tuple[str, str]], rows: list[dict]) -> None:
    """``columns``: (header, row key); floats print with 3 decimals, seconds as integers."""

    def cell(key: str, value: Any) -> str:
        if key == "seconds":
            return f"{value:.0f}"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    print(title)
    print("| " + " | ".join(h for h, _ in columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        print("| " + " | ".join(cell(k, r[k]) for _, k in columns) + " |")


RUN_COLUMNS = [("seed", "seed"), ("best val Top-1", "val_top1"), ("at epoch", "best_epoch")]


def run_fsve(args: argparse.Namespace) -> list[dict]:
    if args.lrs:
        plan = [(f"lr {lr:g}", {"lr": float(lr)}) for lr in args.lrs.split(",")]
    else:
        names = args.variants.split(",") if args.variants else list(FSVE_VARIANTS)
        plan = [(n, {"variant": FSVE_VARIANTS[n]}) for n in names]
    rows = _train_all("fsve", plan, args)
    _print_table(
        f"FSVE recipe on validation only (data {args.data}, training seeds {args.seeds})",
        [
            ("variant", "variant"),
            *RUN_COLUMNS,
            ("last-epoch val Top-1", "last_val_top1"),
            ("seconds", "seconds"),
        ],
        rows,
    )
    return rows


def run_text(args: argparse.Namespace) -> list[dict]:
    plan = [(c, {"variant": {"captions": c}}) for c in args.captions.split(",")]
    rows = _train_all("spklip", plan, args)
    _print_table(
        f"spklip-tiny text recipe on validation only (data {args.data}, seeds {args.seeds})",
        [
            ("captions", "variant"),
            *RUN_COLUMNS,
            ("val t2v R@1", "val_t2v_r1"),
            ("val t2v R@10", "val_t2v_r10"),
            ("seconds", "seconds"),
        ],
        rows,
    )
    return rows


def run_fewshot(args: argparse.Namespace) -> list[dict]:
    from benchmarks.bench_learning import make_data

    data = make_data(
        args.out,
        "real_tuning",
        classes=12,
        per_class=20,
        seed=args.data_seed,
        style="real",
        noise="sensor",
    )
    with _pool() as pool:
        jobs = [
            pool.submit(_fewshot_one, str(args.data), str(data), e, lr, bn, s)
            for e, lr, bn in FEWSHOT_GRID
            for s in args.seed_list
        ]
        rows = [j.result() for j in jobs]
    print(
        f"Few-shot settings on a tuning dataset (style real, sensor noise, data seed "
        f"{args.data_seed}, 12 x 20 clips; scored on its held-out clips), checkpoint "
        f"{args.data}, clip draws {args.seeds}"
    )
    print("| epochs | lr | adapt BN | K=0 | K=2 | K=4 | K=6 | K=8 | mean over K>0 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for e, lr, bn in FEWSHOT_GRID:
        cell = [r for r in rows if (r["epochs"], r["lr"], r["adapt_bn"]) == (e, lr, bn)]
        mean = {k: statistics.fmean(r[k] for r in cell) for k in cell[0] if k.startswith("K=")}
        print(
            f"| {e} | {lr:g} | {'yes' if bn else 'no'} | "
            + " | ".join(f"{v:.3f}" for v in mean.values())
            + f" | {statistics.fmean(r['mean_K'] for r in cell):.3f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=("fsve", "text", "fewshot"))
    parser.add_argument("data", type=Path, help="converted dataset (fewshot: a checkpoint)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", default="0", help="training seeds (fewshot: clip draws)")
    parser.add_argument("--variants", default="", help=f"fsve: of {', '.join(FSVE_VARIANTS)}")
    parser.add_argument("--lrs", default="", help="fsve: sweep the peak lr instead")
    parser.add_argument("--captions", default="prompt,both", help="text: caption modes")
    parser.add_argument("--data-seed", type=int, default=5, help="fewshot: tuning data seed")
    args = parser.parse_args()
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {"fsve": run_fsve, "text": run_text, "fewshot": run_fewshot}[args.sweep](args)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
