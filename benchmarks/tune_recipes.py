"""Validation-only sweeps behind the demo's recipes (issue 10). The test split of the data a
recipe is scored on is never read here.

    .venv/bin/python -m benchmarks.tune_recipes fsve CONVERTED OUT [--variants a,b] [--lrs ...]
    .venv/bin/python -m benchmarks.tune_recipes text CONVERTED OUT [--captions prompt,both]
        [--caption-weights 1,4] [--model spklip-tiny-minilm] [--class-run 4]
        [--set star.pool_grid=[3,4]] [--probe] [--jobs 1]
    .venv/bin/python -m benchmarks.tune_recipes probe CHECKPOINT OUT --dataset CONVERTED
    .venv/bin/python -m benchmarks.tune_recipes fewshot CHECKPOINT OUT [--data-seed 5]

``fsve``: spklip-fsve-tiny with the demo's recipe (``scripts.demo_spklip.DEMO_FSVE``) and
with each of its overrides taken back to the model config's default (:data:`FSVE_VARIANTS`),
trained on CONVERTED (the demo's dataset, data seed 0) with validation carved from train by
group; prints each run's best validation Top-1 and the epoch it came at. ``--lrs`` sweeps the
peak lr of the recipe instead.

``text``: spklip-tiny with each text recipe (``--captions``: what its texts are in training;
the demo's recipe is ``both``), validation Top-1 (class prompts) and t2v R@1 / R@10 on the
validation clips' own captions; ``--caption-weights`` runs ``both`` with each caption weight,
``--model`` another config (e.g. spklip-tiny-minilm), ``--class-run N`` batches made of
runs of N clips of one class (within-class negatives for the caption term), ``--set KEY=JSON``
a model config override. Each row also gives the lowest class's val Top-1 and t2v R@1 / R@10
with the candidates restricted to k validation scenes (``retrieval.by_groups``: compare
recipes at the same k); ``--probe`` adds the attribute probes (below) of each selected
checkpoint. The image size follows the dataset's (convert at another ``--size`` to train at
it).

``probe``: where caption attributes (size, texture, brightness, shape, start position) are
lost in a trained checkpoint: linear probes fitted on the run's training clips and scored on
its validation clips, for the video embedding, STAR-Net's last map averaged over space and
averaged to a 3x4 grid, and the caption's text embedding; t2v R@1 among the caption's own
class; how far one swapped attribute word moves a caption's embedding.

``fewshot``: the few-shot defaults (epochs, lr, BatchNorm adaptation) on a shifted-domain
dataset made for tuning only (``--style real``, sensor noise, ``--data-seed``, not the demo's
seed 1 nor bench_learning's 8): a grid of settings, each the mean Top-1 over K = 2, 4, 6, 8 and
two clip draws, scored on that tuning dataset's held-out clips.

Two runs train at a time (``--jobs``), one torch thread each.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
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


def _train_one(
    kind: str, data: str, out: str, name: str, seed: int, probe: bool = False, **kw: Any
) -> dict:
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
        row.update(val_summary(evaluate(result["best_checkpoint"], data, "val")))
        if probe:
            row["probe"] = {
                r["target"]: {k: v for k, v in r.items() if k != "target"}
                for r in probe_checkpoint(result["best_checkpoint"], data)["probes"]
            }
    return row


def val_summary(evaluation: dict) -> dict:
    """The figures of a validation ``evaluate`` result that the text sweep reports: t2v R@1 /
    R@10 on the whole pool, the lowest class's Top-1 and its name, and t2v R@1 / R@10 with the
    candidates restricted to k scenes (``val_k{k}_r1``, ``val_k{k}_r10``; every k reported)."""
    per_class = evaluation["zero_shot"]["per_class"]
    worst = min(per_class, key=per_class.get)
    retrieval = evaluation["retrieval"]
    out = {
        "val_t2v_r1": retrieval["t2v_R@1"],
        "val_t2v_r10": retrieval["t2v_R@10"],
        "val_min_class": per_class[worst],
        "val_min_class_name": worst,
    }
    for k, cell in sorted(retrieval.get("by_groups", {}).items(), key=lambda kv: int(kv[0])):
        out[f"val_k{k}_r1"] = cell["t2v_R@1"]
        out[f"val_k{k}_r10"] = cell["t2v_R@10"]
    return out


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


def _pool(jobs: int = 2) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))


def run_dir(name: str, seed: int) -> str:
    """The run folder of variant ``name`` and ``seed``: the name with every run of characters
    other than letters, digits, ".", "-" turned into "_" (no spaces or commas in paths)."""
    return f"{re.sub(r'[^A-Za-z0-9.-]+', '_', name)}_s{seed}"


def _train_all(kind: str, plan: list[tuple[str, dict]], args: argparse.Namespace) -> list[dict]:
    """Every (name, keyword arguments of train_recipe) of ``plan`` with every seed."""
    probe = bool(getattr(args, "probe", False))
    with _pool(args.jobs) as pool:
        jobs = [
            pool.submit(
                _train_one,
                kind,
                str(args.data),
                str(args.out / run_dir(n, s)),
                n,
                s,
                probe,
                **kw,
            )
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


def text_plan(
    captions: str,
    weights: str = "",
    model: str = "",
    class_run: int = 1,
    overrides: dict[str, Any] | None = None,
) -> list[tuple[str, dict]]:
    """(name, train_recipe keywords) of the text sweep: every caption mode of ``captions``,
    "both" with every caption weight of ``weights`` (empty: the recipe's), ``model`` (empty:
    the demo's), batches of ``class_run`` clips per class (1: shuffled) and the model
    config ``overrides`` for all."""
    base: dict[str, Any] = {"model": model} if model else {}
    suffix = ""
    if class_run > 1:
        base["class_run"] = class_run
        suffix = f", class runs of {class_run}"
    if overrides:
        base["model_overrides"] = dict(overrides)
        suffix += "".join(f", {k}={json.dumps(v)}" for k, v in overrides.items())
    plan = []
    for c in captions.split(","):
        if c == "both" and weights:
            for w in weights.split(","):
                name = f"both, caption_weight {float(w):g}{suffix}"
                plan.append(
                    (name, {"variant": {**base, "captions": c, "caption_weight": float(w)}})
                )
        else:
            plan.append((c + suffix, {"variant": {**base, "captions": c}}))
    return plan


def run_text(args: argparse.Namespace) -> list[dict]:
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    plan = text_plan(args.captions, args.caption_weights, args.model, args.class_run, overrides)
    if args.lrs:  # every text recipe at every peak lr
        lrs = [float(x) for x in args.lrs.split(",")]
        plan = [(f"{n}, lr {lr:g}", {**kw, "lr": lr}) for n, kw in plan for lr in lrs]
    rows = _train_all("spklip", plan, args)
    model = args.model or "spklip-tiny"
    _print_table(
        f"{model} text recipe on validation only (data {args.data}, seeds {args.seeds})",
        [
            ("captions", "variant"),
            *RUN_COLUMNS,
            ("lowest class", "val_min_class"),
            ("val t2v R@1", "val_t2v_r1"),
            ("val t2v R@10", "val_t2v_r10"),
            *[
                ("k={} R@{}".format(*m.groups()), m[0])
                for m in map(re.compile(r"val_k(\d+)_r(\d+)").fullmatch, rows[0])
                if m
            ],
            ("seconds", "seconds"),
        ],
        rows,
    )
    if args.probe:
        print("Linear probes on the selected checkpoints (val accuracy; majority in brackets)")
        features = ("embedding", "map mean", "map 3x4")
        print("| variant | seed | feature | " + " | ".join(PROBE_TARGETS) + " |")
        print("|" + "---|" * (3 + len(PROBE_TARGETS)))
        for r in rows:
            for f in features:
                cells = [
                    f"{r['probe'][t][f]:.3f} ({r['probe'][t]['majority']:.3f})"
                    for t in PROBE_TARGETS
                ]
                print(f"| {r['variant']} | {r['seed']} | {f} | " + " | ".join(cells) + " |")
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
    with _pool(args.jobs) as pool:
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


# What a synth caption says besides the action (spikesim.synth's caption grammar): the
# attribute probe reads each from the caption with these patterns.
CAPTION_ATTRIBUTES: dict[str, str] = {
    "size": r"\b(small|medium-sized|large)\b",
    "texture": r"\b(plain|striped|checkered|speckled|shaded|dotted)\b",
    "brightness": r"\b(bright|dark)\b (?:\w+) in the",
    "shape": r"\b(?:bright|dark) (\w+) in the",
    "position": r"in the (centre|(?:upper|middle|lower) (?:left|middle|right))",
}


PROBE_TARGETS = ("class", *CAPTION_ATTRIBUTES)


def caption_attributes(caption: str) -> dict[str, str | None]:
    """The attributes of :data:`CAPTION_ATTRIBUTES` a synth caption names (None: not found)."""
    found = {}
    for name, pattern in CAPTION_ATTRIBUTES.items():
        m = re.search(pattern, caption)
        found[name] = m.group(1) if m else None
    return found


def _linear_probe(x_train, y_train, x_test, y_test, weight_decay: float = 1e-3) -> float:
    """Accuracy on (x_test, y_test) of a multinomial logistic regression fitted on the
    standardised training features (L-BFGS, L2 penalty ``weight_decay``)."""
    import numpy as np
    import torch

    classes = sorted(set(y_train))
    index = {c: i for i, c in enumerate(classes)}
    mean, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt = torch.tensor((x_train - mean) / sd, dtype=torch.float64)
    yt = torch.tensor([index[c] for c in y_train])
    w = torch.zeros(xt.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + weight_decay * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    xs = torch.tensor((x_test - mean) / sd, dtype=torch.float64)
    with torch.no_grad():
        pred = (xs @ w + b).argmax(1).numpy()
    truth = np.array([index.get(c, -1) for c in y_test])
    return float((pred == truth).mean())


def _probe_features(model, dataset) -> dict[str, Any]:
    """Per clip of ``dataset``: the video embedding, STAR-Net's last feature map averaged over
    space (what attention pooling starts from, position left out) and the same map averaged
    to a 3x4 grid (position kept); float64 arrays (N, dim)."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from spklip.data import make_loader

    grabbed: list[torch.Tensor] = []
    hook = model.visual.star.spatial.attnpool.register_forward_pre_hook(
        lambda _m, args: grabbed.append(args[0].detach())
    )
    out: dict[str, list] = {"embedding": [], "map mean": [], "map 3x4": []}
    loader, _ = make_loader(dataset, batch_size=16, shuffle=False, workers=0)
    try:
        with torch.no_grad():
            for batch in loader:
                grabbed.clear()
                out["embedding"].append(model.encode_video(batch["spikes"]).numpy())
                fmap = grabbed[0].float()
                out["map mean"].append(fmap.mean((2, 3)).numpy())
                out["map 3x4"].append(F.adaptive_avg_pool2d(fmap, (3, 4)).flatten(1).numpy())
    finally:
        hook.remove()
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}


