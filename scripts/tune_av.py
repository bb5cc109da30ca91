"""Can S-CMRL beat additive fusion with other settings? A validation-only search on the demo's
data (``make demo-av`` first): the train split less the validation share trains, the validation
share scores; the test split is never read.

    .venv/bin/python -m scripts.tune_av runs/demo-av runs/demo-av/tune.json

Each setting: variant (scmrl or additive), the residual weight alpha, the L_SA weight and the
epochs; seeds 0 and 1; the best validation Top-1 over the epochs (the epoch choice of the demo).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spikesim
from spklip.av_data import AVSpikeSettings, ConvertedAV, split_train_val
from spklip.scmrl import SCMRL, get_scmrl_config
from spklip.scmrl_loss import SCMRLLossConfig
from spklip.training.av import AVTrainConfig, train_av

SETTINGS: tuple[dict[str, Any], ...] = (
    {"name": "additive", "fusion": "add", "alpha": 1.5, "sa_weight": 1.0, "epochs": 15},
    {"name": "scmrl alpha 0.5", "fusion": "scmrl", "alpha": 0.5, "sa_weight": 1.0, "epochs": 15},
    {"name": "scmrl alpha 3", "fusion": "scmrl", "alpha": 3.0, "sa_weight": 1.0, "epochs": 15},
    {"name": "scmrl L_SA 0.1", "fusion": "scmrl", "alpha": 1.5, "sa_weight": 0.1, "epochs": 15},
    {"name": "scmrl 25 epochs", "fusion": "scmrl", "alpha": 1.5, "sa_weight": 1.0, "epochs": 25},
)
SEEDS = (0, 1)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    demo, out = Path(args[0]), Path(args[1])
    torch.set_num_threads(1)
    source = ConvertedAV(demo / "converted", demo / "synth", AVSpikeSettings())
    train, val = split_train_val(source.tensors("train"), 0.2, seed=0)  # as the demo splits
    rows = []
    for s in SETTINGS:
        cfg = get_scmrl_config("scmrl-tiny", **train.shapes, fusion=s["fusion"], alpha=s["alpha"])
        scores = []
        for seed in SEEDS:
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = SCMRL(cfg)
            train_cfg = AVTrainConfig(
                epochs=s["epochs"],
                batch_size=8,
                seed=seed,
                loss=SCMRLLossConfig(sa_weight=s["sa_weight"]),
            )
            history = train_av(model, train, val_set=val, config=train_cfg)
            scores.append(max(r["val_top1"] for r in history))
            seconds = time.perf_counter() - start
            print(f"{s['name']} seed {seed}: val {scores[-1]:.3f}, {seconds:.0f} s", flush=True)
        rows.append({**s, "val_top1": scores, "val_top1_mean": float(np.mean(scores))})
    loss = asdict(SCMRLLossConfig())
    spikesim.write_json(
        out, {"settings": rows, "seeds": list(SEEDS), "loss": loss, "val": len(val)}
    )
    for r in rows:
        per_seed = ", ".join(f"{v:.3f}" for v in r["val_top1"])
        print(f"| {r['name']} | {r['val_top1_mean']:.3f} | {per_seed} |")


if __name__ == "__main__":
    main()
