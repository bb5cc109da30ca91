"""`make demo`: the whole job end to end, through the command line as a user runs it.

1. `spikesim synth` the embedded default dataset, `spikesim convert` it at x10;
2. the shared real clips (UCF101 at x10, HMDB51 at x50) through `spikesim convert`, with TFI
   and TFP previews;
3. SPKLIP: `spklip train` (spklip-tiny) and `spklip eval` on the synthetic dataset;
4. `runs/demo/report.json`, `runs/demo/report.md` and figures `runs/demo/*.png`.

    .venv/bin/python scripts/demo.py [--out runs/demo] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLIPS = ROOT.parent / "shared" / "data" / "clips"
sys.path.insert(0, str(ROOT / "scripts"))
TFI_CONTEXT = 100  # frames on each side searched for the spikes around t


def sh(*args: str) -> float:
    """Run one CLI command, echo it, fail loudly; return its wall time in seconds."""
    print("$", " ".join(args), flush=True)
    start = time.perf_counter()
    done = subprocess.run([str(BIN / args[0]), *args[1:]], check=False)
    if done.returncode not in (0,):
        sys.exit(f"demo: `{' '.join(args)}` exited with {done.returncode}")
    return time.perf_counter() - start


def read_manifest(folder: Path) -> list[dict]:
    with open(folder / "manifest.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def tfi_strip(converted: Path, rows: list[dict], out_png: Path, window: int = 20) -> list[dict]:
    """One row per clip: TFP and TFI images at three times; returns per-clip statistics."""
    import spikesim

    stats = []
    fig, axes = plt.subplots(len(rows), 6, figsize=(15, 2.2 * len(rows)), squeeze=False)
    for ax_row, row in zip(axes, rows, strict=True):
        with spikesim.DatFile(converted / row["path"]) as f:
            n = len(f)
            times = [n // 4, n // 2, 3 * n // 4]
            rate = float(np.mean([f[t : t + 1].mean() for t in range(0, n, max(n // 64, 1))]))
            for j, t in enumerate(times):
                # TFI looks as far as the neighbouring spikes, so give it a wide context:
                # a dark pixel fires only every few dozen frames.
                w = min(TFI_CONTEXT, t, n - 1 - t)
                img_tfi = spikesim.tfi(f[t - w : t + w + 1], window=w)[0]
                h = min(window, t, n - 1 - t)
                img_tfp = spikesim.tfp(f[t - h : t + h + 1], half_window=h)[0]
                # autoscaled: with threshold 5, TFI never exceeds 255 / 5 = 51
                ax_row[2 * j].imshow(img_tfp, cmap="gray")
                ax_row[2 * j + 1].imshow(img_tfi, cmap="gray")
                ax_row[2 * j].set_title(f"TFP t={t}", fontsize=8)
                ax_row[2 * j + 1].set_title(f"TFI t={t}", fontsize=8)
        for ax in ax_row:
            ax.axis("off")
        ax_row[0].text(
            -0.05,
            0.5,
            Path(row["path"]).stem[:28],
            transform=ax_row[0].transAxes,
            ha="right",
            va="center",
            fontsize=7,
            rotation=90,
        )
        stats.append({"clip": row["path"], "frames": n, "firing_rate": rate})
    fig.tight_layout()
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return stats


def convert_real(out: Path) -> dict:
    """The shared real clips: UCF101 at x10, HMDB51 at x50, 240x320, TFI previews."""
    if not (CLIPS / "ucf101-mini").is_dir():
        print(f"demo: real clips not found at {CLIPS}; skipping that part")
        return {"skipped": f"{CLIPS} not found"}
    report: dict = {}
    for name, factor in (("ucf101-mini", 10), ("hmdb51-mini", 50)):
        dest = out / "real" / name
        seconds = sh(
            "spikesim",
            "convert",
            str(CLIPS / name),
            "--out",
            str(dest),
            "--factor",
            str(factor),
            "--size",
            "240x320",
            "--workers",
            "2",
        )
        rows = read_manifest(dest)
        stats = tfi_strip(dest, rows, out / f"tfi_{name}.png")
        first = dest / rows[0]["path"]
        sh("spikesim", "tfi", str(first), "--out", str(out / f"tfi_{name}.mp4"))
        report[name] = {
            "factor": factor,
            "clips": len(rows),
            "spike_frames": int(sum(r["frames"] for r in rows)),
            "seconds": round(seconds, 1),
            "per_clip": stats,
        }
    return report


def write_report(out: Path, report: dict) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# spikesim + spklip demo",
        "",
        f"Run on {report['date']} in {report['seconds']:.0f} s.",
        "",
    ]
    syn = report["synthetic"]
    lines += [
        "## Synthetic default dataset",
        "",
        f"{syn['classes']} classes, {syn['clips']} clips, converted at x{syn['factor']} to "
        f"{syn['size']} ({syn['spike_frames']:,} spike frames) in {syn['convert_seconds']:.0f} s.",
        "",
        "![TFI of synthetic clips](tfi_synthetic.png)",
        "",
    ]
    if "zero_shot" in report:
        zs, rt = report["zero_shot"], report["retrieval"]
        lines += [
            "## SPKLIP (spklip-tiny) on the held-out split",
            "",
            f"Trained in {report['train_seconds']:.0f} s.",
            "",
            f"- zero-shot Top-1 **{zs['top1']:.3f}**, Top-5 {zs['top5']:.3f}",
            "- text-to-video R@1/5/10: "
            f"{rt['t2v_R@1']:.3f} / {rt['t2v_R@5']:.3f} / {rt['t2v_R@10']:.3f}",
            "- video-to-text R@1/5/10: "
            f"{rt['v2t_R@1']:.3f} / {rt['v2t_R@5']:.3f} / {rt['v2t_R@10']:.3f}",
            "",
            "| class | top-1 |",
            "|---|---|",
        ]
        lines += [f"| {c} | {a:.2f} |" for c, a in sorted(zs["per_class"].items())]
        lines += [""]
        for png in sorted(out.glob("*.png")):
            if png.stem.startswith(("train", "confusion")):
                lines += [f"![{png.stem}]({png.name})", ""]
    real = report.get("real", {})
    if real and "skipped" not in real:
        lines += [
            "## Real clips",
            "",
            "| dataset | factor | clips | spike frames | seconds |",
            "|---|---|---|---|---|",
        ]
        for name, r in real.items():
            row = f"| {name} | x{r['factor']} | {r['clips']} | {r['spike_frames']:,} |"
            lines.append(f"{row} {r['seconds']} |")
        lines.append("")
        for name in real:
            lines += [f"![TFP and TFI of {name}](tfi_{name}.png)", ""]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="run the end-to-end demo")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "demo")
    parser.add_argument("--quick", action="store_true", help="a smaller run, for a smoke test")
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    start = time.perf_counter()
    import demo_spklip

    data = demo_spklip.DEMO_DATA
    classes, per_class = (12, data["clips_per_class"]) if not args.quick else (10, 4)
    size = "{}x{}".format(*data["size"])
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M")}

    sh(
        "spikesim",
        "synth",
        str(out / "synth"),
        "--classes",
        str(classes),
        "--clips-per-class",
        str(per_class),
        "--seed",
        "0",
    )
    convert_s = sh(
        "spikesim",
        "convert",
        str(out / "synth"),
        "--out",
        str(out / "converted"),
        "--factor",
        "10",
        "--size",
        "48x64",
        "--workers",
        "2",
    )
    rows = read_manifest(out / "converted")
    report["synthetic"] = {
        "classes": classes,
        "clips": len(rows),
        "factor": data["factor"],
        "size": size,
        "spike_frames": int(sum(r["frames"] for r in rows)),
        "convert_seconds": round(convert_s, 1),
    }
    by_class: dict[str, dict] = {}
    for r in rows:
        by_class.setdefault(r["class"], r)
    tfi_strip(out / "converted", list(by_class.values())[:6], out / "tfi_synthetic.png", window=10)

    report["real"] = convert_real(out)

    train = {"epochs": 2} if args.quick else {}
    report.update(demo_spklip.run(out / "converted", out, **train))
    report["seconds"] = round(time.perf_counter() - start, 1)
    write_report(out, report)
    print(f"demo: wrote {out / 'report.md'} and {out / 'report.json'} in {report['seconds']:.0f} s")


if __name__ == "__main__":
    main()