def probe_checkpoint(checkpoint: str | Path, dataset: str | Path) -> dict[str, Any]:
    """Which caption attributes a trained checkpoint's video side and text side carry, on the
    run's validation clips only (probes fitted on its training clips minus validation).

    Returns ``{"checkpoint", "train_clips", "val_clips", "probes": [{"target", "values",
    "majority", <feature>: val accuracy, ...}], "within_class_r1", "within_class_chance",
    "swaps": {attribute: (mean cosine, captions)}, "other_class_cosine"}``."""
    import numpy as np
    import torch

    from spklip.checkpoint import load_model
    from spklip.data import ValHoldout, checkpoint_dataset
    from spklip.evaluation.zeroshot import encode_texts

    torch.set_num_threads(1)
    model, ckpt = load_model(checkpoint)
    holdout = ValHoldout.from_record(ckpt.config["val_holdout"])
    sets = {
        split: checkpoint_dataset(
            model, ckpt, dataset, split=split, holdout=holdout, captions="caption"
        )
        for split in ("train", "val")
    }
    caps = {s: [d.eval_text(i) for i in range(len(d))] for s, d in sets.items()}
    labels = {s: [d.classes[int(c)] for c in d.labels] for s, d in sets.items()}
    attrs = {s: [caption_attributes(c) for c in caps[s]] for s in sets}
    feats = {s: _probe_features(model, d) for s, d in sets.items()}
    for s in sets:
        feats[s]["caption text"] = encode_texts(model, caps[s]).astype(np.float64)
    probes = []
    for target in PROBE_TARGETS:
        if target == "class":
            y = labels
        else:
            y = {s: [a[target] for a in attrs[s]] for s in sets}
        counts = {c: y["train"].count(c) for c in set(y["train"])}
        row = {
            "target": target,
            "values": len(counts),
            "majority": float(np.mean([c == max(counts, key=counts.get) for c in y["val"]])),
        }
        for name in feats["val"]:
            row[name] = _linear_probe(
                feats["train"][name], y["train"], feats["val"][name], y["val"]
            )
        probes.append(row)
    # Retrieval inside a class: each val caption against its class's val clips only.
    video, text = feats["val"]["embedding"], feats["val"]["caption text"]
    sims = text @ video.T
    lab = np.array(labels["val"])
    within = [
        float(np.argmax(np.where(lab == lab[i], sims[i], -np.inf)) == i) for i in range(len(lab))
    ]
    same = lab[:, None] == lab[None, :]
    # Text side: how far a caption moves when one attribute's word is swapped for another.
    swaps = {}
    for target in CAPTION_ATTRIBUTES:
        values = sorted({a[target] for a in attrs["train"] if a[target]})
        pairs = []
        for c, a in zip(caps["val"], attrs["val"], strict=True):
            if a[target] is None:
                continue
            other = values[(values.index(a[target]) + 1) % len(values)]
            pairs.append((c, re.sub(rf"\b{re.escape(a[target])}\b", other, c, count=1)))
        e0 = encode_texts(model, [p[0] for p in pairs])
        e1 = encode_texts(model, [p[1] for p in pairs])
        swaps[target] = (float((e0 * e1).sum(1).mean()), len(pairs))
    return {
        "checkpoint": str(ckpt.path),
        "train_clips": len(caps["train"]),
        "val_clips": len(caps["val"]),
        "probes": probes,
        "within_class_r1": float(np.mean(within)),
        "within_class_chance": float(np.mean(1.0 / same.sum(1))),
        "swaps": swaps,
        "other_class_cosine": float((text @ text.T)[~same].mean()),
    }


