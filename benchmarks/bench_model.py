"""SPKLIP model cost: parameters, FLOPs, forward and training-step time, peak memory.

    .venv/bin/python -m benchmarks.bench_model [--quick] [--full] [--threads 1]

- FLOPs (``torch.utils.flop_counter.FlopCounterMode``) of one clip through the video encoder
  of spklip-tiny (300x48x64 spike frames, binned by 10) and spklip-paper (250x240x320,
  counted on the meta device, so nothing is computed), and of one text through the text encoder.
- Time (the fastest of several runs after a warm-up: the least disturbed by other processes)
  and peak RSS of a forward (eval, no grad) and of a training step (forward, contrastive
  loss, backward, AdamW step) for spklip-tiny on its reference input and spklip-paper on a
  small input (64x80 frames: the same layers, fewer pixels).
- ``--full``: also the paper forward on the full 250x240x320 clip (a few hundred GFLOPs; tens
  of seconds to minutes on a 2-core CPU).

Each timing runs in a fresh child process (``--child``). Peak memory is the child's peak RSS
(VmHWM, reset once the model and the inputs exist) minus its RSS at that moment, and for
training minus AdamW's state: what a forward, or a training step (activations, gradients),
adds on top of the weights and the optimizer state.
Ratios (training step / forward, paper / tiny per clip) are measured side by side in one run;
on a shared machine read those, the absolute times are indicative.

The [train] side can call :func:`run_model` and add its own rows (e.g. the data loader).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks._report import header, table
from spklip.factory import create_model, get_model_config
from spklip.loss import contrastive_loss
from spklip.model import SPKLIP

ROOT = Path(__file__).resolve().parents[1]


# (label, model name, overrides, batch): the inputs timed by run_model
CASES = [
    ("spklip-tiny 300x48x64", "spklip-tiny", {}, 8),
    ("spklip-paper 250x64x80", "spklip-paper", {"image_size": [64, 80]}, 2),
]
FULL_CASE = ("spklip-paper 250x240x320", "spklip-paper", {}, 1)


def _status_mb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _reset_peak() -> float:
    """Reset the peak RSS where Linux allows it; return the RSS (MB) to measure from."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return _status_mb("VmRSS") or 0.0
    except OSError:  # not Linux: ru_maxrss keeps the earlier peak (an underestimate)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(model: SPKLIP, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    spikes = torch.rand(batch, cfg.frames, *cfg.image_size, generator=g) < 0.1
    tokens = torch.randint(3, 200, (batch, cfg.text.context_length), generator=g)
    tokens[:, 12:] = 0  # a typical caption is about ten pieces long
    return spikes, tokens


