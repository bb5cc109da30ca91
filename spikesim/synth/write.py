"""Writing the synthetic dataset to disk in UCF101 layout (videos, captions, split lists)."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..checks import format_size, is_whole
from ..errors import DatasetError, SpikesimError, VideoError
from .audio import assign_corruption, render_av_clip, write_clip_sound
from .classes import (
    CLIPS_PER_GROUP,
    MAX_GROUPS,
    SPLIT_DIR,
    SynthClip,
    class_names,
    clip_name,
    is_test_group,
)
from .render import (
    _check_args,
    render_clip,
)

# ---------------------------------------------------------------------------------------------
# The dataset on disk

RECORD = ".synth-files.json"  # the files a synth run wrote: all that --overwrite may delete
RECORD_FORMAT = "spikesim-synth-files/1"


def _write_avi(path: Path, frames: np.ndarray, fps: float) -> None:
    """MJPG .avi of uint8 (T, H, W, 3) RGB frames (OpenCV writes BGR)."""
    t, h, w, _ = frames.shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), float(fps), (w, h))
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot write MJPG .avi here; check the OpenCV build")
    try:
        for i in range(t):
            writer.write(cv2.cvtColor(frames[i], cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def _make_clip(
    folder: Path, cls: str, index: int, fps: float, corruption: str | None, **kw
) -> SynthClip:
    """Render clip ``index`` of ``cls``, write it under ``folder`` (with ``corruption`` not
    None, also its sound track ``<stem>.wav``, one modality degraded as it says); return the
    clean clip (its caption and paraphrases)."""
    (folder / cls).mkdir(exist_ok=True)
    video = folder / cls / clip_name(cls, index)
    if corruption is None:
        clip = render_clip(cls, index, **kw)
        _write_avi(video, clip.frames, fps)
        return clip
    av = render_av_clip(cls, index, corruption=corruption, fps=fps, **kw)
    _write_avi(video, av.frames, fps)
    write_clip_sound(video, av.sound, av.sample_rate)
    return av.clip


def _corruptions(
    names: list[str], clips_per_class: int, seed: int, corrupt: bool
) -> dict[tuple[str, int], str]:
    """Which modality each clip loses: a third "video", a third "audio", a third "none" within
    every class and split (``corrupt``), else "none" everywhere."""
    out = {}
    for c, cls in enumerate(names):
        for s, test in enumerate((False, True)):
            ks = [
                k for k in range(clips_per_class) if is_test_group(k // CLIPS_PER_GROUP + 1) == test
            ]
            labels = (
                assign_corruption(len(ks), seed * 1000 + c * 2 + s)
                if corrupt
                else ["none"] * len(ks)
            )
            out.update({(cls, k): str(label) for k, label in zip(ks, labels, strict=True)})
    return out


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an empty folder or, with ``overwrite``, an earlier synth."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder; choose another OUT")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise DatasetError(
            f"{out} is not empty; choose another OUT or pass overwrite (--overwrite)"
        )
    recorded = _recorded_files(out)
    if recorded is None:
        raise DatasetError(
            f"{out} holds no {RECORD} (the list of files synth wrote), so it is not a synth "
            "output that may be replaced; refusing to delete it, choose another OUT"
        )
    folders = {parent for name in recorded for parent in Path(name).parents}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if rel.as_posix() == RECORD:
            continue
        ours = (
            rel in folders
            if path.is_dir() and not path.is_symlink()
            else rel.as_posix() in recorded
        )
        if not ours:
            raise DatasetError(
                f"{out} holds {rel}, which synth did not write; refusing to delete it: move it "
                "out or choose another OUT"
            )


def _recorded_files(out: Path) -> set[str] | None:
    """The relative paths the synth that wrote ``out`` recorded, or None without a record."""
    try:
        record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def synthesize(
    out: str | os.PathLike,
    *,
    classes: int = 12,
    clips_per_class: int = 20,
    size: tuple[int, int] = (120, 160),
    frames: int = 32,
    fps: float = 25.0,
    style: str = "sim",
    seed: int = 0,
    overwrite: bool = False,
    workers: int | None = None,
    audio: bool = False,
    corrupt: bool = False,
) -> Path:
    """Write the synthetic action dataset to ``out`` in UCF101 layout; return ``out``.

    ``classes``: the first N of ``CLASS_SPECS`` (1..16). ``clips_per_class``: clips per class,
    ``CLIPS_PER_GROUP`` per group ``gXX`` (1..198). ``size``: (H, W) pixels. ``frames``: frames
    per clip (>= 8), the motion spans all of them. ``fps``: frame rate stored in the .avi.
    ``style``: ``"sim"`` (clean, high-contrast, large motions) or ``"real"`` (small motions, a
    shaded object that stands out from a static cluttered background, lower contrast than sim,
    camera noise and flicker). ``workers``: threads (default up to 4); the bytes do not
    depend on it. ``audio``: every clip also gets a sound track synchronised with its motion
    (``<stem>.wav`` beside the video, 16 kHz, ``spikesim.synth.audio``; a time-reversed class
    gets the reversed sound), named in ``captions.jsonl`` (``"audio"``). ``corrupt`` (with
    ``audio``): in every class and split a third of the clips have their picture degraded
    and a third their sound (``"corruption"`` in ``captions.jsonl``), so that neither
    modality alone solves the dataset.

    Same arguments give the same bytes; clip k of a class does not depend on
    ``clips_per_class`` or ``classes``. The folder is built beside ``out`` and renamed at
    the end. Raises ``DatasetError`` if ``out`` is a non-empty folder (with ``overwrite``, an
    earlier synth output is replaced), ``SpikesimError`` for bad arguments.
    """
    names = class_names(classes)
    max_clips = MAX_GROUPS * CLIPS_PER_GROUP
    if not is_whole(clips_per_class) or not 1 <= clips_per_class <= max_clips:
        raise SpikesimError(f"clips_per_class must be between 1 and {max_clips}")
    h, w = _check_args(size, frames, style, seed)
    if not isinstance(fps, (int, float, np.number)) or not fps > 0:
        raise SpikesimError(f"fps must be positive, got {fps!r}")
    if corrupt and not audio:
        raise SpikesimError("corrupt needs audio: the corrupted shares lose one of two modalities")
    out = Path(out)
    _prepare_out(out, overwrite)
    lost = _corruptions(names, clips_per_class, seed, corrupt)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.synth-partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        jobs = [(cls, k) for cls in names for k in range(clips_per_class)]
        kw = {"size": (h, w), "frames": frames, "style": style, "seed": seed}
        # Clips are independent, and OpenCV and NumPy release the GIL while they work.
        with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
            rendered = list(
                pool.map(
                    lambda job: _make_clip(tmp, *job, fps, lost[job] if audio else None, **kw),
                    jobs,
                )
            )
        captions, train, test = [], [], []
        for (cls, k), clip in zip(jobs, rendered, strict=True):
            rel = f"{cls}/{clip_name(cls, k)}"
            row = {"path": rel, "caption": clip.caption, "paraphrases": list(clip.paraphrases)}
            if audio:
                row.update(audio=str(Path(rel).with_suffix(".wav")), corruption=lost[(cls, k)])
            captions.append(json.dumps(row))
            if is_test_group(k // CLIPS_PER_GROUP + 1):
                test.append(rel)
            else:
                train.append(f"{rel} {names.index(cls) + 1}")
        split = tmp / SPLIT_DIR
        split.mkdir()
        _write_lines(split / "classInd.txt", [f"{i} {n}" for i, n in enumerate(names, 1)])
        _write_lines(split / "trainlist01.txt", train)
        _write_lines(split / "testlist01.txt", test)
        _write_lines(tmp / "captions.jsonl", captions)
        _write_lines(
            tmp / "README.txt", [_readme(names, clips_per_class, h, w, frames, fps, style, seed)]
        )
        # What synth wrote, so that `--overwrite` can tell its files from anything else.
        written = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        _write_lines(tmp / RECORD, [json.dumps({"format": RECORD_FORMAT, "files": written})])
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished folder into place; an earlier output is deleted only afterwards."""
    old = None
    if out.exists():
        if any(out.iterdir()):
            old = out.parent / f".{out.name}.synth-old-{os.getpid()}"
            out.rename(old)
        else:
            out.rmdir()
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _readme(names, clips, h, w, frames, fps, style, seed) -> str:
    return (
        f"Synthetic action dataset written by `spikesim synth` (style={style}, seed={seed}): "
        f"{len(names)} classes x {clips} clips, each an MJPG .avi of {frames} RGB frames of "
        f"{format_size(h, w)} pixels at {fps:g} fps, in UCF101 layout "
        f"(<Class>/v_<Class>_gXX_cYY.avi, split files in {SPLIT_DIR}/, groups gXX never "
        "straddle train and test). Each clip shows one textured object (random shape, texture, "
        "colour, size and position) doing the action its class names; several classes differ "
        "only by the direction of time (Grow/Shrink, RotateClockwise/RotateAnticlockwise, "
        "MoveLeft/MoveRight, ...) or only by speed (MoveRightSlow/MoveRight/MoveRightFast), and "
        "group gXX shows the same scene in every class, so only the motion tells classes apart. "
        "captions.jsonl holds one instance-level sentence per clip. Classes: "
        + ", ".join(names)
        + "."
    )
