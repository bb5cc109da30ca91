"""Convert a whole video dataset into spike streams: resumable, parallel, sharded.

Per clip the pipeline streams, so memory does not grow with clip length::

    iter_frames (decode, luma, resize + centre-crop) -> Interpolator.push (x factor)
    -> Encoder.push_packed (integrate-and-fire + bit-pack) -> DatWriter.write_packed

A clip with N decoded frames gives (N - 1) * factor + 1 spike frames. Each clip's encoder
seed comes from (run seed, clip path) only, so the bytes do not depend on the number of
workers, the shard or the order.

Output folder (``OUT``)::

    <class>/<stem>.dat + <stem>.json   spikes and sidecar (written by DatWriter, atomically)
    manifest.jsonl                     one row per converted clip, sorted by path
    manifest.shard-I-of-N.jsonl        the same, for the clips of one shard, once it finished
    classes.txt                        class names, line number - 1 = label
    config.yaml                        SpikeCV-style description (spike_h, spike_w, ...)
    failures.jsonl                     {"clip", "reason"} per clip that failed in the last run

Every file is written under a temporary name and renamed, so an interrupted run (Ctrl-C,
kill -9) leaves no half-written file; the next run deletes stale temporary files, skips
finished clips and converts the rest.
"""

from __future__ import annotations

import errno
import json
import math
import multiprocessing
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .dat import DatWriter, sidecar_path
from .datasets import SourceClip, SourceDataset, clip_seed, scan_source
from .encode import Encoder
from .errors import DatasetError, SpikesimError, VideoError
from .files import TMP_MARK, read_jsonl, write_atomic
from .interpolate import Interpolator
from .sizes import check_size, format_size
from .video import iter_frames, probe_video

MANIFEST = "manifest.jsonl"
FAILURES = "failures.jsonl"
CLASSES = "classes.txt"
CONFIG = "config.yaml"
MANIFEST_FIELDS = (
    "path",
    "class",
    "label",
    "split",
    "caption",
    "frames",
    "height",
    "width",
    "source",
    "factor",
)
_SHARD_MANIFEST = re.compile(r"^manifest\.shard-(\d+)-of-(\d+)\.jsonl$")
_TMP_MARK = TMP_MARK  # every temporary file is "<name>.tmp-<pid>-<rand>" (spikesim.files)
_MANIFEST_EVERY = 30.0  # seconds between incremental manifest rewrites
_STOP_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}  # no later clip can succeed either
_SPIKECV_RECOGNITION = 6  # SpikeCV's labeled_data_type code for recognition labels


