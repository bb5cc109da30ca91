"""Validation-only choices for the audio-visual demo (``make demo-av`` data): the train split
less the validation share trains, the validation share scores; the test split is never read.

    .venv/bin/python -m scripts.tune_av runs/demo-av runs/demo-av/tune.json [--grid NAME]

Each setting: variant (a fusion of ``spklip.scmrl.FUSIONS``), learning rate, epochs, the
residual weight alpha and the L_SA weight, and optionally AV input settings (``av``), model
overrides (``model``) or another conversion under DEMO (``converted``); seeds 0..N-1; the
best validation Top-1 over the epochs (the epoch choice of the demo) and, at that epoch, the
validation Top-1 by corruption group ("none", "video": picture degraded, "audio": sound
degraded), which says whether each single modality learns its clean clips and where fusion
helps, and the best training Top-1 (does it fit at all?). Grids: ``lr`` (single modalities at
two learning rates and epoch counts), ``audio`` (the audio input: IF spikes, IF + ON/OFF
events, a finer IF spectrogram), ``vision`` / ``vision2`` (the vision input and size),
``fusion`` (S-CMRL's alpha and L_SA weight against additive fusion, IF audio, session 4) and
``fusion-onoff`` (the same with the IF + ON/OFF audio input), ``epochs`` and ``batch``
(10 vs 15 epochs, batch 16), ``dropout`` (modality dropout p 0.2 / 0.4 for S-CMRL and
additive fusion at the demo's recipe, against p 0). Session 6 (the vision input; a
setting's ``spikes`` names the spike-camera conversion under DEMO): ``intensity`` (vision
alone: the ORed DVS events, their net sign, and an intensity channel before either),
``intensity2`` (that input with a wider or longer-trained vision branch), ``intensity3``
(the intensity channel's spike count), ``fusion-intensity`` (S-CMRL and additive fusion at
the demo's recipe with that input), ``fusion-baseline`` (the same with the ORed events, the
input until then) and ``dropout-intensity`` (modality dropout p 0 / 0.4 with the new input).
Grids before session 6 read the ORed DVS events, as they did then. ``--first-seed`` runs
seeds FIRST..FIRST+N-1 (to add a seed to a grid already run).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spikesim
from scripts.demo_av import AV
from spklip.av_data import AVTensors, ConvertedAV
from spklip.evaluation.av import evaluate_av
from spklip.scmrl import SCMRL, get_scmrl_config
from spklip.scmrl_loss import SCMRLLossConfig
from spklip.training.av import AVTrainConfig, train_av


def _s(
    name: str,
    fusion: str,
    lr: float,
    epochs: int,
    alpha=1.5,
    sa=1.0,
    av=None,
    model=None,
    converted=None,
    batch=8,
    drop=0.0,
    spikes=None,
) -> dict[str, Any]:
    """One setting; ``av``: AVSpikeSettings overrides of the demo's ``AV`` (the input),
    ``model``: SCMRLConfig overrides of scmrl-tiny, ``converted``: the conversion folder under
    DEMO (default: --converted), ``batch``: clips per optimiser step, ``drop``: the modality
    dropout probability (``AVTrainConfig.modality_dropout``), ``spikes``: the spike-camera
    conversion under DEMO for ``av`` vision_input "spikes+dvs"."""
    return {"name": name, "fusion": fusion, "lr": lr, "epochs": epochs, "alpha": alpha,
            "sa_weight": sa, "av": dict(av or {}), "model": dict(model or {}),
            "converted": converted, "batch_size": batch,
            "modality_dropout": drop, "spikes": spikes}  # fmt: skip


# session 6: the spike-camera conversion (threshold 2) of the demo's synth folder, under DEMO
# (scripts.demo_av.make_data writes it there)
SPIKES = "spikes"
INTENSITY_NET = {"vision_input": "spikes+dvs", "vision_binning": "net", "intensity_count": 3}
INTENSITY_OR = {"vision_input": "spikes+dvs", "vision_binning": "or", "intensity_count": 3}
DVS_OR = {"vision_input": "data", "vision_binning": "or"}  # the demo's input until session 6

GRIDS: dict[str, tuple[dict[str, Any], ...]] = {
    "lr": (
        _s("audio lr 2e-3 15 ep", "audio", 2e-3, 15, av={"audio_mode": "if"}),
        _s("vision lr 2e-3 15 ep", "vision", 2e-3, 15),
        _s("audio lr 5e-3 25 ep", "audio", 5e-3, 25, av={"audio_mode": "if"}),
        _s("vision lr 5e-3 25 ep", "vision", 5e-3, 25),
    ),
    "audio": (
        _s("audio IF 16x16 (old input)", "audio", 5e-3, 15, av={"audio_mode": "if"}),
        _s("audio IF+ON/OFF 16x16", "audio", 5e-3, 15, av={"audio_mode": "if+onoff"}),
        _s(
            "audio IF 32x32 top_db 40 thr 1",
            "audio",
            5e-3,
            15,
            av={
                "n_mels": 32,
                "frames_per_step": 32,
                "top_db": 40.0,
                "threshold": 1.0,
                "audio_mode": "if",
            },
            model={"stages": 3},
        ),
    ),
    "vision": (
        _s("vision 32x32 (old input)", "vision", 5e-3, 15),
        _s("vision 64x64", "vision", 5e-3, 15, converted="converted64"),
    ),
    "vision2": (
        _s("vision frames binning", "vision", 5e-3, 15, av={"vision_binning": "frames"}),
        _s("vision dim 64", "vision", 5e-3, 15, model={"dim": 64}),
        _s("vision 30 epochs", "vision", 5e-3, 30),
    ),
    "vision3": (
        _s("vision or-pair binning", "vision", 5e-3, 15, av={"vision_binning": "or-pair"}),
    ),
    "fusion": (  # session 4, with the IF-only audio input
        _s("additive", "add", 5e-3, 15, av={"audio_mode": "if"}),
        _s("scmrl alpha 1.5 L_SA 1", "scmrl", 5e-3, 15, av={"audio_mode": "if"}),
        _s(
            "scmrl alpha 0.5 L_SA 0.1",
            "scmrl",
            5e-3,
            15,
            alpha=0.5,
            sa=0.1,
            av={"audio_mode": "if"},
        ),
        _s("scmrl alpha 1.5 L_SA 1 lr 2e-3", "scmrl", 2e-3, 15, av={"audio_mode": "if"}),
    ),
    "epochs": (  # the IF + ON/OFF audio input: is 10 epochs as good as 15 (demo time)?
        _s("additive 10 ep", "add", 5e-3, 10),
        _s("scmrl alpha 0.5 L_SA 0.1 10 ep", "scmrl", 5e-3, 10, alpha=0.5, sa=0.1),
    ),
    "batch": (  # the IF + ON/OFF audio input: batch 16 halves the time of an epoch
        _s("additive batch 16", "add", 5e-3, 15, batch=16),
        _s("scmrl alpha 0.5 L_SA 0.1 batch 16", "scmrl", 5e-3, 15, alpha=0.5, sa=0.1, batch=16),
    ),
    "dropout": (  # session 5 (round 2): modality dropout p for the fused models (the demo's recipe)
        _s("scmrl p 0", "scmrl", 5e-3, 10, alpha=0.5, sa=0.1),
        _s("additive p 0", "add", 5e-3, 10),
        _s("scmrl p 0.2", "scmrl", 5e-3, 10, alpha=0.5, sa=0.1, drop=0.2),
        _s("scmrl p 0.4", "scmrl", 5e-3, 10, alpha=0.5, sa=0.1, drop=0.4),
        _s("additive p 0.2", "add", 5e-3, 10, drop=0.2),
        _s("additive p 0.4", "add", 5e-3, 10, drop=0.4),
    ),
    "intensity": (  # session 6: vision-only, the event input against net / intensity + events
        _s("vision DVS OR (session-5 demo input)", "vision", 5e-3, 10, av=DVS_OR),
        _s("vision DVS net", "vision", 5e-3, 10, av={**DVS_OR, "vision_binning": "net"}),
        _s("vision spikes+DVS net", "vision", 5e-3, 10, av=INTENSITY_NET, spikes=SPIKES),
        _s("vision spikes+DVS OR", "vision", 5e-3, 10, av=INTENSITY_OR, spikes=SPIKES),
    ),
    "intensity2": (  # session 6: a wider or longer-trained vision branch on that input
        _s(
            "vision spikes+DVS net dim 64",
            "vision",
            5e-3,
            10,
            av=INTENSITY_NET,
            spikes=SPIKES,
            model={"dim": 64},
        ),
        _s("vision spikes+DVS net 20 ep", "vision", 5e-3, 20, av=INTENSITY_NET, spikes=SPIKES),
    ),
    "intensity3": (  # session 6: how many spikes in a step make the intensity channel fire
        _s(
            "vision spikes+DVS net count 2",
            "vision",
            5e-3,
            10,
            av={**INTENSITY_NET, "intensity_count": 2},
            spikes=SPIKES,
        ),
        _s(
            "vision spikes+DVS net count 4",
            "vision",
            5e-3,
            10,
            av={**INTENSITY_NET, "intensity_count": 4},
            spikes=SPIKES,
        ),
    ),
    "dropout-intensity": (  # session 6: modality dropout p again, with the new vision input
        _s(
            "scmrl p 0 spikes+DVS net",
            "scmrl",
            5e-3,
            10,
            alpha=0.5,
            sa=0.1,
            av=INTENSITY_NET,
            spikes=SPIKES,
        ),
        _s(
            "scmrl p 0.4 spikes+DVS net",
            "scmrl",
            5e-3,
            10,
            alpha=0.5,
            sa=0.1,
            drop=0.4,
            av=INTENSITY_NET,
            spikes=SPIKES,
        ),
        _s("additive p 0 spikes+DVS net", "add", 5e-3, 10, av=INTENSITY_NET, spikes=SPIKES),
        _s(
            "additive p 0.4 spikes+DVS net",
            "add",
            5e-3,
            10,
            drop=0.4,
            av=INTENSITY_NET,
            spikes=SPIKES,
        ),
    ),
    "fusion-baseline": (  # session 6: the demo's fused recipe (DVS OR input) re-run as is
        _s("scmrl p 0.2", "scmrl", 5e-3, 10, alpha=0.5, sa=0.1, drop=0.2, av=DVS_OR),
        _s("additive p 0.2", "add", 5e-3, 10, drop=0.2, av=DVS_OR),
    ),
    "fusion-intensity": (  # session 6: the demo's fused recipe with the intensity + net input
        _s(
            "scmrl p 0.2 spikes+DVS net",
            "scmrl",
            5e-3,
            10,
            alpha=0.5,
            sa=0.1,
            drop=0.2,
            av=INTENSITY_NET,
            spikes=SPIKES,
        ),
        _s(
            "additive p 0.2 spikes+DVS net",
            "add",
            5e-3,
            10,
            drop=0.2,
            av=INTENSITY_NET,
            spikes=SPIKES,
        ),
    ),
    "fusion-onoff": (  # the IF + ON/OFF audio input
        _s("additive", "add", 5e-3, 15),
        _s("scmrl alpha 0.5 L_SA 0.1", "scmrl", 5e-3, 15, alpha=0.5, sa=0.1),
        _s("scmrl alpha 1.5 L_SA 1", "scmrl", 5e-3, 15),
    ),
}
SEEDS = (0, 1)
# grids of session 6 start from the demo's AV settings; the earlier ones from the vision
# input of their time (the ORed DVS events), so that they still give the tables they gave
SESSION6_GRIDS = (
    "intensity",
    "intensity2",
    "intensity3",
    "fusion-baseline",
    "fusion-intensity",
    "dropout-intensity",
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="the demo's folder (its synth/ and converted/)")
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--grid", choices=sorted(GRIDS), default="fusion")
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0..N-1")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST..FIRST+N-1")
    parser.add_argument("--converted", default="converted", help="the conversion under DEMO")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cache: dict[str, tuple[AVTensors, AVTensors]] = {}
    rows = []
    for s in GRIDS[args.grid]:
        base = AV if args.grid in SESSION6_GRIDS else dataclasses.replace(AV, **DVS_OR)
        av = dataclasses.replace(base, **s["av"])
        folder = args.demo / (s["converted"] or args.converted)
        spikes = args.demo / s["spikes"] if s["spikes"] else None
        key = f"{folder} {spikes} {av!r}"
        if key not in cache:
            source = ConvertedAV(folder, args.demo / "synth", av, spikes_from=spikes)
            cache[key] = source.train_val(0.2, seed=0)  # as the demo splits
        train, val = cache[key]
        cfg = get_scmrl_config(
            "scmrl-tiny", **train.shapes, fusion=s["fusion"], alpha=s["alpha"], **s["model"]
        )
        scores, groups, fits, epochs = [], [], [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            start = time.perf_counter()
            torch.manual_seed(seed)
            model = SCMRL(cfg)
            train_cfg = AVTrainConfig(
                epochs=s["epochs"],
                batch_size=s["batch_size"],
                lr=s["lr"],
                seed=seed,
                loss=SCMRLLossConfig(sa_weight=s["sa_weight"]),
                modality_dropout=s["modality_dropout"],
            )
            history = train_av(model, train, val_set=val, config=train_cfg)  # ends on the best
            result = evaluate_av(model, val)
            scores.append(result["top1"])
            groups.append(result["per_group"])
            fits.append(max(r["train_top1"] for r in history))  # underfitting or not
            epochs.append(next((r["epoch"] for r in history if r.get("best")), None))
            seconds = time.perf_counter() - start
            by_group = ", ".join(f"{g} {v:.3f}" for g, v in result["per_group"].items())
            print(f"{s['name']} seed {seed}: val {scores[-1]:.3f} ({by_group}), best train "
                  f"{fits[-1]:.3f}, best epoch {epochs[-1]}, {seconds:.0f} s",
                  flush=True)  # fmt: skip
        mean_groups = {g: float(np.mean([x[g] for x in groups])) for g in groups[0]}
        rows.append({**s, "val_top1": scores, "val_top1_mean": float(np.mean(scores)),
                     "val_per_group_mean": mean_groups, "train_top1_max": fits,
                     "best_epoch": epochs, "train": len(train), "val": len(val)})  # fmt: skip
    spikesim.write_json(
        args.out,
        {
            "grid": args.grid,
            "settings": rows,
            "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
            "av": asdict(AV),
            "loss": asdict(SCMRLLossConfig()),
        },
    )
    print("| setting | val Top-1 | " + " | ".join(rows[0]["val_per_group_mean"]) +
          " | best train Top-1 |")  # fmt: skip
    for r in rows:
        cells = " | ".join(f"{v:.3f}" for v in r["val_per_group_mean"].values())
        fit = float(np.mean(r["train_top1_max"]))
        print(f"| {r['name']} | {r['val_top1_mean']:.3f} | {cells} | {fit:.3f} |")


if __name__ == "__main__":
    main()
