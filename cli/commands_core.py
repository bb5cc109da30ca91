"""``spikesim info | encode | tfi | tfp``: one file at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import click
import numpy as np

from spikesim import (
    NOISE_PRESETS,
    DatFile,
    DatWriter,
    Encoder,
    FrameWriter,
    NpyWriter,
    iter_frames,
    iter_tfi,
    iter_tfp,
    probe_video,
)

from ._common import size_option

VIDEO_SUFFIXES = {".mp4", ".avi"}


def _open_dat(path: Path, size: tuple[int, int] | None) -> DatFile:
    height, width = size if size else (None, None)
    return DatFile(path, height=height, width=width)


@click.command()
@click.argument("dat", type=click.Path(path_type=Path))
@size_option(default=None, help="HxW of a bare .dat without sidecar (e.g. 250x400)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
def info(dat: Path, size: tuple[int, int] | None, as_json: bool) -> None:
    """Frames, size, duration, firing rate and sidecar of a .dat file."""
    with _open_dat(dat, size) as f:
        frames, height, width = f.shape
        spikes = 0
        for start in range(0, frames, 512):
            spikes += int(np.unpackbits(f.read_packed(start, min(start + 512, frames))).sum())
        rate = spikes / max(frames * height * width, 1)
        meta = dict(f.meta)
    fps = meta.get("source_fps")
    factor = meta.get("factor") or 1
    duration = frames / (fps * factor) if fps else None
    summary = {
        "path": str(dat),
        "frames": frames,
        "height": height,
        "width": width,
        "bytes": dat.stat().st_size,
        "source_seconds": duration,
        "firing_rate": rate,
        "spikes": spikes,
        "sidecar": meta or None,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{dat}")
    click.echo(f"  frames       {frames}")
    click.echo(f"  size         {height}x{width} (HxW)")
    click.echo(f"  bytes        {summary['bytes']:,}")
    if duration is not None:
        click.echo(f"  duration     {duration:.3f} s of source video ({fps:g} fps x{factor})")
    click.echo(f"  firing rate  {rate:.4f} spikes / pixel / frame ({spikes:,} spikes)")
    if meta:
        click.echo("  sidecar")
        for key, value in meta.items():
            click.echo(f"    {key}: {json.dumps(value)}")
    else:
        click.echo("  sidecar      none (bare file)")


@click.command()
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), help="output .dat [VIDEO stem].dat")
@size_option()
@click.option("--threshold", default=5.0, show_default=True, help="integrate-and-fire threshold")
@click.option("--init", type=click.Choice(["random", "zero"]), default="random", show_default=True)
@click.option(
    "--noise", type=click.Choice(sorted(NOISE_PRESETS)), default="none", show_default=True
)
@click.option("--seed", default=0, show_default=True, help="seed of every random draw")
@click.option("--flipud/--no-flipud", default=True, show_default=True, help="camera row order")
def encode(
    video: Path,
    out: Path | None,
    size: tuple[int, int],
    threshold: float,
    init: str,
    noise: str,
    seed: int,
    flipud: bool,
) -> None:
    """Encode one VIDEO into a spike stream, one spike frame per video frame.

    No interpolation: for dataset conversion with frame interpolation use `spikesim convert`.
    """
    out = out or video.with_suffix(".dat")
    probe = probe_video(video)
    height, width = size
    encoder = Encoder(height, width, threshold=threshold, init=init, noise=noise, seed=seed)
    meta = {
        **encoder.settings(),
        "source": str(video),
        "source_fps": probe.fps,
        "interp": "none",
        "factor": 1,
    }
    with DatWriter(out, height, width, flipud=flipud, meta=meta) as writer:
        for chunk in _chunks(iter_frames(video, size=size), 32):
            writer.write_packed(encoder.push_packed(chunk, flipud=flipud))
        frames = writer.frames
    click.echo(f"wrote {out}: {frames} frames of {height}x{width}")


def _chunks(frames: Iterator[np.ndarray], n: int) -> Iterator[np.ndarray]:
    """Group single (H, W) frames into (n, H, W) float32 blocks."""
    block: list[np.ndarray] = []
    for frame in frames:
        block.append(frame)
        if len(block) == n:
            yield np.stack(block)
            block = []
    if block:
        yield np.stack(block)


def _reconstruct_command(
    name: str, what: str, window_flag: str, window_help: str, iterate: Callable
) -> click.Command:
    """`tfi` and `tfp` differ only in the kernel and the name of their window option."""

    @click.command(name=name, help=f"Reconstruct images from a .dat file by {what}.")
    @click.argument("dat", type=click.Path(path_type=Path))
    @click.option(window_flag, "window", default=20, show_default=True, help=window_help)
    @size_option(default=None, help="HxW of a bare .dat without sidecar")
    @click.option(
        "--out",
        type=click.Path(path_type=Path),
        help=f"FILE.mp4, FILE.avi, or a folder of PNGs [DAT stem]_{name}.mp4",
    )
    @click.option("--npy", is_flag=True, help="also write the uint8 (T, H, W) array as .npy")
    @click.option("--fps", default=30.0, show_default=True, help="frame rate of the video")
    def command(
        dat: Path,
        window: int,
        size: tuple[int, int] | None,
        out: Path | None,
        npy: bool,
        fps: float,
    ) -> None:
        out = out or dat.with_name(f"{dat.stem}_{name}.mp4")
        is_video = out.suffix.lower() in VIDEO_SUFFIXES
        npy_path = out.with_suffix(".npy") if is_video else out.with_name(out.name + ".npy")
        with _open_dat(dat, size) as f:
            count = len(f) - 2 * window
            if count <= 0:
                raise click.BadParameter(
                    f"{dat} has {len(f)} frames, fewer than 2 x {window} + 1; use a smaller window"
                )
            with ExitStack() as stack:
                writer = stack.enter_context(FrameWriter(out, fps=fps))
                array = (
                    stack.enter_context(NpyWriter(npy_path, (count, f.height, f.width)))
                    if npy
                    else None
                )
                for chunk in iterate(f, window):
                    writer.write(chunk)
                    if array is not None:
                        array.write(chunk)
        click.echo(f"wrote {out}: {count} images" + (f" and {npy_path}" if npy else ""))

    return command


tfi = _reconstruct_command(
    "tfi",
    "texture from inter-spike interval (TFI)",
    "--window",
    "frames cropped at each end",
    iter_tfi,
)
tfp = _reconstruct_command(
    "tfp",
    "texture from playback (TFP, the spike count in a window)",
    "--half-window",
    "half of the averaging window, in frames",
    iter_tfp,
)

COMMANDS: list[click.Command] = [info, encode, tfi, tfp]