@dataclass(frozen=True)
class ConvertSettings:
    """Everything that decides the bytes of a converted clip (besides the video itself)."""

    size: tuple[int, int] = (240, 320)
    factor: int = 10
    interp: str = "flow"
    threshold: float = 5.0
    init: str = "random"
    noise: str | None = None  # a preset name of spikesim.noise.NOISE_PRESETS, or None
    seed: int = 0
    flipud: bool = True

    def __post_init__(self) -> None:
        check_size(*self.size)
        if int(self.factor) != self.factor or self.factor < 1:
            raise SpikesimError(f"factor {self.factor} must be a whole number >= 1")
        if not self.threshold > 0:
            raise SpikesimError(f"threshold {self.threshold} must be > 0")
        if self.noise == "none":
            object.__setattr__(self, "noise", None)
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        object.__setattr__(self, "factor", int(self.factor))
        object.__setattr__(self, "threshold", float(self.threshold))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able record (``config.yaml`` -> ``conversion``)."""
        out = asdict(self)
        out["size"] = format_size(*self.size)
        return out

    def clip_meta(self, clip_seed: int, source: str) -> dict[str, Any]:
        """The sidecar keys that must match for a finished clip to be reused."""
        return {
            "height": self.size[0],
            "width": self.size[1],
            "flipud": self.flipud,
            "threshold": self.threshold,
            "init": self.init,
            "noise": self.noise,
            "seed": clip_seed,
            "run_seed": self.seed,
            "interp": self.interp,
            "factor": self.factor,
            "source": source,
        }


@dataclass(frozen=True)
class ClipResult:
    frames: int  # spike frames written
    source_frames: int  # frames decoded
    source_fps: float | None
    cpu_seconds: float = 0.0  # CPU time of the converting process for this clip


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
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # spent converting clips, summed over workers
    failures: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        rate = self.converted / self.seconds if self.seconds > 0 else 0.0
        return (
            f"converted {self.converted}, skipped {self.skipped} (already done), "
            f"failed {self.failed} of {self.total} clips; {self.spike_frames:,} spike frames "
            f"from {self.source_frames:,} source frames in {self.seconds:.1f} s "
            f"({rate:.2f} clips/s, {self.cpu_seconds:.1f} CPU-s in workers); "
            f"manifest: {self.manifest}"
        )


# ---------------------------------------------------------------------------- one clip


def convert_clip(
    video: str | os.PathLike,
    dat: str | os.PathLike,
    settings: ConvertSettings,
    *,
    seed: int,
    source: str,
) -> ClipResult:
    """Convert one video into ``dat`` (+ sidecar), streaming, atomically.

    ``seed`` is the clip's encoder seed (see ``datasets.clip_seed``); ``source`` the video's
    path as recorded in the sidecar. Raises ``VideoError`` for an unreadable or empty video;
    on any error no ``.dat`` is left under ``dat``.
    """
    cpu0 = time.process_time()
    video, dat = Path(video), Path(dat)
    height, width = settings.size
    info = probe_video(video)
    interpolator = Interpolator(settings.factor, settings.interp)
    encoder = Encoder(
        height,
        width,
        threshold=settings.threshold,
        init=settings.init,
        noise=settings.noise,
        seed=seed,
    )
    meta = {k: v for k, v in settings.clip_meta(seed, source).items() if k not in _WRITER_KEYS}
    fps = float(info.fps) if info.fps and math.isfinite(info.fps) and info.fps > 0 else None
    meta.update(encoder=encoder.settings(), source_fps=fps)
    # Remove an old result first: an interruption must not leave an old .dat beside a new sidecar.
    dat.unlink(missing_ok=True)
    n_source = 0
    with DatWriter(dat, height, width, flipud=settings.flipud, meta=meta) as writer:
        for frame in iter_frames(video, size=settings.size):
            chunk = interpolator.push(frame)
            writer.write_packed(encoder.push_packed(chunk, flipud=settings.flipud))
            n_source += 1
        if n_source == 0:
            raise VideoError(f"{video}: no frames could be decoded; the file is empty or corrupt")
        expected = (n_source - 1) * settings.factor + 1
        if writer.frames != expected:
            raise SpikesimError(
                f"{video}: wrote {writer.frames} spike frames, expected {expected} "
                f"from {n_source} source frames; this is a bug, please report it"
            )
        frames = writer.frames
    cpu = time.process_time() - cpu0
    return ClipResult(frames=frames, source_frames=n_source, source_fps=fps, cpu_seconds=cpu)


_WRITER_KEYS = ("height", "width", "flipud")  # the writer records these itself


def finished_clip(dat: Path, expected: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Whether ``dat`` is a finished conversion with the ``expected`` sidecar values.

    Returns ``(sidecar, None)`` for a finished clip; ``(None, mismatch)`` when it exists but
    was made with other settings (``mismatch`` names the first difference); ``(None, None)``
    when there is nothing usable: no ``.dat``, or a sidecar that is missing, unreadable or
    disagrees with the file size (such a clip is simply converted again).
    """
    if not dat.is_file():
        return None, None
    meta = _read_sidecar(dat)
    if meta is None:
        return None, None
    for key, want in expected.items():
        if meta.get(key) != want:
            return None, f"{key}={meta.get(key)!r} (now {want!r})"
    return meta, None


def _read_sidecar(dat: Path) -> dict[str, Any] | None:
    """The sidecar if it is readable and agrees with the file size, else None."""
    try:
        meta = json.loads(sidecar_path(dat).read_text(encoding="utf-8"))
        frame_bytes = meta["height"] * meta["width"] // 8
        if dat.stat().st_size != meta["frames"] * frame_bytes or meta["frames"] < 1:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta if isinstance(meta, dict) else None


# ---------------------------------------------------------------------------- workers


def _limit_threads() -> None:
    """Run each worker on one thread so N workers use N cores, not N x cores."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2
    import numba

    cv2.setNumThreads(1)
    numba.set_num_threads(1)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Convert in this process on one thread, as a worker does, and restore afterwards.

    Per clip the pipeline works on small chunks (``factor`` frames per source frame), where
    thread start-up and synchronisation cost more than they save, badly so on a busy
    machine; cores are used by running several workers.
    """
    import cv2
    import numba

    cv_threads, nb_threads = cv2.getNumThreads(), numba.get_num_threads()
    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        numba.set_num_threads(nb_threads)


