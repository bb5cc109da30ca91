"""``spikesim convert | synth | pack``: whole datasets."""

from __future__ import annotations

from pathlib import Path

import click

from spikesim import SpikesimError

from ._common import (
    EXIT_FAILED,
    check_not_input,
    encoder_options,
    fail,
    interp_option,
    limit_option,
    overwrite_option,
    refuse_existing,
    seed_option,
    size_option,
)


def _shard(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from spikesim import parse_shard

    try:
        return parse_shard(value)
    except SpikesimError as e:
        raise click.BadParameter(str(e)) from None


def _log(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.argument("src", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("converted"),
    show_default=True,
    help="output folder",
)
@click.option(
    "--factor", type=click.IntRange(min=1), help="spike frames per source frame interval (e.g. 10)"
)
@size_option(help="spike frame size HxW (short side fitted, then centre-cropped)")
@interp_option("flow")
@click.option(
    "--sensor",
    type=click.Choice(["spike", "dvs"]),
    default="spike",
    show_default=True,
    help="spike: a spike camera (integrate-and-fire, .dat); dvs: an event camera (v2e's pixel "
    "model, events in .h5)",
)
@click.option(
    "--dvs-preset",
    type=click.Choice(["clean", "noisy", "v2e"]),
    default="clean",
    show_default=True,
    help="with --sensor dvs: the pixel model's thresholds and noise (docs/events.md)",
)
@encoder_options
@seed_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="clips converted in parallel (processes)",
)
@click.option("--shard", callback=_shard, metavar="I/N", help="convert only shard I of N (0-based)")
@limit_option(what="clips (the first N of the sorted list, after --shard)")
@click.option("--overwrite", is_flag=True, help="convert again clips made with other settings")
@click.option(
    "--splits",
    "splits_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="folder with official split files (default: looked for under SRC)",
)
@click.option(
    "--split-index",
    type=click.IntRange(1, 3),
    default=1,
    show_default=True,
    help="which official split (1, 2 or 3)",
)
@click.option(
    "--merge", is_flag=True, help="merge finished shard manifests in --out, convert nothing"
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="local: --workers processes here; dask: the workers of a Dask cluster (--address)",
)
@click.option(
    "--address",
    metavar="ADDR",
    help="the Dask scheduler for --executor dask, e.g. tcp://10.0.0.1:8786",
)
@click.option(
    "--keep-repeats",
    is_flag=True,
    help="keep source frames that repeat their predecessor (default: bridge them by interpolation)",
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="progress bar")
def convert(
    src: Path,
    out: Path,
    factor: int | None,
    size: tuple[int, int],
    interp: str,
    sensor: str,
    dvs_preset: str,
    threshold: float,
    init: str,
    noise: str,
    seed: int,
    workers: int,
    shard: tuple[int, int] | None,
    limit: int | None,
    overwrite: bool,
    splits_dir: Path | None,
    split_index: int,
    merge: bool,
    executor: str,
    address: str | None,
    keep_repeats: bool,
    progress: bool,
) -> None:
    """Convert a UCF101 / HMDB51-style dataset SRC (class folders of videos) to spike streams.

    Writes OUT/<class>/<stem>.dat (or, with --sensor dvs, .h5 events) + .json,
    manifest.jsonl, classes.txt, config.yaml and failures.jsonl. Run the same command again
    to resume; finished clips are skipped.
    On a cluster, run one job per shard (--shard I/N), then `--merge`.
    Exit 0 when every clip converted, 1 when some failed (see failures.jsonl).
    """
    from spikesim import ConvertSettings, convert_dataset, merge_shards

    if merge:
        manifest, n = merge_shards(out)
        click.echo(f"merged {n} clips into {manifest}")
        return
    if factor is None:
        raise click.UsageError("--factor is required (e.g. --factor 10)")
    check_not_input(out, src)
    settings = ConvertSettings(
        size=size,
        factor=factor,
        interp=interp,
        threshold=threshold,
        init=init,
        noise=noise,  # ConvertSettings reads the preset "none" as no noise
        seed=seed,
        drop_repeats=not keep_repeats,
        sensor=sensor,
        dvs_preset=dvs_preset,
    )
    summary = convert_dataset(
        src,
        out,
        settings,
        workers=workers,
        shard=shard,
        limit=limit,
        overwrite=overwrite,
        splits_dir=splits_dir,
        split_index=split_index,
        progress=progress,
        log=_log,
        executor=executor,
        address=address,
    )
    click.echo(str(summary))
    if summary.failed:
        fail(f"{summary.failed} clips failed; reasons in {summary.failures_file}", EXIT_FAILED)


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="folder for the dataset (UCF101 layout)",
)
@click.option("--classes", type=int, default=12, show_default=True, help="number of classes")
@click.option(
    "--clips-per-class", type=int, default=20, show_default=True, help="clips of each class"
)
@size_option(default="120x160", help="video frame size HxW")
@click.option(
    "--video-frames", type=int, default=32, show_default=True, help="video frames per clip"
)
@click.option("--fps", type=float, default=25.0, show_default=True, help="video frame rate")
@click.option(
    "--style",
    type=click.Choice(["sim", "real"]),
    default="sim",
    show_default=True,
    help="sim: plain textured objects; real: cluttered scenes, small motion, sensor noise",
)
@seed_option
@click.option(
    "--audio",
    is_flag=True,
    help="also a sound track per clip, synchronised with its motion (<stem>.wav, 16 kHz)",
)
@click.option(
    "--corrupt",
    is_flag=True,
    help="with --audio: a third of each class's clips lose their picture, a third their sound",
)
@click.option("--overwrite", is_flag=True, help="replace an earlier synth output in --out")
def synth(
    out: Path,
    classes: int,
    clips_per_class: int,
    size: tuple[int, int],
    video_frames: int,
    fps: float,
    style: str,
    seed: int,
    audio: bool,
    corrupt: bool,
    overwrite: bool,
) -> None:
    """Write the synthetic action dataset (UCF101 layout, captions, splits) to --out."""
    from spikesim import synthesize

    path = synthesize(
        out,
        classes=classes,
        clips_per_class=clips_per_class,
        size=size,
        frames=video_frames,
        fps=fps,
        style=style,
        seed=seed,
        overwrite=overwrite,
        audio=audio,
        corrupt=corrupt,
    )
    click.echo(f"wrote {classes} classes x {clips_per_class} clips to {path}")


@click.command()
@click.argument("converted", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--out",
    "out_h5",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="the HDF5 file to write (.h5)",
)
@click.option(
    "--compression",
    type=click.Choice(["none", "lzf", "gzip"]),
    default="none",
    show_default=True,
    help="HDF5 filter for the spike bits",
)
@click.option(
    "--chunk-frames",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="frames per HDF5 chunk",
)
@overwrite_option
def pack(
    converted: Path, out_h5: Path, compression: str, chunk_frames: int, overwrite: bool
) -> None:
    """Pack a converted folder into one HDF5 file, read by spklip like the folder."""
    from spikesim import pack_dataset

    check_not_input(out_h5, converted)
    refuse_existing(out_h5, overwrite=overwrite)
    path = pack_dataset(
        converted,
        out_h5,
        compression=None if compression == "none" else compression,
        chunk_frames=chunk_frames,
        progress=True,
    )
    click.echo(f"packed {converted} into {path} ({path.stat().st_size:,} bytes)")


COMMANDS = [convert, synth, pack]
