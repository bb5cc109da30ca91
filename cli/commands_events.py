"""``spikesim events FILE --out OUT.png|OUT.mp4``: event frames for a person to look at."""

from __future__ import annotations

import math
from pathlib import Path

import click
import numpy as np

from spikesim import EventFile, FrameWriter, event_count_frames, write_atomic

from ._common import check_not_input, fail, overwrite_option, refuse_existing

# Net events (ON - OFF) in a window for full colour: v2e's default full scale
# (--dvs_vid_full_scale 2), so single events show but a busy edge does not saturate at once.
FULL_SCALE = 2
GREY = 128  # background: no event
MAX_TILES = 16  # windows in a PNG, evenly spread over the file
_GAP = 2  # pixels between tiles
_COLOURS = {".png"}
_VIDEOS = {".mp4", ".avi"}


def net_events(ef: EventFile, t0: int, t1: int) -> np.ndarray:
    """ON minus OFF events per pixel in [t0, t1) us, int32 (H, W)."""
    counts = event_count_frames(ef.read(t0, t1), ef.height, ef.width, 1, t0=t0, t1=t1)[0]
    return counts[0] - counts[1]


def grey_frame(net: np.ndarray) -> np.ndarray:
    """Net events (H, W) -> uint8 (H, W): grey 128, towards white for ON, black for OFF."""
    level = np.clip(net / FULL_SCALE, -1.0, 1.0)
    return np.round(GREY + 127.0 * level).astype(np.uint8)


def colour_frame(net: np.ndarray) -> np.ndarray:
    """Net events (H, W) -> BGR uint8 (H, W, 3): grey 128, towards red for ON, blue for OFF."""
    level = np.clip(net / FULL_SCALE, -1.0, 1.0)[..., None]
    grey = np.full((*net.shape, 3), float(GREY))
    red = np.array([0.0, 0.0, 255.0])  # BGR
    blue = np.array([255.0, 0.0, 0.0])
    out = np.where(level > 0, grey + level * (red - grey), grey + (-level) * (blue - grey))
    return np.round(out).astype(np.uint8)


def tile(images: list[np.ndarray]) -> np.ndarray:
    """(H, W, 3) images -> one grid image, about square, on a dark background."""
    h, w = images[0].shape[:2]
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * (h + _GAP) - _GAP, cols * (w + _GAP) - _GAP, 3), 32, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + _GAP) : r * (h + _GAP) + h, c * (w + _GAP) : c * (w + _GAP) + w] = image
    return grid


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="OUT.png (a grid of up to 16 windows spread over the file) or OUT.mp4 (every window)",
)
@click.option("--bin-ms", default=10.0, show_default=True, help="window per frame, milliseconds")
@overwrite_option
def events(file: Path, out: Path, bin_ms: float, overwrite: bool) -> None:
    """Draw the ON/OFF events of an event FILE (.h5) as frames, one per --bin-ms window.

    ON events are red (PNG) or white (video), OFF events blue or black, on grey; a pixel
    reaches full colour at 2 net events in its window.
    """
    suffix = out.suffix.lower()
    if suffix not in _COLOURS | _VIDEOS:
        fail(f"{out}: --out must end in .png, .mp4 or .avi")
    if not (math.isfinite(bin_ms) and bin_ms > 0):
        fail(f"--bin-ms must be a positive number of milliseconds, got {bin_ms}")
    check_not_input(out, file)
    refuse_existing(out, overwrite=overwrite)
    bin_us = max(1, round(bin_ms * 1000))
    with EventFile(file) as ef:
        span = ef.t_range
        n_windows = math.ceil((span[1] + 1) / bin_us) if span else 1
        if suffix in _COLOURS:
            import cv2

            picks = np.unique(np.linspace(0, n_windows - 1, min(n_windows, MAX_TILES)).round())
            starts = [int(k) * bin_us for k in picks]
            image = tile([colour_frame(net_events(ef, s, s + bin_us)) for s in starts])
            ok, data = cv2.imencode(".png", image)
            if not ok:
                fail(f"{out}: OpenCV could not encode the PNG")
            out.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out, data.tobytes())
            count = len(starts)
        else:
            with FrameWriter(out, fps=1000.0 / bin_ms) as writer:
                for s in range(0, n_windows * bin_us, bin_us):
                    writer.write(grey_frame(net_events(ef, s, s + bin_us)))
                count = writer.frames
    click.echo(f"wrote {out}: {count} frames of {bin_ms:g} ms from {len(ef)} events")


COMMANDS: list[click.Command] = [events]