def _init_worker() -> None:
    # Ctrl-C reaches the whole process group; the parent decides and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _limit_threads()


@dataclass(frozen=True)
class _Task:
    path: str  # clip path relative to the class root (the manifest key)
    video: str
    dat: str
    source: str
    seed: int


def _run_task(task: _Task, settings: ConvertSettings) -> tuple[str, ClipResult | None, str | None]:
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


def _mp_context() -> multiprocessing.context.BaseContext:
    # Never fork: a forked copy of a process with OpenCV / Numba threads can deadlock.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["spikesim.convert"])
        return ctx
    return multiprocessing.get_context("spawn")


def _terminate(executor: ProcessPoolExecutor) -> None:
    stop = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        proc.terminate()
    executor.shutdown(wait=True, cancel_futures=True)


def _run_parallel(
    tasks: list[_Task],
    settings: ConvertSettings,
    workers: int,
) -> Iterator[tuple[str, ClipResult | None, str | None]]:
    """Yield task results as they finish, with at most ``2 * workers`` clips in flight.

    A worker that dies (a crash inside a decoder, the OOM killer) breaks the pool. The clips
    that were in flight then become suspects and are run again one at a time in a fresh
    pool: the one that kills its worker alone is reported as failed, the others convert.
    Three lone crashes in a row mean the workers cannot run at all, which is an error.
    """
    pending = list(reversed(tasks))
    suspects: list[_Task] = []
    lone_crashes = 0
    while pending or suspects:
        executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=_mp_context(), initializer=_init_worker
        )
        in_flight: dict[Future, _Task] = {}
        try:
            while pending or suspects or in_flight:
                if suspects:
                    if not in_flight:  # isolate: one suspect alone in the pool
                        task = suspects.pop()
                        in_flight[executor.submit(_run_task, task, settings)] = task
                else:
                    while pending and len(in_flight) < 2 * workers:
                        task = pending.pop()
                        in_flight[executor.submit(_run_task, task, settings)] = task
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()  # raises BrokenProcessPool if a worker died
                    del in_flight[future]
                    lone_crashes = 0
                    yield result
        except BrokenProcessPool:
            executor.shutdown(wait=False, cancel_futures=True)
            outcomes, unfinished = [], []
            for future, task in in_flight.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    outcomes.append(future.result())  # finished before the crash
                else:
                    unfinished.append(task)
            if len(in_flight) == 1 and unfinished:
                lone_crashes += 1
                if lone_crashes >= 3:
                    raise SpikesimError(
                        "worker processes keep dying, whatever the clip; "
                        "run with --workers 1 to see why"
                    ) from None
                reason = "the worker process died while converting it (a crash in the decoder?)"
                outcomes.append((unfinished[0].path, None, reason))
            else:
                suspects.extend(reversed(unfinished))
            yield from outcomes
            continue
        except BaseException:
            _terminate(executor)
            raise
        executor.shutdown(wait=True)


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
) -> ConvertSummary:
    """Convert every clip of the dataset ``src`` into ``out`` (see the module docstring).

    ``workers`` processes convert clips in parallel (1: in this process). ``shard=(I, N)``
    converts one N-th of the clips and writes ``manifest.shard-I-of-N.jsonl``. Finished clips
    with the same settings are skipped (also with ``overwrite``); clips made with other
    settings raise ``DatasetError`` unless ``overwrite``, which converts them again. A clip
    that fails is recorded in the failures file and the run goes on. Returns a summary;
    ``summary.failed`` > 0 means some clips failed.
    """
    t0 = time.perf_counter()
    say = log or (lambda _msg: None)
    src, out = Path(src), Path(out)
    if workers < 1:
        raise SpikesimError(f"workers {workers} must be >= 1")
    # Fail early on an unknown interpolation method or noise preset, before any work.
    Interpolator(settings.factor, settings.interp)
    Encoder(*settings.size, threshold=settings.threshold, init=settings.init, noise=settings.noise)
    dataset = scan_source(src, splits_dir=splits_dir, split_index=split_index)
    if out.resolve() == dataset.root.resolve() or out.resolve() == src.resolve():
        raise DatasetError(f"{out}: the output folder must not be the dataset folder")
    selection = select_clips(dataset.clips, shard=shard, limit=limit)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, settings, overwrite)
    _remove_stale_temps(out, selection, shared=shard is None)

    counts = dataset.split_counts()
    say(
        f"{src}: {dataset.layout} layout, {len(dataset.clips)} clips in "
        f"{len(dataset.classes)} classes (train {counts['train']}, test {counts['test']}, "
        f"unused {counts['unused']}); splits: {dataset.split_source}"
    )

    rows: dict[str, dict[str, Any]] = {}  # manifest rows of finished clips, by clip path
    todo: list[_Task] = []
    mismatched: list[str] = []
    by_path = {c.path: c for c in dataset.clips}
    chosen = {c.path for c in selection}
    # A plain run lists every finished clip of the dataset (also those of earlier --limit or
    # shard runs); a shard lists its own clips.
    listed = selection if shard is not None else dataset.clips
    for clip in listed:
        seed = clip_seed(settings.seed, clip.path)
        dat = out / clip.out_path
        meta, mismatch = finished_clip(dat, settings.clip_meta(seed, clip.source))
        if meta is not None:
            rows[clip.path] = _manifest_row(clip, meta["frames"], settings)
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

    manifest = out / (MANIFEST if shard is None else _shard_name("manifest", shard))
    failures_path = out / (FAILURES if shard is None else _shard_name("failures", shard))
    # A shard's manifest appears when the shard has finished (merge relies on it); until
    # then its progress is saved beside it.
    progress_file = manifest if shard is None else manifest.with_suffix(".partial.jsonl")
    _write_classes(out, dataset)
    _write_config(out, dataset, settings)
    summary = ConvertSummary(
        out=out, manifest=manifest, failures_file=failures_path, total=len(selection)
    )
    summary.skipped = sum(1 for c in selection if c.path in rows)
    say(
        f"{summary.skipped} clips already converted, {len(todo)} to convert "
        f"with {workers} worker{'s' * (workers > 1)}"
        + (f" (shard {shard[0]}/{shard[1]})" if shard else "")
    )

    in_process = workers == 1 or len(todo) <= 1
    results = (
        (_run_task(task, settings) for task in todo)
        if in_process
        else _run_parallel(todo, settings, min(workers, len(todo)))
    )
    bar = _progress_bar(len(todo), progress)
    last_save = time.monotonic()
    stack = ExitStack()
    if in_process:
        stack.enter_context(_one_thread())
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
                rows[path] = _manifest_row(clip, result.frames, settings)
            bar.update(1)
            bar.set_postfix(failed=summary.failed, refresh=False)
            if time.monotonic() - last_save > _MANIFEST_EVERY:
                _write_jsonl(progress_file, _sorted_rows(rows))
                last_save = time.monotonic()
    except BaseException:
        # Interrupted: stop the workers, keep what is finished and listed, remove half files.
        results.close()
        bar.close()
        _write_jsonl(progress_file, _sorted_rows(rows))
        _remove_stale_temps(out, selection, shared=False)
        raise
    finally:
        stack.close()
    bar.close()
    _remove_stale_temps(out, selection, shared=False)  # left by workers that crashed
    _write_jsonl(manifest, _sorted_rows(rows))
    if progress_file != manifest:
        progress_file.unlink(missing_ok=True)
    _write_jsonl(failures_path, sorted(summary.failures, key=lambda r: r["clip"]))
    summary.seconds = time.perf_counter() - t0
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


