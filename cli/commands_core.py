"""``spikesim info | encode | tfi | tfp``: one file at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click
import numpy as np

from spikesim import (
    VIDEO_SUFFIXES,
    ConvertSettings,
    DatError,
    DatFile,
    FrameWriter,
    NpyWriter,
    convert_clip,
    iter_tfi,
    iter_tfp,
    open_dataset,
    pick_spread,
    stretch,
    stretch_top,
)

from ._common import (
    check_not_input,
    encoder_options,
    fail,
    half_window_option,
    interp_option,
    overwrite_option,
    refuse_existing,
    seed_option,
    size_option,
)

# Bits set in each byte value: counts spikes in packed frames without unpacking them.
_POPCOUNT = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)
_COUNT_BYTES = 1 << 26  # bytes read per step when counting spikes: bounded whatever the size
_DATASET_CLIPS = 16  # clips whose firing rate `info` measures in a converted dataset


def _open_dat(path: Path, size: tuple[int, int] | None) -> DatFile:
    height, width = size if size else (None, None)
    try:
        return DatFile(path, height=height, width=width)
    except DatError as err:
        if "frame size is unknown" in str(err):
            raise DatError(
                f"{path}: no sidecar, so the frame size is unknown; pass --size HxW "
                "(e.g. --size 250x400 for the camera)"
            ) from None
        raise


def _count_spikes(read_packed: Callable[[int, int], np.ndarray], frames: int, frame_bytes: int):
    """Spikes in ``frames`` packed frames, read ``_COUNT_BYTES`` at a time."""
    step = max(1, _COUNT_BYTES // frame_bytes)
    spikes = 0
    for start in range(0, frames, step):
        spikes += int(_POPCOUNT[read_packed(start, min(step, frames - start))].sum(dtype=np.int64))
    return spikes


@click.command()
@click.argument("path", type=click.Path(path_type=Path, exists=True))
@size_option(default=None, help="HxW of a bare .dat without sidecar (e.g. 250x400)")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object instead of text")
def info(path: Path, size: tuple[int, int] | None, as_json: bool) -> None:
    """Summarise PATH: a .dat (frames, size, duration, firing rate, sidecar), a converted
    folder or a packed .h5 (clips, classes, splits, size, firing rate of a sample of clips)."""
    summary = (
        _dataset_summary(path) if path.is_dir() or _is_hdf5(path) else _dat_summary(path, size)
    )
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{path}")
    for key, value in summary.items():
        if key in ("path", "sidecar", "config"):
            continue
        click.echo(f"  {key.replace('_', ' '):<16} {value}")
    if summary.get("sidecar"):
        click.echo("  sidecar")
        for key, value in summary["sidecar"].items():
            click.echo(f"    {key}: {json.dumps(value)}")
    elif "sidecar" in summary:
        click.echo("  sidecar        none (bare file)")


def _is_hdf5(path: Path) -> bool:
    if not path.is_file():  # a FIFO would block the read below; DatFile names what it is
        return False
    with open(path, "rb") as fh:
        return fh.read(8) == b"\x89HDF\r\n\x1a\n"


def _dat_summary(path: Path, size: tuple[int, int] | None) -> dict[str, Any]:
    with _open_dat(path, size) as f:
        frames, height, width = f.shape
        spikes = _count_spikes(f.read_packed, frames, f.frame_bytes)
        meta = dict(f.meta)
    fps = meta.get("source_fps")
    factor = meta.get("factor") or 1
    duration = frames / (fps * factor) if fps else None
    return {
        "path": str(path),
        "kind": "spike stream (.dat)",
        "frames": frames,
        "height": height,
        "width": width,
        "bytes": path.stat().st_size,
        "source_seconds": duration,
        "firing_rate": spikes / max(frames * height * width, 1),
        "spikes": spikes,
        "sidecar": meta or None,
    }


def _dataset_summary(path: Path) -> dict[str, Any]:
    ds = open_dataset(path)
    frame_bytes = ds.height * ds.width // 8
    sample = pick_spread(len(ds), _DATASET_CLIPS)
    spikes = pixels = 0
    for i in sample:
        frames = ds.clips[i].frames
        spikes += _count_spikes(lambda a, n, i=i: ds.read_packed(i, a, n), frames, frame_bytes)
        pixels += frames * ds.height * ds.width
    splits: dict[str, int] = {}
    for clip in ds.clips:
        splits[clip.split] = splits.get(clip.split, 0) + 1
    return {
        "path": str(path),
        "kind": "packed dataset (.h5)" if path.is_file() else "converted folder",
        "clips": len(ds),
        "classes": len(ds.classes),
        "splits": ", ".join(f"{k} {v}" for k, v in sorted(splits.items())),
        "height": ds.height,
        "width": ds.width,
        "frames": sum(c.frames for c in ds.clips),
        "firing_rate": spikes / max(pixels, 1),
        "rate_measured_on": f"{len(sample)} clips spread over the classes",
        "config": ds.config,
    }


@click.command()
@click.argument("video", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="output .dat (its sidecar .json is written beside it)  [default: VIDEO with .dat]",
)
@size_option(help="spike frame size HxW (short side fitted, then centre-cropped)")
@click.option(
    "--factor",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="spike frames per source frame interval (1: one spike frame per video frame)",
)
@interp_option("none")
@encoder_options
@seed_option
@click.option(
    "--flipud/--no-flipud",
    default=True,
    show_default=True,
    help="camera row order (rows stored bottom-up); spikezoo always flips rows: keep the default",
)
@click.option(
    "--keep-repeats",
    is_flag=True,
    help="keep source frames that repeat their predecessor (default: bridge them; "
    "--interp none always keeps them)",
)
@overwrite_option
def encode(
    video: Path,
    out: Path | None,
    size: tuple[int, int],
    factor: int,
    interp: str,
    threshold: float,
    init: str,
    noise: str,
    seed: int,
    flipud: bool,
    keep_repeats: bool,
    overwrite: bool,
) -> None:
    """Encode one VIDEO into a spike stream (.dat + sidecar), through the same per-clip
    pipeline as `spikesim convert` (decode, interpolate, encode, write)."""
    out = out or video.with_suffix(".dat")
    check_not_input(out, video)
    check_not_input(out.with_suffix(".json"), video)
    if out.suffix.lower() != ".dat":
        fail(f"{out}: the output must be a .dat file")
    refuse_existing(out, out.with_suffix(".json"), overwrite=overwrite)
    settings = ConvertSettings(
        size=size,
        factor=factor,
        interp=interp,
        threshold=threshold,
        init=init,
        noise=noise,  # ConvertSettings reads the preset "none" as no noise
        seed=seed,
        flipud=flipud,
        drop_repeats=not keep_repeats,
    )
    result = convert_clip(video, out, settings, seed=seed, source=str(video))
    click.echo(f"wrote {out}: {result.frames} frames of {size[0]}x{size[1]}")


def _reconstruct_command(name: str, what: str, iterate: Callable) -> click.Command:
    """`tfi` and `tfp` differ only in the kernel."""

    @click.command(name=name, help=f"Reconstruct images from a .dat file by {what}.")
    @click.argument("dat", type=click.Path(path_type=Path, exists=True, dir_okay=False))
    @half_window_option
    @size_option(default=None, help="HxW of a bare .dat without sidecar")
    @click.option(
        "--out",
        type=click.Path(path_type=Path),
        help=f"FILE.mp4 (H.264 where PyAV is installed), FILE.avi (MJPG), or a folder of PNGs "
        f"[default: DAT stem + _{name}.mp4]",
    )
    @click.option("--npy", is_flag=True, help="also write the uint8 (T, H, W) array as .npy")
    @click.option(
        "--normalize",
        is_flag=True,
        help="stretch contrast for viewing: the 99.5th percentile of the first images' nonzero "
        "grey levels becomes white (raw TFI tops out near 255/threshold)",
    )
    @click.option("--fps", default=30.0, show_default=True, help="frame rate of the video")
    @overwrite_option
    def command(
        dat: Path,
        half_window: int,
        size: tuple[int, int] | None,
        out: Path | None,
        npy: bool,
        normalize: bool,
        fps: float,
        overwrite: bool,
    ) -> None:
        out = out or dat.with_name(f"{dat.stem}_{name}.mp4")
        is_video = out.suffix.lower() in VIDEO_SUFFIXES
        npy_path = out.with_suffix(".npy") if is_video else out.with_name(out.name + ".npy")
        for target in (out, npy_path):
            check_not_input(target, dat)
            check_not_input(target, dat.with_suffix(".json"))
        refuse_existing(out, *([npy_path] if npy else []), overwrite=overwrite)
        if overwrite and out.is_dir():
            import shutil

            shutil.rmtree(out)
        with _open_dat(dat, size) as f:
            count = len(f) - 2 * half_window
            if count <= 0:
                raise click.BadParameter(
                    f"{dat} has {len(f)} frames, fewer than 2 x {half_window} + 1; "
                    "use a smaller --half-window"
                )
            top = None
            with ExitStack() as stack:
                writer = stack.enter_context(FrameWriter(out, fps=fps))
                array = (
                    stack.enter_context(NpyWriter(npy_path, (count, f.height, f.width)))
                    if npy
                    else None
                )
                for chunk in iterate(f, half_window):
                    if array is not None:
                        array.write(chunk)
                    if normalize:
                        top = stretch_top(chunk) if top is None else top
                        chunk = stretch(chunk, top)
                    writer.write(chunk)
                # The video first: if it fails (a full disk), the .npy is still a temporary
                # and the stack deletes it, so no output is left without the other.
                writer.close()
        codec = f" ({writer.codec})" if writer.codec else ""
        click.echo(
            f"wrote {out}{codec}: {count} images"
            + (f", contrast x{255 / top:.1f}" if top else "")
            + (f" and {npy_path}" if npy else "")
        )

    return command


tfi = _reconstruct_command("tfi", "texture from inter-spike interval (TFI)", iter_tfi)
tfp = _reconstruct_command(
    "tfp", "texture from playback (TFP, the spike count in a window)", iter_tfp
)

COMMANDS: list[click.Command] = [info, encode, tfi, tfp]
