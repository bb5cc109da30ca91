"""Validation-only choices for the audio-visual demo (``make demo-av`` data): the train split
less the validation share trains, the validation share scores; the test split is never read.

    .venv/bin/python -m scripts.tune_av runs/demo-av runs/demo-av/tune.json [--grid NAME]

Each setting: variant (a fusion of ``spklip.scmrl.FUSIONS``), learning rate, epochs, the
residual weight alpha and the L_SA weight; seeds 0 and 1; the best validation Top-1 over the
epochs (the epoch choice of the demo) and, at that epoch, the validation Top-1 by corruption
group ("none", "video": picture degraded, "audio": sound degraded), which says whether each
single modality learns its clean clips and where fusion helps. Grids: ``lr`` (single
modalities and additive fusion at two learning rates and epoch counts) and ``fusion``
(S-CMRL's alpha and L_SA weight against additive fusion at the demo's recipe).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spikesim
from scripts.demo_av import AV
from spklip.av_data import ConvertedAV, split_train_val
from spklip.evaluation.av import evaluate_av
from spklip.scmrl import SCMRL, get_scmrl_config
from spklip.scmrl_loss import SCMRLLossConfig
from spklip.training.av import AVTrainConfig, train_av


def _s(name: str, fusion: str, lr: float, epochs: int, alpha=1.5, sa=1.0) -> dict[str, Any]:
    return {"name": name, "fusion": fusion, "lr": lr, "epochs": epochs, "alpha": alpha,
            "sa_weight": sa}  # fmt: skip


GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "lr": (
        _s("audio lr 2e-3 15 ep", "audio", 2e-3, 15),
        _s("vision lr 2e-3 15 ep", "vision", 2e-3, 15),
        _s("audio lr 5e-3 25 ep", "audio", 5e-3, 25),
        _s("vision lr 5e-3 25 ep", "vision", 5e-3, 25),
    ),
    "fusion": (
        _s("additive", "add", 5e-3, 15),
        _s("scmrl alpha 1.5 L_SA 1", "scmrl", 5e-3, 15),
        _s("scmrl alpha 0.5 L_SA 0.1", "scmrl", 5e-3, 15, alpha=0.5, sa=0.1),
        _s("scmrl alpha 1.5 L_SA 1 lr 2e-3", "scmrl", 2e-3, 15),
    ),
}
SEEDS = (0, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="the demo's folder (its synth/ and converted/)")
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="fusion")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0..N-1")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    source = ConvertedAV(args.demo / "converted", args.demo / "synth", AV)
    train, val = split_train_val(source.tensors("train"), 0.2, seed=0)  # as the demo splits
    rows = []
    for s in GRIDS[args.grid]:
        cfg = get_scmrl_config("scmrl-tiny", **train.shapes, fusion=s["fusion"], alpha=s["alpha"])
        scores, groups = [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = SCMRL(cfg)
            train_cfg = AVTrainConfig(
                epochs=s["epochs"],
                batch_size=8,
                lr=s["lr"],
                seed=seed,
                loss=SCMRLLossConfig(sa_weight=s["sa_weight"]),
            )
            train_av(model, train, val_set=val, config=train_cfg)  # ends on the best epoch
            result = evaluate_av(model, val)
            scores.append(result["top1"])
            groups.append(result["per_group"])
            seconds = time.perf_counter() - start
            by_group = ", ".join(f"{g} {v:.3f}" for g, v in result["per_group"].items())
            print(f"{s['name']} seed {seed}: val {scores[-1]:.3f} ({by_group}), {seconds:.0f} s",
                  flush=True)  # fmt: skip
        mean_groups = {g: float(np.mean([x[g] for x in groups])) for g in groups[0]}
        rows.append({**s, "val_top1": scores, "val_top1_mean": float(np.mean(scores)),
                     "val_per_group_mean": mean_groups})  # fmt: skip
    spikesim.write_json(
        args.out,
        {
            "grid": args.grid,
            "settings": rows,
            "seeds": list(range(args.seeds)),
            "av": asdict(AV),
            "loss": asdict(SCMRLLossConfig()),
            "val": len(val),
            "train": len(train),
        },
    )
    print("| setting | val Top-1 | " + " | ".join(rows[0]["val_per_group_mean"]) + " |")
    for r in rows:
        cells = " | ".join(f"{v:.3f}" for v in r["val_per_group_mean"].values())
        print(f"| {r['name']} | {r['val_top1_mean']:.3f} | {cells} |")


if __name__ == "__main__":
    main()
