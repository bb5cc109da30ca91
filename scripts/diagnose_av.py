"""Why does a single S-CMRL branch miss its clean clips? Non-spiking probes on the demo's
VALIDATION split (the test split is never read), a diagnostic only (no model is shipped).

    .venv/bin/python -m scripts.diagnose_av runs/tune-data [--audio key=value ...]
        [--vision-binning or|frames|count|or-pair|net] [--steps 4] [--epochs 40] [--seeds 2]
        [--spikes-from spikes] [--audio vision_input=data ...]

For each modality, on the same AV tensors the spiking model reads (``ConvertedAV``, the
demo's validation carve-out), two small ReLU CNNs are trained with Adam:

- ``order``: the T steps stacked as channels of one image (it sees the order of the steps);
- ``bag``: one CNN shared by the steps, its features averaged over the steps (blind to the
  order, as a network that only averages per-step features would be).

and, as a check that the probe is not fitting noise, ``order`` again with the training labels
shuffled. Printed: validation Top-1 overall and by corruption group ("none", "video": picture
degraded, "audio": sound degraded) and the final training Top-1, means over the seeds. If
``order`` fits a modality's intact clips and ``bag`` does not, the class is in the order of
the steps; if neither does, the input itself does not separate the classes.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scripts.demo_av import AV
from spklip.av_data import ConvertedAV


def _probe(channels: int, classes: int, width: int = 32) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, classes),
    )


class _Bag(nn.Module):
    """One probe per step (shared weights), logits averaged over the steps."""

    def __init__(self, channels: int, classes: int, steps: int) -> None:
        super().__init__()
        self.net, self.steps = _probe(channels // steps, classes), steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T*C, H, W)
        b, tc, h, w = x.shape
        y = self.net(x.view(b * self.steps, tc // self.steps, h, w))
        return y.view(b, self.steps, -1).mean(dim=1)


def _fit(kind, x, y, xv, yv, gv, classes, steps, epochs, seed, shuffle=False):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if shuffle:
        y = y[torch.as_tensor(rng.permutation(len(y)))]
    model = _probe(x.shape[1], classes) if kind == "order" else _Bag(x.shape[1], classes, steps)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y)).split(16):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        train_acc = float((model(x).argmax(1) == y).float().mean())
        hit = (model(xv).argmax(1) == yv).numpy()
    per = {g: float(hit[gv == g].mean()) for g in ("video", "none", "audio")}
    return float(hit.mean()), per, train_acc


def _stack(t: torch.Tensor) -> torch.Tensor:
    """(N, T, C, H, W) -> (N, T*C, H, W) float."""
    return t.float().flatten(1, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="a demo folder (its synth/ and converted/)")
    parser.add_argument(
        "--audio", nargs="*", default=[], help="AVSpikeSettings key=value (any field)"
    )
    parser.add_argument("--vision-binning", default=AV.vision_binning)
    parser.add_argument("--steps", type=int, default=AV.steps)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--modalities", default="audio,vision")
    parser.add_argument("--converted", default="converted", help="the conversion under DEMO")
    parser.add_argument(
        "--spikes-from",
        default="spikes",
        help="the spike-camera conversion under DEMO, read with vision_input spikes+dvs",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    over: dict[str, object] = {"vision_binning": args.vision_binning, "steps": args.steps}
    for item in args.audio:
        key, value = item.split("=")
        over[key] = type(getattr(AV, key))(value)
    settings = dataclasses.replace(AV, **over)
    start = time.perf_counter()
    spikes = args.demo / args.spikes_from if settings.vision_input == "spikes+dvs" else None
    source = ConvertedAV(
        args.demo / args.converted, args.demo / "synth", settings, spikes_from=spikes
    )
    train, val = source.train_val(0.2, seed=0)  # as the demo splits
    print(f"settings {settings}; tensors in {time.perf_counter() - start:.0f} s; "
          f"train {len(train)}, val {len(val)}", flush=True)  # fmt: skip
    gv = np.array(val.groups)
    classes = len(train.classes)
    print("| modality | probe | val Top-1 | picture degraded | both intact | sound degraded | "
          "train Top-1 |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    for modality in args.modalities.split(","):
        x = _stack(getattr(train, modality))
        xv = _stack(getattr(val, modality))
        density = float(x.mean())
        for kind, shuffle in (("order", False), ("bag", False), ("order", True)):
            runs = [
                _fit(
                    kind,
                    x,
                    train.labels,
                    xv,
                    val.labels,
                    gv,
                    classes,
                    settings.steps,
                    args.epochs,
                    seed,
                    shuffle,
                )
                for seed in range(args.seeds)
            ]
            top1 = np.mean([r[0] for r in runs])
            per = {g: np.mean([r[1][g] for r in runs]) for g in runs[0][1]}
            tr = np.mean([r[2] for r in runs])
            name = kind + (" (shuffled labels)" if shuffle else "")
            print(f"| {modality} (density {density:.3f}) | {name} | {top1:.3f} | "
                  f"{per['video']:.3f} | {per['none']:.3f} | {per['audio']:.3f} | {tr:.3f} |",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