def child(args: argparse.Namespace) -> dict:
    """Time one (model, mode) in this process; print a JSON line."""
    torch.set_num_threads(args.threads) if args.threads else None
    overrides = json.loads(args.overrides)
    model = create_model(args.model, seed=0, **overrides)
    model.set_grad_checkpointing(args.grad_checkpointing)
    spikes, tokens = _inputs(model, args.batch)
    labels = torch.arange(args.batch)
    times = []
    if args.mode == "forward":
        model.eval()
        base = _reset_peak()
        with torch.no_grad():
            for _ in range(args.repeat + 1):
                t = time.perf_counter()
                model(spikes, tokens)
                times.append(time.perf_counter() - t)
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step() -> None:
            out = model(spikes, tokens)
            loss = contrastive_loss(
                out["video_features"], out["text_features"], out["logit_scale"], labels
            )["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        base = _reset_peak()
        for _ in range(args.repeat + 1):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        # AdamW's state (two floats per weight) appears in the first step and stays: a fixed
        # cost, taken out so the figure is what activations and gradients need.
        state_mb = sum(
            x.numel() * x.element_size()
            for st in opt.state.values()
            for x in st.values()
            if torch.is_tensor(x)
        )
        base += state_mb / 2**20
        peak = _peak_mb() - base
        # Paired timing in this one process (train, forward, train, ...): load from other
        # processes hits both alike, so their ratio is steadier than the times themselves.
        forward_times = []
        for _ in range(args.repeat):
            model.eval()
            with torch.no_grad():
                t = time.perf_counter()
                model(spikes, tokens)
                forward_times.append(time.perf_counter() - t)
            model.train()
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
        return {
            "seconds": min(times[1:]),
            "forward_seconds": min(forward_times),
            "peak_mb": peak,
            "threads": torch.get_num_threads(),
        }
    return {
        "seconds": min(times[1:]),  # the first run warms up oneDNN; the fastest is least disturbed
        "peak_mb": _peak_mb() - base,
        "threads": torch.get_num_threads(),
    }


def run_child(
    case: tuple, mode: str, repeat: int, threads: int, *, grad_checkpointing: bool = False
) -> dict:
    _, name, overrides, batch = case
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_model",
        "--child",
        "--model",
        name,
        "--overrides",
        json.dumps(overrides),
        "--batch",
        str(batch),
        "--mode",
        mode,
        "--repeat",
        str(repeat),
        "--threads",
        str(threads),
        *(["--grad-checkpointing"] if grad_checkpointing else []),
    ]
    # benchmarks is a package: the child runs from the repository root, as `make bench` does.
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root)
    if proc.returncode:
        raise SystemExit(f"child {name} {mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def count_flops(name: str, **overrides) -> dict[str, float]:
    """FLOPs of one clip through the video encoder (on the meta device: nothing runs) and of
    one text through the text encoder; with the parameter count.

    Counted in training mode: in eval mode PyTorch's fused Transformer-layer kernel, which the
    counter cannot see, would hide the attention layers (dropout is 0, so the maths is the same).
    """
    cfg = get_model_config(name, **overrides)
    with torch.device("meta"):
        model = SPKLIP(cfg).train()
        spikes = torch.zeros(1, cfg.frames, *cfg.image_size, dtype=torch.bool)
        tokens = torch.zeros(1, cfg.text.context_length, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.visual(spikes)
    by_module = counter.get_flop_counts()
    video = counter.get_total_flops()
    hsfe = sum(by_module.get("SpikeVideoEncoder.hsfe", {}).values())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        # the token checks read values, which meta tensors do not have: go below them
        model.text.check_tokens = lambda tokens: None
        model.text(tokens)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "video": video,
        "hsfe": hsfe,
        "text": counter.get_total_flops(),
    }


def run_model(*, quick: bool = False, full: bool = False, threads: int = 1) -> list[dict]:
    """Measure the model rows; print and return them (dicts for ``_report.table``)."""
    repeat = 2 if quick else 5
    rows: list[dict] = []
    for name, overrides in [("spklip-tiny", {}), ("spklip-paper", {})]:
        f = count_flops(name, **overrides)
        cfg = get_model_config(name, **overrides)
        size = f"{cfg.frames}x{cfg.image_size[0]}x{cfg.image_size[1]}"
        rows.append({"name": f"{name} parameters", "value": f["params"] / 1e6, "unit": "M"})
        rows.append(
            {
                "name": f"{name} video FLOPs / clip {size}",
                "value": f["video"] / 1e9,
                "unit": "GFLOP",
            }
        )
        rows.append(
            {
                "name": f"{name} of which HSFE",
                "value": f["hsfe"] / 1e9,
                "unit": "GFLOP",
                "baseline": f["video"] / 1e9,
                "baseline_name": "video",
                "ratio": f["hsfe"] / f["video"],
            }
        )
        rows.append(
            {"name": f"{name} text FLOPs / text", "value": f["text"] / 1e6, "unit": "MFLOP"}
        )

    per_clip = {}
    for case in CASES + ([FULL_CASE] if full else []):
        label, _, _, batch = case
        fwd = run_child(case, "forward", 1 if case is FULL_CASE else repeat, threads)
        per_clip[label] = fwd["seconds"] / batch
        rows.append(
            {
                "name": f"{label} forward B={batch}",
                "value": fwd["seconds"] * 1e3,
                "unit": "ms",
            }
        )
        rows.append({"name": f"{label} forward peak memory", "value": fwd["peak_mb"], "unit": "MB"})
        if case is FULL_CASE:
            continue
        step = run_child(case, "train", repeat, threads)
        rows.append(
            {
                "name": f"{label} training step B={batch}",
                "value": step["seconds"] * 1e3,
                "unit": "ms",
                "baseline": step["forward_seconds"] * 1e3,
                "baseline_name": "forward, same process",
                "ratio": step["seconds"] / step["forward_seconds"],
            }
        )
        rows.append(
            {"name": f"{label} training peak memory", "value": step["peak_mb"], "unit": "MB"}
        )
        if "paper" in label:
            ckpt = run_child(case, "train", repeat, threads, grad_checkpointing=True)
            rows.append(
                {
                    "name": f"{label} training step, HSFE grad checkpointing",
                    "value": ckpt["seconds"] * 1e3,
                    "unit": "ms",
                    "baseline": step["seconds"] * 1e3,
                    "baseline_name": "without",
                    "ratio": ckpt["seconds"] / step["seconds"],
                }
            )
            rows.append(
                {
                    "name": f"{label} training peak memory, HSFE grad checkpointing",
                    "value": ckpt["peak_mb"],
                    "unit": "MB",
                    "baseline": step["peak_mb"],
                    "baseline_name": "without",
                    "ratio": ckpt["peak_mb"] / step["peak_mb"],
                }
            )
    tiny, paper = (per_clip[c[0]] for c in CASES)
    rows.append(
        {
            "name": "paper (64x80) / tiny forward time per clip",
            "value": paper * 1e3,
            "unit": "ms/clip",
            "baseline": tiny * 1e3,
            "baseline_name": "tiny ms/clip",
            "ratio": paper / tiny,
        }
    )
    print(header(f"SPKLIP model (torch {torch.__version__}, {threads or 'default'} thread(s))"))
    print(table(rows))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--full", action="store_true", help="also the full-size paper forward")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["forward", "train"], help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--grad-checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
    else:
        run_model(quick=args.quick, full=args.full, threads=args.threads)


if __name__ == "__main__":
    main()