def _shard_name(kind: str, shard: tuple[int, int]) -> str:
    return f"{kind}.shard-{shard[0]}-of-{shard[1]}.jsonl"


def _manifest_row(clip: SourceClip, frames: int, settings: ConvertSettings) -> dict[str, Any]:
    return {
        "path": clip.out_path,
        "class": clip.cls,
        "label": clip.label,
        "split": clip.split,
        "caption": clip.caption,
        "frames": int(frames),
        "height": settings.size[0],
        "width": settings.size[1],
        "source": clip.source,
        "factor": settings.factor,
    }


def _sorted_rows(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows.values(), key=lambda r: r["path"])


# ---------------------------------------------------------------------------- merging shards


def merge_shards(out: str | os.PathLike) -> tuple[Path, int]:
    """Merge ``manifest.shard-I-of-N.jsonl`` (all N) into ``manifest.jsonl`` and the shard
    failures into ``failures.jsonl``. Returns (manifest path, number of clips).

    Raises ``DatasetError`` when a shard is missing, shards of different N are mixed, or a
    listed ``.dat`` is missing.
    """
    out = Path(out)
    found: dict[int, set[int]] = {}
    for path in out.glob("manifest.shard-*-of-*.jsonl"):
        if m := _SHARD_MANIFEST.match(path.name):
            found.setdefault(int(m[2]), set()).add(int(m[1]))
    if not found:
        raise DatasetError(
            f"{out}: no manifest.shard-I-of-N.jsonl files; run `spikesim convert --shard I/N` "
            "for every shard first"
        )
    if len(found) > 1:
        raise DatasetError(
            f"{out}: shard manifests of different shard counts {sorted(found)}; "
            "delete the ones of the old layout"
        )
    ((count, have),) = found.items()
    missing = sorted(set(range(count)) - have)
    if missing:
        raise DatasetError(
            f"{out}: shards {missing} of {count} have not finished (no manifest); "
            f"run `spikesim convert --shard {missing[0]}/{count}` first"
        )
    rows: dict[str, dict[str, Any]] = {}
    failures: dict[str, dict[str, Any]] = {}
    for i in range(count):
        for row in read_jsonl(out / _shard_name("manifest", (i, count))):
            rows[row["path"]] = row
        fail_file = out / _shard_name("failures", (i, count))
        if fail_file.is_file():
            for row in read_jsonl(fail_file):
                failures[row["clip"]] = row
    for row in rows.values():
        if not (out / row["path"]).is_file():
            raise DatasetError(
                f"{out / row['path']}: listed in a shard manifest but missing; run that shard again"
            )
    converted_sources = {row["source"] for row in rows.values()}
    manifest = out / MANIFEST
    _write_jsonl(manifest, _sorted_rows(rows))
    _write_jsonl(
        out / FAILURES,
        sorted(
            (r for k, r in failures.items() if k not in converted_sources), key=lambda r: r["clip"]
        ),
    )
    return manifest, len(rows)