def run_probe(args: argparse.Namespace) -> list[dict]:
    """Print :func:`probe_checkpoint`'s tables for the checkpoint ``args.data``."""
    found = probe_checkpoint(args.data, args.dataset)
    rows = list(found["probes"])
    _print_table(
        f"Linear probes (logistic regression) on {found['checkpoint']}: fitted on its "
        f"training clips ({found['train_clips']}), accuracy on its validation clips "
        f"({found['val_clips']})",
        [("target", "target"), ("values", "values"), ("majority", "majority")]
        + [(k, k) for k in rows[0] if k not in ("target", "values", "majority")],
        rows,
    )
    within = found["within_class_r1"]
    print(
        f"t2v R@1 within the caption's class (val): {within:.3f} "
        f"(chance {found['within_class_chance']:.3f})"
    )
    rows.append({"target": "within-class t2v R@1", "value": within})
    print("caption moved by one word (val captions; mean cosine to the original):")
    for target, (cos, n) in found["swaps"].items():
        print(f"  {target}: {cos:.3f} ({n} captions)")
        rows.append({"target": f"swap {target}", "cosine": cos})
    print(f"  (two val captions of different classes: {found['other_class_cosine']:.3f})")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", choices=("fsve", "text", "fewshot", "probe"))
    parser.add_argument("data", type=Path, help="converted dataset (fewshot, probe: a checkpoint)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", default="0", help="training seeds (fewshot: clip draws)")
    parser.add_argument("--variants", default="", help=f"fsve: of {', '.join(FSVE_VARIANTS)}")
    parser.add_argument("--lrs", default="", help="fsve: sweep the peak lr instead; text: at each")
    parser.add_argument("--captions", default="prompt,both", help="text: caption modes")
    parser.add_argument(
        "--caption-weights", default="", help="text: caption_weight values for both"
    )
    parser.add_argument("--model", default="", help="text: model config (default: the demo's)")
    parser.add_argument(
        "--class-run", type=int, default=1, help="text: clips of one class drawn together"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="text: model override"
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="runs trained at a time (one torch thread each)"
    )
    parser.add_argument(
        "--probe", action="store_true", help="text: attribute probes of each selected checkpoint"
    )
    parser.add_argument("--data-seed", type=int, default=5, help="fewshot: tuning data seed")
    parser.add_argument("--dataset", type=Path, help="probe: the converted dataset it trained on")
    args = parser.parse_args()
    args.seed_list = [int(s) for s in args.seeds.split(",")]
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    args.out.mkdir(parents=True, exist_ok=True)
    sweeps = {"fsve": run_fsve, "text": run_text, "fewshot": run_fewshot, "probe": run_probe}
    rows = sweeps[args.sweep](args)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
