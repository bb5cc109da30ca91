"""The spklip half of the demo: train spklip-tiny on a converted dataset, evaluate it on
the held-out split, write the figures, return the numbers for the report.

``scripts/demo.py`` calls :func:`run` after ``spikesim synth`` and ``spikesim convert``;
run alone it takes the converted folder and an output folder::

    .venv/bin/python scripts/demo_spklip.py runs/demo/converted runs/demo
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from spklip.evaluate import evaluate  # noqa: E402
from spklip.figures import plot_training_curves  # noqa: E402
from spklip.train import TrainConfig, read_results, train  # noqa: E402

# What the demo trains, chosen by measurement on the 2-core CPU (docs/training.md, "What
# the demo measures"). Spike frames are binned by 10 (300 spike frames -> 30 count frames):
# from raw binary frames a small model memorises per-clip firing phases and never
# generalises on a few hundred clips. One HSFE block spanning the clip learns the direction
# of time in its per-frame filters, so the temporal Transformer over blocks is not needed.
DEMO_TRAIN: dict[str, Any] = {
    "model": "spklip-tiny",
    "model_overrides": {
        "hsfe.n_blocks": 1,
        "hsfe.radius": 14,  # one block of 29 count frames
        "hsfe.step": None,
        "hsfe.channel_step": 3,  # MTF branches read 29, 23, 17, 11 count frames
        "star.temporal_layers": 0,
    },
    "frames": 30,
    "bin": 10,
    "epochs": 40,
    "batch_size": 16,
    "lr": 1e-3,
    "captions": "prompt",
}
# What scripts/demo.py feeds it: `spikesim synth` and `spikesim convert` settings.
DEMO_DATA: dict[str, Any] = {"clips_per_class": 60, "size": (72, 96), "factor": 10}


def run(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    model: str = DEMO_TRAIN["model"],
    model_overrides: dict[str, Any] | None = None,
    frames: int = DEMO_TRAIN["frames"],
    bin: int = DEMO_TRAIN["bin"],
    epochs: int = DEMO_TRAIN["epochs"],
    batch_size: int = DEMO_TRAIN["batch_size"],
    lr: float = DEMO_TRAIN["lr"],
    captions: str = DEMO_TRAIN["captions"],
    seed: int = 0,
    workers: int = 1,
    threads: int | None = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (resuming ``out_dir/run`` if a demo was interrupted) and evaluate.

    ``data_dir``: the converted synthetic dataset (see :data:`DEMO_DATA`).
    ``model_overrides``: None for the demo's (:data:`DEMO_TRAIN`), else replaces them.
    ``threads``: torch threads. One by default: on a shared 2-core machine two threads
    spin against other processes and an epoch can take 10x longer; alone, two threads are
    ~1.7x faster (7.6 s against 12.7 s per epoch). None: torch's default.

    Returns ``{"zero_shot": {"top1", "top5", "per_class": {class: top1}}, "retrieval":
    {"t2v_R@1", ..., "v2t_mean_rank"}, "train_seconds", "eval_seconds", "epochs",
    "checkpoint", "figures": {"training_curves", "confusion"}}``; fractions in [0, 1].
    Writes ``out_dir/run/`` (checkpoints, results.jsonl), ``out_dir/eval.json``,
    ``out_dir/training_curves.png`` and ``out_dir/confusion.png``.
    """
    out_dir = Path(out_dir)
    run_dir = out_dir / "run"
    config = TrainConfig(
        data=data_dir,
        out=run_dir,
        model=model,
        model_overrides=dict(
            DEMO_TRAIN["model_overrides"] if model_overrides is None else model_overrides
        ),
        frames=frames,
        bin=bin,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        captions=captions,
        seed=seed,
        workers=workers,
        threads=threads,
        resume=True,
        progress=progress,
    )
    trained = train(config)
    rows = read_results(run_dir)
    curves = plot_training_curves(rows, out_dir / "training_curves.png")
    t0 = time.perf_counter()
    result = evaluate(run_dir, data_dir, "test", out=out_dir / "eval.json", figures_dir=out_dir)
    eval_seconds = time.perf_counter() - t0
    zs = result["zero_shot"]
    return {
        "zero_shot": {"top1": zs["top1"], "top5": zs["top5"], "per_class": zs["per_class"]},
        "retrieval": {
            k: v for k, v in result["retrieval"].items() if k not in ("texts", "text_source")
        },
        # Summed over epochs, so an interrupted and resumed demo still reports the whole.
        "train_seconds": round(sum(r["seconds"] for r in rows), 2),
        "eval_seconds": round(eval_seconds, 1),
        "epochs": len(rows),
        "checkpoint": trained["checkpoint"],
        "figures": {"training_curves": str(curves), "confusion": result["figures"]["confusion"]},
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: demo_spklip.py CONVERTED_DIR OUT_DIR")
    print(json.dumps(run(sys.argv[1], sys.argv[2]), indent=2))
