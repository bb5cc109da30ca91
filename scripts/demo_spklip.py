"""The spklip half of the demo: train spklip-tiny on a converted dataset, evaluate it on
the held-out split, write the figures, return the numbers for the report.

``scripts/demo.py`` calls :func:`run` after ``spikesim synth`` and ``spikesim convert``;
run alone it takes the converted folder and an output folder::

    .venv/bin/python -m scripts.demo_spklip runs/demo/converted runs/demo
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from spklip.evaluation.figures import plot_training_curves
from spklip.evaluation.zeroshot import evaluate
from spklip.training.loop import TrainConfig, read_results, train

# What the demo trains, chosen by measurement on the 2-core CPU (docs/training.md, "What
# the demo measures"): spklip-tiny as configured (300 raw spike frames binned by 10 inside
# the model, one HSFE block over the clip, the flow maps that show the sense of a rotation).
# The recipe (lr, batch, epochs, captions) is the model config's own ("recipe" section).
DEMO_TRAIN: dict[str, Any] = {"model": "spklip-tiny", "model_overrides": {}}
# What scripts/demo.py feeds it: `spikesim synth` and `spikesim convert` settings (synth
# renders 120x160; convert interpolates x10 and resizes to 48x64, spklip-tiny's image_size).
DEMO_DATA: dict[str, Any] = {"clips_per_class": 60, "size": (48, 64), "factor": 10}


def run(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    model: str = DEMO_TRAIN["model"],
    model_overrides: dict[str, Any] | None = None,
    frames: int | None = None,
    bin: int = 1,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    captions: str | None = None,
    seed: int = 0,
    workers: int = 1,
    threads: int | None = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Train (resuming ``out_dir/run`` if a demo was interrupted) and evaluate.

    ``data_dir``: the converted synthetic dataset (see :data:`DEMO_DATA`).
    ``model_overrides``: None for the demo's (:data:`DEMO_TRAIN`), else replaces them.
    ``epochs``, ``batch_size``, ``lr``, ``captions``: None for the model's recipe.
    ``frames`` (None: the model's) and ``bin`` (data-side binning, 1: the model bins) are
    for experiments with other models; see ``spklip.training.loop.TrainConfig``.
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
    # The checkpoint selected on validation (best.json), read once on test.
    best = trained["best_checkpoint"]
    result = evaluate(best, data_dir, "test", out=out_dir / "eval.json", figures_dir=out_dir)
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
        "checkpoint": best,
        "best_epoch": (trained["best"] or {}).get("epoch"),
        "figures": {"training_curves": str(curves), "confusion": result["figures"]["confusion"]},
    }


# The full-spiking encoder (docs/fsve.md): one time step of 30 count frames (data-side
# binning by 10), a mean-initialised readout and a BatchNorm on the embedding. Checked on
# validation (benchmarks.tune_recipes fsve): one step and the mean init matter (0.365 against
# 0.229 / 0.177), the BatchNorm and the bin width are within one seed's noise.
# Its recipe (65 epochs, lr 1e-3, batch 16, class prompts) is spklip-fsve-tiny's own.
DEMO_FSVE: dict[str, Any] = {
    "model": "spklip-fsve-tiny",
    "model_overrides": {"fsve.steps": 1, "fsve.pool_init": "mean", "fsve.head_norm": True},
    "frames": 30,
    "bin": 10,
}


def run_fsve(
    data_dir: str | Path, out_dir: str | Path, *, clips: int = 8, **settings: Any
) -> dict[str, Any]:
    """:func:`run` with :data:`DEMO_FSVE` (``settings`` override it), plus the share of
    FSVE's activations that are 0/1 spikes on ``clips`` test clips: ``binary_activation_fraction``
    between layers (the first layer reads the count frames) and ``..._with_input`` counting
    that input too."""
    from spklip.data import load_checkpoint_clips
    from spklip.evaluation.energy import binary_activation_fraction

    recipe = {**DEMO_FSVE, **settings}
    result = run(data_dir, out_dir, **recipe)
    loaded = load_checkpoint_clips(result["checkpoint"], data_dir, split="test", clips=clips)
    share = binary_activation_fraction(loaded.model, loaded.spikes)
    result["binary_activation_fraction"] = share["inter_layer_binary_fraction"]
    result["binary_activation_fraction_with_input"] = share["binary_activation_fraction"]
    return result


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: demo_spklip.py CONVERTED_DIR OUT_DIR")
    print(json.dumps(run(sys.argv[1], sys.argv[2]), indent=2))