# ---------------------------------------------------------------------------- files


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _write_classes(out: Path, dataset: SourceDataset) -> None:
    write_atomic(out / CLASSES, "".join(f"{name}\n" for name in dataset.classes))


def _config(dataset: SourceDataset, settings: ConvertSettings) -> dict[str, Any]:
    from . import __version__

    counts = dataset.split_counts()
    return {
        # SpikeCV's dataset keys (spkData/datasets/<name>/config.yaml)
        "filename": dataset.name,
        "spike_h": settings.size[0],
        "spike_w": settings.size[1],
        "is_labeled": True,
        "labeled_data_type": [_SPIKECV_RECOGNITION],
        "labeled_data_suffix": "json",
        # ours
        "data_path": ".",
        "manifest": MANIFEST,
        "classes_file": CLASSES,
        "labels": list(dataset.classes),
        "num_classes": len(dataset.classes),
        "flipud": settings.flipud,
        "format": "spikesim-dat/1",
        "layout": dataset.layout,
        "splits": dataset.split_source,
        "source_clips": {"total": len(dataset.clips), **counts},
        "conversion": settings.as_dict(),
        "spikesim_version": __version__,
    }


def _write_config(out: Path, dataset: SourceDataset, settings: ConvertSettings) -> None:
    text = (
        "# Written by `spikesim convert`. SpikeCV-style keys first, then spikesim's.\n"
        "# Clips: manifest.jsonl (one JSON row per clip); labels: classes.txt.\n"
        + yaml.safe_dump(_config(dataset, settings), sort_keys=False, allow_unicode=True)
    )
    write_atomic(out / CONFIG, text)


def _check_config(out: Path, settings: ConvertSettings, overwrite: bool) -> None:
    path = out / CONFIG
    if overwrite or not path.is_file():
        return
    try:
        old = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("conversion")
    except (OSError, yaml.YAMLError, AttributeError):
        return  # damaged config: the per-clip sidecars decide
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
            head, mark, _ = entry.name.partition(_TMP_MARK)
            if mark and Path(head).stem in names and Path(head).suffix in (".dat", ".json"):
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    if shared:
        for entry in os.scandir(out):
            if _TMP_MARK in entry.name and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)
                removed += 1
    return removed
