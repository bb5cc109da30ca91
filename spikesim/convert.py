"""Convert a whole video dataset into spike streams: the run loop (resumable, parallel, sharded).

Each clip goes through ``spikesim.pipeline.convert_clip`` (decode -> interpolate -> encode ->
write, streaming), in this process or in the crash-isolating pool of ``spikesim.pool``.
Each clip's encoder seed comes from (run seed, clip path) only, so the bytes do not depend
on the number of workers, the shard or the order.

The output folder's layout is ``spikesim.converted.layout``.

Every file is written under a temporary name and renamed, so an interrupted run (Ctrl-C,
kill -9) leaves no half-written file; the next run deletes stale temporary files, skips
finished clips and converts the rest.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._version import __version__
from .converted.layout import (
    CLASSES,
    FAILURES,
    MANIFEST,
    ClipRecord,
    merge_shards,
    read_config,
    shard_name,
    write_classes,
    write_config,
    write_failures,
    write_manifest,
    write_spikecv_view,
)
from .converted.layout import CONFIG as CONFIG_FILE
from .encode import Encoder
from .errors import DatasetError, SpikesimError
from .executors import check_executor, run_dask
from .files import TMP_MARK, hold_lock
from .interpolate import Interpolator
from .pipeline import ClipResult, ConvertSettings, convert_clip, finished_clip
from .pool import one_thread, run_isolated
from .sources import SourceClip, SourceDataset, clip_seed, scan_source

__all__ = ["ConvertSettings", "ConvertSummary", "convert_dataset", "merge_shards", "parse_shard"]

_LOCK = ".convert.lock"  # held by the run converting into the folder (see hold_lock)
_MANIFEST_EVERY = 30.0  # seconds between incremental manifest rewrites
_STOP_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # no later clip can succeed either
# SpikeCV's labeled_data_type codes (LABEL_DATA_TYPE in its spkData/load_dat.py): 0 raw
# spike streams, 6 recognition. Both tasks apply: every clip is a raw stream with a class.
_SPIKECV_TASKS = [0, 6]


@dataclass
class ConvertSummary:
    """What a run did. ``failures`` holds ``{"clip", "reason"}`` rows."""

    out: Path
    manifest: Path
    failures_file: Path
    total: int = 0  # clips in this run's selection
    converted: int = 0
    skipped: int = 0
    failed: int = 0
    spike_frames: int = 0  # written in this run
    source_frames: int = 0  # decoded in this run
    repeats: int = 0  # source frames bridged as repeats in this run
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # spent converting clips, summed over workers
    failures: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.converted / self.seconds if self.seconds > 0 else 0.0
        return (
            f"converted {self.converted}, skipped {self.skipped} (already done), "
            f"failed {self.failed} of {self.total} clips; {self.spike_frames:,} spike frames "
            f"from {self.source_frames:,} source frames ({self.repeats:,} repeats bridged) "
            f"in {self.seconds:.1f} s "
            f"({rate:.2f} clips/s, {self.cpu_seconds:.1f} CPU-s in workers); "
            f"manifest: {self.manifest}"
        )


# ---------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _Task:
    path: str  # clip path relative to the class root (the manifest key)
    video: str
    dat: str
    source: str
    seed: int


Outcome = tuple[str, ClipResult | None, str | None]


def _run_task(settings: ConvertSettings, task: _Task) -> Outcome:
    """Worker entry: never raises for a bad clip, returns the reason instead."""
    try:
        result = convert_clip(task.video, task.dat, settings, seed=task.seed, source=task.source)
    except SpikesimError as err:
        return task.path, None, str(err)
    except OSError as err:
        if err.errno in _STOP_ERRNOS:
            raise  # a full disk fails every clip: stop the run instead
        return task.path, None, f"{type(err).__name__}: {err}"
    except Exception as err:  # a decoder or library failure on one clip must not stop the run
        return task.path, None, f"{type(err).__name__}: {err}"
    return task.path, result, None


def _crashed(task: _Task) -> Outcome:
    return task.path, None, "the worker process died while converting it (a crash in the decoder?)"


# ---------------------------------------------------------------------------- the run


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N) -> ``(I, N)``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 0 <= int(m[1]) < int(m[2]):
        raise SpikesimError(f"shard {text!r} is not I/N with 0 <= I < N, e.g. 0/4")
    return int(m[1]), int(m[2])


def select_clips(
    clips: Iterable[SourceClip], *, shard: tuple[int, int] | None = None, limit: int | None = None
) -> list[SourceClip]:
    """The clips of one shard (every N-th of the sorted list from I), then the first ``limit``."""
    chosen = sorted(clips, key=lambda c: c.path)
    if shard is not None:
        index, count = shard
        chosen = chosen[index::count]  # round robin: every shard gets a mix of classes
    if limit is not None:
        chosen = chosen[: max(int(limit), 0)]
    return chosen


def convert_dataset(
    src: str | os.PathLike,
    out: str | os.PathLike,
    settings: ConvertSettings,
    *,
    workers: int = 1,
    shard: tuple[int, int] | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    splits_dir: str | os.PathLike | None = None,
    split_index: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    executor: str = "local",
    address: Any = None,
) -> ConvertSummary:
    """Convert every clip of the dataset ``src`` into ``out`` (see the module docstring).

    ``workers`` processes convert clips in parallel (1: in this process). ``shard=(I, N)``
    converts one N-th of the clips and writes ``manifest.shard-I-of-N.jsonl``. Finished clips
    with the same settings are skipped (also with ``overwrite``); clips made with other
    settings raise ``DatasetError`` unless ``overwrite``, which converts them again. A clip
    that fails is recorded in the failures file and the run goes on. Returns a summary;
    ``summary.failed`` > 0 means some clips failed. ``executor="dask"`` sends the clips to
    the Dask cluster whose scheduler is at ``address`` instead of local processes (same
    bytes; ``workers`` is then unused; see ``spikesim.executors``).
    """
    t0 = time.perf_counter()
    say = log or (lambda _msg: None)
    src, out = Path(src), Path(out)
    if workers < 1:
        raise SpikesimError(f"workers {workers} must be >= 1")
    check_executor(executor, address)
    # Fail early on an unknown interpolation method or noise preset, before any work.
    Interpolator(settings.factor, settings.interp)
    Encoder(*settings.size, threshold=settings.threshold, init=settings.init, noise=settings.noise)
    dataset = scan_source(src, splits_dir=splits_dir, split_index=split_index)
    if out.resolve() == dataset.root.resolve() or out.resolve() == src.resolve():
        raise DatasetError(f"{out}: the output folder must not be the dataset folder")
    selection = select_clips(dataset.clips, shard=shard, limit=limit)
    out.mkdir(parents=True, exist_ok=True)
    # One run per folder: a plain run holds the folder's lock alone; shards of one folder run
    # side by side by design, so each shares the folder's lock and holds its own shard's.
    with ExitStack() as locks:
        what = "a spikesim convert"
        locks.enter_context(hold_lock(out / _LOCK, what=what, shared=shard is not None))
        if shard is not None:
            name = f".convert.shard-{shard[0]}-of-{shard[1]}.lock"
            locks.enter_context(hold_lock(out / name, what=f"{what} of shard {shard[0]}"))
        summary = _convert_locked(
            dataset, selection, src, out, settings, workers, shard, overwrite, progress, say,
            executor, address,
        )  # fmt: skip
    summary.seconds = time.perf_counter() - t0
    return summary


def _convert_locked(
    dataset: SourceDataset,
    selection: list[SourceClip],
    src: Path,
    out: Path,
    settings: ConvertSettings,
    workers: int,
    shard: tuple[int, int] | None,
    overwrite: bool,
    progress: bool,
    say: Callable[[str], None],
    executor: str = "local",
    address: Any = None,
) -> ConvertSummary:
    _check_config(out, settings, overwrite)
    _remove_stale_temps(out, selection, shared=shard is None)

    counts = dataset.split_counts()
    say(
        f"{src}: {dataset.layout} layout, {len(dataset.clips)} clips in "
        f"{len(dataset.classes)} classes (train {counts['train']}, test {counts['test']}, "
        f"unused {counts['unused']}); splits: {dataset.split_source}"
    )

    rows: dict[str, ClipRecord] = {}  # manifest records of finished clips, by clip path
    todo: list[_Task] = []
    mismatched: list[str] = []
    by_path = {c.path: c for c in dataset.clips}
    chosen = {c.path for c in selection}
    # A plain run lists every finished clip of the dataset (also those of earlier --limit or
    # shard runs); a shard lists its own clips.
    listed = selection if shard is not None else dataset.clips
    for clip in listed:
        seed = clip_seed(settings.seed, clip.path)
        dat = out / _clip_file(clip, settings)
        meta, mismatch = finished_clip(dat, settings.clip_meta(seed, clip.source))
        if meta is not None:
            rows[clip.path] = _record(clip, meta["frames"], settings, meta.get("repeat_frames"))
        elif clip.path in chosen:
            if mismatch is not None and not overwrite:
                mismatched.append(f"{clip.out_path}: {mismatch}")
            todo.append(
                _Task(clip.path, str(dataset.source_path(clip)), str(dat), clip.source, seed)
            )
    if mismatched:
        raise DatasetError(
            f"{out}: {len(mismatched)} clips were converted with other settings "
            f"(first: {mismatched[0]}); pass --overwrite to convert them again, "
            "or choose another --out"
        )

    manifest = out / (MANIFEST if shard is None else shard_name("manifest", shard))
    failures_path = out / (FAILURES if shard is None else shard_name("failures", shard))
    # A shard's manifest appears when the shard has finished (merge relies on it); until
    # then its progress is saved beside it.
    progress_file = manifest if shard is None else manifest.with_suffix(".partial.jsonl")
    write_classes(out, dataset.classes)
    write_config(out, _config(dataset, settings), _CONFIG_HEADER)
    summary = ConvertSummary(
        out=out, manifest=manifest, failures_file=failures_path, total=len(selection)
    )
    summary.skipped = sum(1 for c in selection if c.path in rows)
    where = (
        f"on the Dask cluster at {address}"
        if executor == "dask"
        else (f"with {workers} worker{'s' * (workers > 1)}")
    )
    say(
        f"{summary.skipped} clips already converted, {len(todo)} to convert {where}"
        + (f" (shard {shard[0]}/{shard[1]})" if shard else "")
    )

    run = functools.partial(_run_task, settings)
    in_process = executor == "local" and (workers == 1 or len(todo) <= 1)
    if executor == "dask":
        results = run_dask(run, todo, address, _crashed, log=say)
    elif in_process:
        results = (run(task) for task in todo)
    else:
        results = run_isolated(run, todo, min(workers, len(todo)), _crashed)
    bar = _progress_bar(len(todo), progress)
    last_save = time.monotonic()
    stack = ExitStack()
    if in_process:
        stack.enter_context(one_thread())
    try:
        for path, result, reason in results:
            clip = by_path[path]
            if result is None:
                summary.failed += 1
                summary.failures.append({"clip": clip.source, "reason": reason or "unknown"})
            else:
                summary.converted += 1
                summary.spike_frames += result.frames
                summary.source_frames += result.source_frames
                summary.cpu_seconds += result.cpu_seconds
                summary.repeats += result.repeats
                rows[path] = _record(clip, result.frames, settings, result.repeats)
            bar.update(1)
            bar.set_postfix(failed=summary.failed, refresh=False)
            if time.monotonic() - last_save > _MANIFEST_EVERY:
                write_manifest(progress_file, rows.values())
                last_save = time.monotonic()
    except BaseException:
        # Interrupted: stop the workers, keep what is finished and listed, remove half files.
        results.close()
        bar.close()
        # Clips a worker finished whose result had not reached this loop yet are on disk,
        # complete (their .dat appears last): list them too.
        for task in todo:
            if task.path not in rows:
                meta, _ = finished_clip(Path(task.dat), settings.clip_meta(task.seed, task.source))
                if meta is not None:
                    rows[task.path] = _record(
                        by_path[task.path], meta["frames"], settings, meta.get("repeat_frames")
                    )
        write_manifest(progress_file, rows.values())
        _remove_stale_temps(out, selection, shared=False)
        raise
    finally:
        stack.close()
    bar.close()
    _remove_stale_temps(out, selection, shared=False)  # left by workers that crashed
    write_manifest(manifest, rows.values())
    if shard is None and settings.sensor == "spike":  # shards link theirs when merged
        write_spikecv_view(out, rows.values())
    if progress_file != manifest:
        progress_file.unlink(missing_ok=True)
    write_failures(failures_path, summary.failures)
    return summary


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        unit="clip",
        desc="convert",
        disable=not enabled or total == 0,
        mininterval=0.5 if tty else 30.0,  # a log file gets a line every 30 s, not a flood
        smoothing=0.05,
        dynamic_ncols=tty,
    )


def _clip_file(clip: SourceClip, settings: ConvertSettings) -> str:
    """``<class>/<stem>.dat`` (spikes) or ``.h5`` (events), relative to the output folder."""
    return str(Path(clip.out_path).with_suffix(settings.suffix).as_posix())


def _record(
    clip: SourceClip, frames: int, settings: ConvertSettings, repeats: int | None
) -> ClipRecord:
    return ClipRecord(
        path=_clip_file(clip, settings),
        cls=clip.cls,
        label=clip.label,
        split=clip.split,
        caption=clip.caption,
        frames=int(frames),
        height=settings.size[0],
        width=settings.size[1],
        source=clip.source,
        factor=settings.factor,
        repeats=repeats if settings.drop_repeats and isinstance(repeats, int) else None,
        paraphrases=clip.paraphrases,
    )


# ---------------------------------------------------------------------------- files


def _config(dataset: SourceDataset, settings: ConvertSettings) -> dict[str, Any]:
    counts = dataset.split_counts()
    return {
        # SpikeCV's dataset keys (spkData/datasets/<name>/config.yaml)
        "filename": dataset.name,
        "spike_h": settings.size[0],
        "spike_w": settings.size[1],
        # False in SpikeCV's sense: no per-clip label files; the class is the folder name,
        # as its recognition dataset expects (train/<class>/*.dat, test/<class>/*.dat).
        "is_labeled": False,
        "labeled_data_type": _SPIKECV_TASKS,
        # ours
        "data_path": ".",
        "manifest": MANIFEST,
        "classes_file": CLASSES,
        "labels": list(dataset.classes),
        "num_classes": len(dataset.classes),
        "flipud": settings.flipud,
        "format": "spikesim-dat/1" if settings.sensor == "spike" else "spikesim-events/1",
        "sensor": settings.sensor,
        "layout": dataset.layout,
        "splits": dataset.split_source,
        "source_clips": {"total": len(dataset.clips), **counts},
        "conversion": settings.as_dict(),
        "spikesim_version": __version__,
    }


_CONFIG_HEADER = (
    "# Written by `spikesim convert`. SpikeCV-style keys first, then spikesim's.\n"
    "# Clips: manifest.jsonl (one JSON row per clip); labels: classes.txt.\n"
)


def _check_config(out: Path, settings: ConvertSettings, overwrite: bool) -> None:
    path = out / CONFIG_FILE
    if overwrite or not path.is_file():
        return
    old = read_config(path, strict=False).get("conversion")  # damaged: the sidecars decide
    if not isinstance(old, dict):
        return
    new = settings.as_dict()
    diff = [f"{k}={old.get(k)!r} (now {v!r})" for k, v in new.items() if old.get(k) != v]
    if diff:
        raise DatasetError(
            f"{out} holds a conversion with other settings: {', '.join(diff)}; "
            "pass --overwrite to convert again, or choose another --out"
        )


def _remove_stale_temps(out: Path, clips: Iterable[SourceClip], *, shared: bool) -> int:
    """Delete temporary files left by an interrupted run for ``clips`` (and, when
    ``shared``, the run-level files). Shards only touch their own clips' files, so shards
    running at the same time never delete each other's work in progress."""
    stems: dict[str, set[str]] = {}
    for clip in clips:
        stems.setdefault(clip.cls, set()).add(Path(clip.out_path).stem)
    removed = 0
    for cls, names in stems.items():
        folder = out / cls
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            head, mark, _ = entry.name.partition(TMP_MARK)
            if mark and Path(head).stem in names and Path(head).suffix in (".dat", ".h5", ".json"):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    if shared:
        for entry in os.scandir(out):
            if TMP_MARK in entry.name and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed
