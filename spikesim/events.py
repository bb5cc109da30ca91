"""Event files (HDF5 in v2e's layout, streamed in and out by time) and event representations.

File layout (``format`` = ``spikesim-events/1``)::

    /           attrs: format, height, width, polarity ("1 = ON, 0 = OFF"), index_step_us,
                       spikesim_version
    /events     (N, 4) int64 rows [t us, x, y, p], time-sorted, p = 1 ON / 0 OFF (as v2e
                writes it), chunked by ``chunk_rows`` rows and compressed (gzip by default)
    /index      (K,) int64: index[k] = first row with t >= k * index_step_us; the last entry
                is N (K = t_last // step + 2), so a window of time reads only its own chunks

and beside it the JSON sidecar ``<stem>.json`` (as ``.dat`` files have): height, width, the
event count, first and last time, format, version and the caller's ``meta`` (encoder settings,
source, ...). The file is written under a temporary name; the sidecar is written first and the
``.h5`` renamed last, so its presence means the pair is complete. Files written by v2e itself
(``events`` only, uint32, no index) are read too, by bisection on their time column.

In memory, events are `spikesim.dvs.EVENT_DTYPE` arrays: t int64 us, x uint16, y uint16,
p int8 +1 / -1. Representations for models: `event_count_frames` (ON/OFF counts in time
bins), `event_grey_frame` (one normalised count image) and `event_time_bins` (signed or
voxel-grid time bins).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .checks import whole_number
from .dvs import EVENT_DTYPE
from .errors import EventsError
from .files import AtomicOutput, LazyReader, temp_file
from .sidecar import check_meta, publish, read_sidecar

__all__ = [
    "FORMAT",
    "EventFile",
    "EventWriter",
    "EventsError",
    "event_count_frames",
    "event_grey_frame",
    "event_time_bins",
    "read_events",
    "write_events",
]

FORMAT = "spikesim-events/1"
COMPRESSIONS = (None, "lzf", "gzip")
# 16384 rows x 32 bytes = 512 kB: a chunk fits h5py's 1 MB chunk cache, so neighbouring
# windows do not decompress it again.
CHUNK_ROWS = 1 << 14
INDEX_STEP_US = 10_000  # one index entry per 10 ms
_OWN_KEYS = ("height", "width", "events", "t_first_us", "t_last_us", "format", "spikesim_version")


def _check_events(events: Any, what: str = "events") -> np.ndarray:
    """A structured array with fields t, x, y, p -> `EVENT_DTYPE` (copied only if needed)."""
    if not isinstance(events, np.ndarray) or events.dtype.names is None:
        raise EventsError(
            f"{what} must be a structured array with fields t, x, y, p (spikesim.dvs.EVENT_DTYPE), "
            f"got {type(events).__name__} {getattr(events, 'dtype', '')}"
        )
    missing = [k for k in EVENT_DTYPE.names if k not in events.dtype.names]
    if missing or events.ndim != 1:
        raise EventsError(
            f"{what} must be 1-D with fields t, x, y, p; got shape {events.shape} and fields "
            f"{', '.join(events.dtype.names)}"
        )
    if events.dtype != EVENT_DTYPE:
        out = np.empty(len(events), EVENT_DTYPE)
        for k in EVENT_DTYPE.names:
            out[k] = events[k]
        return out
    return events


def _check_size(height: Any, width: Any) -> tuple[int, int]:
    return (
        whole_number(height, "height", minimum=1, maximum=2**16, error=EventsError),
        whole_number(width, "width", minimum=1, maximum=2**16, error=EventsError),
    )


def _check_inside(events: np.ndarray, height: int, width: int, what: str) -> None:
    if len(events) and (events["x"].max() >= width or events["y"].max() >= height):
        raise EventsError(
            f"{what}: an event at x={int(events['x'].max())} or y={int(events['y'].max())} lies "
            f"outside {height}x{width}; give the size the events were made at"
        )


# -- writing --------------------------------------------------------------------------------


class EventWriter(AtomicOutput):
    """Stream time-sorted events into an ``.h5`` event file (layout in the module docstring).

    ``append(events)`` any number of times (each chunk continuing in time after the last);
    ``close(meta=...)`` writes the sidecar, then renames the file into place. On an exception
    inside ``with`` (or ``abort()``) nothing is left under ``path``.

    >>> enc = DVSEncoder(240, 320, fps=30.0)
    >>> writer = EventWriter("clip.h5", 240, 320)
    >>> for chunk in chunks:
    ...     writer.append(enc.push(chunk))
    >>> writer.close(meta={"encoder": enc.settings(), "source": "clip.avi"})
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        height: int,
        width: int,
        *,
        meta: Mapping[str, Any] | None = None,
        compression: str | None = "gzip",
        chunk_rows: int = CHUNK_ROWS,
        index_step_us: int = INDEX_STEP_US,
    ) -> None:
        import h5py

        self.path = Path(path)
        if self.path.suffix == ".json":
            raise EventsError(f"{self.path}: an event file cannot end in .json (the sidecar)")
        self.height, self.width = _check_size(height, width)
        if compression not in COMPRESSIONS:
            raise EventsError(f"compression {compression!r} must be one of None, 'lzf', 'gzip'")
        self._chunk_rows = whole_number(chunk_rows, "chunk_rows", minimum=1, error=EventsError)
        self._step = whole_number(index_step_us, "index_step_us", minimum=1, error=EventsError)
        self._meta = self._check_meta(dict(meta or {}))
        self._rows = 0  # rows in the dataset
        self._pending: list[np.ndarray] = []  # (n, 4) int64 blocks not yet in the dataset
        self._pending_rows = 0
        self._t_first: int | None = None
        self._t_last: int | None = None
        self._index: list[int] = [0]  # index[k] = first row with t >= k * step, known so far
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = temp_file(self.path)
        os.close(fd)
        try:
            self._h5 = h5py.File(self._tmp, "w")
            self._ds = self._h5.create_dataset(
                "events",
                shape=(0, 4),
                maxshape=(None, 4),
                dtype=np.int64,
                chunks=(self._chunk_rows, 4),
                compression=compression,
                shuffle=compression is not None,  # byte shuffle: small ints compress far better
            )
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._closed = False

    def _check_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        own = {"height": self.height, "width": self.width}
        return check_meta(self.path, meta, own, _OWN_KEYS, EventsError)

    @property
    def events(self) -> int:
        """Events appended so far."""
        return self._rows + self._pending_rows

    def append(self, events: np.ndarray) -> None:
        """Append `EVENT_DTYPE` events, sorted by time and not before the last ones appended."""
        if self._closed:
            raise EventsError(f"{self.path}: the writer is already closed; open a new EventWriter")
        events = _check_events(events)
        if not len(events):
            return
        t = events["t"]
        _check_inside(events, self.height, self.width, str(self.path))
        if t[0] < 0 or (len(t) > 1 and (np.diff(t) < 0).any()):
            raise EventsError(f"{self.path}: events must have times >= 0, sorted; sort by t first")
        if self._t_last is not None and t[0] < self._t_last:
            raise EventsError(
                f"{self.path}: these events start at t={int(t[0])} us, before the last ones "
                f"appended (t={self._t_last} us); append in time order"
            )
        if (np.abs(events["p"].astype(np.int16)) != 1).any():
            raise EventsError(f"{self.path}: polarity p must be +1 or -1")
        first_row = self.events
        # Index entries for the boundaries k * step that these events reach.
        k_hi = int(t[-1]) // self._step
        ks = np.arange(len(self._index), k_hi + 1, dtype=np.int64)
        if ks.size:
            self._index.extend((first_row + np.searchsorted(t, ks * self._step)).tolist())
        block = np.empty((len(events), 4), np.int64)
        block[:, 0] = t
        block[:, 1] = events["x"]
        block[:, 2] = events["y"]
        block[:, 3] = events["p"] > 0  # v2e's polarity: 1 ON, 0 OFF
        self._pending.append(block)
        self._pending_rows += len(block)
        if self._t_first is None:
            self._t_first = int(t[0])
        self._t_last = int(t[-1])
        if self._pending_rows >= self._chunk_rows:
            self._flush(whole_chunks=True)

    def _flush(self, whole_chunks: bool) -> None:
        """Write pending rows to the dataset (only whole chunks unless at the end)."""
        if not self._pending_rows:
            return
        rows = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        n = len(rows) - len(rows) % self._chunk_rows if whole_chunks else len(rows)
        if n:
            self._ds.resize(self._rows + n, axis=0)
            self._ds[self._rows : self._rows + n] = rows[:n]
            self._rows += n
        rest = rows[n:]
        self._pending = [rest] if len(rest) else []
        self._pending_rows = len(rest)

    def sidecar(self) -> dict[str, Any]:
        """The sidecar as it would be written now."""
        return {
            "height": self.height,
            "width": self.width,
            "events": self.events,
            "t_first_us": self._t_first,
            "t_last_us": self._t_last,
            "format": FORMAT,
            "spikesim_version": __version__,
            **self._meta,
        }

    def close(self, meta: Mapping[str, Any] | None = None) -> Path:
        """Finish: flush, write the index and sidecar (with ``meta`` added to the writer's),
        rename the temporary file to ``path``; returns ``path``."""
        if self._closed:
            raise EventsError(f"{self.path}: the writer is already closed; open a new EventWriter")
        if meta:
            self._meta.update(self._check_meta(dict(meta)))
        self._closed = True
        try:
            self._flush(whole_chunks=False)
            # Boundaries after the last event: one final entry = N closes every window.
            self._index.append(self._rows)
            self._h5.create_dataset("index", data=np.asarray(self._index, np.int64))
            self._h5.attrs.update(
                format=FORMAT,
                height=self.height,
                width=self.width,
                polarity="1 = ON, 0 = OFF",
                index_step_us=self._step,
                spikesim_version=__version__,
            )
            self._h5.close()
            publish(self._tmp, self.path, self.sidecar())
        except BaseException:
            self._h5.close()
            self._tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Give up: remove the temporary file; nothing is left under ``path``."""
        if self._closed:
            return
        self._closed = True
        self._h5.close()
        self._tmp.unlink(missing_ok=True)


def write_events(
    path: str | os.PathLike[str],
    events: np.ndarray,
    height: int,
    width: int,
    *,
    meta: Mapping[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Write `EVENT_DTYPE` events (time-sorted) and the sidecar, atomically; returns ``path``.
    ``options``: compression, chunk_rows, index_step_us of `EventWriter`."""
    with EventWriter(path, height, width, meta=meta, **options) as writer:
        writer.append(events)
    return Path(path)


# -- reading --------------------------------------------------------------------------------


class _TimeColumn:
    """The t column of an index-less events dataset, for bisect (one small read per probe)."""

    def __init__(self, ds: Any) -> None:
        self._ds = ds

    def __len__(self) -> int:
        return self._ds.shape[0]

    def __getitem__(self, row: int) -> int:
        return int(self._ds[row, 0])


class EventFile(LazyReader):
    """An event file opened for reading: windows by time read only their own chunks.

    height and width come from the file (or sidecar); a v2e file without them needs both.
    ``f.read(t0, t1)`` gives the events with t0 <= t < t1 (us; None = open end);
    ``f.windows(step_us)`` yields consecutive windows; ``f.read_rows(a, b)`` reads by row.
    ``meta`` is the sidecar (empty if none). Pickles by path, so DataLoader workers can
    share one; the HDF5 handle is reopened lazily.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        height: int | None = None,
        width: int | None = None,
    ) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise EventsError(f"{self.path}: no such event file; check the path")
        self.meta: dict[str, Any] = read_sidecar(self.path)
        self._handle: Any = None
        try:
            with h5py.File(self.path, "r") as f:
                ds = f.get("events")
                if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.shape[1] != 4:
                    raise EventsError(
                        f"{self.path}: no 'events' dataset of shape (N, 4); not an event file"
                    )
                self._rows = int(ds.shape[0])
                attrs = dict(f.attrs)
                index = f.get("index")
                self._index = None if index is None else np.asarray(index[()], np.int64)
                self._step = int(attrs.get("index_step_us", 0))
        except OSError as err:
            raise EventsError(f"{self.path}: not a readable HDF5 file ({err})") from None
        size = {k: attrs.get(k, self.meta.get(k)) for k in ("height", "width")}
        for key, given in (("height", height), ("width", width)):
            if given is not None:
                if size[key] is not None and int(size[key]) != int(given):
                    raise EventsError(
                        f"{self.path}: {key} {given} disagrees with the file's {size[key]}; "
                        f"drop the {key}"
                    )
                size[key] = given
        if size["height"] is None or size["width"] is None:
            raise EventsError(
                f"{self.path}: the file does not record its size; pass height and width"
            )
        self.height, self.width = _check_size(int(size["height"]), int(size["width"]))
        if self._index is not None and (
            self._step < 1 or len(self._index) < 1 or self._index[-1] != self._rows
        ):
            raise EventsError(f"{self.path}: its time index is damaged; write the file again")

    # -- size -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._rows

    def __repr__(self) -> str:
        size = f"{self.height}x{self.width}"
        return f"EventFile({str(self.path)!r}, events={self._rows}, size={size})"

    @property
    def t_range(self) -> tuple[int, int] | None:
        """(first, last) event time in us, or None for an empty file."""
        if not self._rows:
            return None
        ds = self._dataset()
        return int(ds[0, 0]), int(ds[self._rows - 1, 0])

    # -- reading ----------------------------------------------------------------------------
    def _dataset(self) -> Any:
        if self._handle is None:
            import h5py

            self._handle = h5py.File(self.path, "r")
            if self._handle["events"].shape[0] != self._rows:
                self.close()
                raise EventsError(f"{self.path}: the file changed since it was opened; reopen it")
        return self._handle["events"]

    def _row_of(self, t: int) -> int:
        """First row with time >= t."""
        if self._index is None:
            return bisect.bisect_left(_TimeColumn(self._dataset()), t)
        k = max(t, 0) // self._step
        if k >= len(self._index) - 1:  # past the last event's step: every event is before t
            return self._rows
        lo, hi = int(self._index[k]), int(self._index[k + 1])
        if lo == hi:
            return lo
        times = self._dataset()[lo:hi, 0]
        return lo + int(np.searchsorted(times, t, side="left"))

    def read_rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Events of rows [start, stop) as `EVENT_DTYPE`."""
        stop = self._rows if stop is None else int(stop)
        start = int(start)
        if not 0 <= start <= stop <= self._rows:
            raise EventsError(
                f"{self.path}: rows [{start}, {stop}) are out of range for {self._rows} events"
            )
        out = np.empty(stop - start, EVENT_DTYPE)
        if stop > start:
            rows = self._dataset()[start:stop]
            out["t"] = rows[:, 0]
            out["x"] = rows[:, 1]
            out["y"] = rows[:, 2]
            out["p"] = np.where(rows[:, 3] > 0, 1, -1)
        return out

    def read(self, t0: int | None = None, t1: int | None = None) -> np.ndarray:
        """Events with t0 <= t < t1 (us; None = from the start / to the end), `EVENT_DTYPE`."""
        a = 0 if t0 is None else self._row_of(int(t0))
        b = self._rows if t1 is None else self._row_of(int(t1))
        return self.read_rows(a, max(a, b))

    def windows(
        self, step_us: int, t0: int | None = None, t1: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Consecutive windows [s, s + step_us) from t0 (default 0) up to t1 (default past the
        last event): yields (s, events). Reads one window at a time."""
        step_us = whole_number(step_us, "step_us", minimum=1, error=EventsError)
        span = self.t_range
        start = 0 if t0 is None else int(t0)
        stop = (span[1] + 1 if span else start) if t1 is None else int(t1)
        row = self._row_of(start)
        for s in range(start, stop, step_us):
            end = min(s + step_us, stop)
            nxt = self._row_of(end)
            yield s, self.read_rows(row, nxt)
            row = nxt


def read_events(
    path: str | os.PathLike[str], t0: int | None = None, t1: int | None = None
) -> np.ndarray:
    """Events of an event file with t0 <= t < t1 (us; None = open end), `EVENT_DTYPE`."""
    with EventFile(path) as f:
        return f.read(t0, t1)


# -- representations for models ---------------------------------------------------------------


def _bins(events: Any, height: int, width: int, n_bins: int, t0: Any, t1: Any):
    """Checked events inside [t0, t1) and the window: (events, t0, t1)."""
    events = _check_events(events)
    height, width = _check_size(height, width)
    n_bins = whole_number(n_bins, "n_bins", minimum=1, error=EventsError)
    _check_inside(events, height, width, "events")
    t = events["t"]
    start = (int(t.min()) if len(t) else 0) if t0 is None else int(t0)
    stop = (int(t.max()) + 1 if len(t) else start + 1) if t1 is None else int(t1)
    if stop <= start:
        raise EventsError(f"the window [{start}, {stop}) us is empty; give t1 > t0")
    keep = (t >= start) & (t < stop)
    return (events if keep.all() else events[keep]), start, stop


def event_count_frames(
    events: np.ndarray,
    height: int,
    width: int,
    n_bins: int,
    *,
    t0: int | None = None,
    t1: int | None = None,
) -> np.ndarray:
    """ON and OFF event counts per pixel in n_bins equal time bins of [t0, t1).

    events: `EVENT_DTYPE`; t0, t1 in us (default: first event, last event + 1 us); events
    outside are ignored. Returns int32 (n_bins, 2, H, W): channel 0 ON, 1 OFF; an event at t
    goes to bin (t - t0) * n_bins // (t1 - t0).
    """
    events, start, stop = _bins(events, height, width, n_bins, t0, t1)
    b = (events["t"] - start) * n_bins // (stop - start)
    c = (events["p"] < 0).astype(np.int64)
    flat = ((b * 2 + c) * height + events["y"]) * width + events["x"]
    counts = np.bincount(flat, minlength=n_bins * 2 * height * width)
    return counts.astype(np.int32).reshape(n_bins, 2, height, width)


def event_grey_frame(events: np.ndarray, height: int, width: int) -> np.ndarray:
    """The event-CLIP single frame: E(x, y) = number of events at (x, y) over both
    polarities and all times, divided by (max E + 1). Returns float32 (H, W) in [0, 1)."""
    events = _check_events(events)
    height, width = _check_size(height, width)
    _check_inside(events, height, width, "events")
    flat = events["y"].astype(np.int64) * width + events["x"]
    count = np.bincount(flat, minlength=height * width).reshape(height, width)
    return (count / (count.max() + 1.0)).astype(np.float32)


def event_time_bins(
    events: np.ndarray,
    height: int,
    width: int,
    n_bins: int,
    *,
    t0: int | None = None,
    t1: int | None = None,
    mode: str = "signed",
) -> np.ndarray:
    """Polarity summed in n_bins time bins of [t0, t1) (us; default: the events' span).

    mode "signed": bin (t - t0) * n_bins // (t1 - t0) gets p (+1 / -1), the sum of
    `event_count_frames`' ON - OFF. mode "voxel" (the voxel grid of Zhu et al., 2019): each
    event's time is scaled to tau = (n_bins - 1) (t - t0) / (t1 - 1 - t0) and p is shared
    between the two nearest bins b with weight max(0, 1 - |b - tau|), so the grid varies
    smoothly with event times. Returns float32 (n_bins, H, W).
    """
    if mode not in ("signed", "voxel"):
        raise EventsError(f"mode must be 'signed' or 'voxel', got {mode!r}")
    events, start, stop = _bins(events, height, width, n_bins, t0, t1)
    pixel = events["y"].astype(np.int64) * width + events["x"]
    p = events["p"].astype(np.float64)
    size = n_bins * height * width
    if mode == "signed":
        b = (events["t"] - start) * n_bins // (stop - start)
        grid = np.bincount(b * height * width + pixel, weights=p, minlength=size)
    else:
        span = max(stop - 1 - start, 1)
        tau = (n_bins - 1) * (events["t"] - start) / span
        lo = np.floor(tau).astype(np.int64)
        w_hi = tau - lo
        grid = np.bincount(lo * height * width + pixel, weights=p * (1.0 - w_hi), minlength=size)
        hi = np.minimum(lo + 1, n_bins - 1)  # weight 0 when lo is the last bin
        grid += np.bincount(hi * height * width + pixel, weights=p * w_hi, minlength=size)
    return grid.astype(np.float32).reshape(n_bins, height, width)
