"""``.dat`` spike files, byte-compatible with SpikeCV and spikezoo (spec: ``docs/format.md``).

No header; frames back to back, each H*W/8 bytes; pixels row by row, byte j holds pixels
8j..8j+7 with bit k (least significant first) = pixel 8j+k; rows flipped vertically on write
by default (``flipud=True``, as the camera stores them) and flipped back on read. A JSON
sidecar ``<stem>.json`` records the size, frame count, flipud and how the spikes were made.

Spike arrays are ``(T, H, W)`` bool, time first; packed frames are ``(T, H*W//8)`` uint8 in
file order.
"""

from __future__ import annotations

import mmap
import operator
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._kernels import pack as _pack
from ._version import __version__
from .checks import check_size, frame_range
from .errors import DatError
from .files import AtomicOutput, LazyReader, file_kind, naming, temp_file
from .sidecar import check_meta, publish, read_sidecar, sidecar_path

__all__ = [
    "FORMAT",
    "DatFile",
    "DatWriter",
    "pack_frames",
    "read_dat",
    "sidecar_path",
    "unpack_frames",
    "write_dat",
]

FORMAT = "spikesim-dat/1"
# Keys the writer owns; a caller's meta may repeat height/width/flipud only if they agree.
_OWN_KEYS = ("height", "width", "frames", "flipud", "format", "spikesim_version")
# Below this many pixels (~440 frames of 240x320, a few ms of work) one thread is used:
# waking the pool costs 10 us on an idle machine but milliseconds on a busy one, and the
# kernels are bound by memory anyway. It also keeps DataLoader-sized reads off the pool,
# which the GNU OpenMP threading layer cannot use again in a forked worker.
_PARALLEL_PIXELS = 1 << 25
# Frames packed per write() call: bounds the temporary packed copy of a large array.
_WRITE_CHUNK = 1024


def _row_layout(height: int, width: int, flipud: bool) -> tuple[int, int] | None:
    """(rows, bytes per row) for the row kernels, or None when a byte may straddle flipped rows."""
    if width % 8 == 0:
        return height, width // 8
    if not flipud:
        return 1, height * width // 8  # unflipped: the whole frame is one run of bytes
    return None


def pack_frames(spikes: np.ndarray, *, flipud: bool = True) -> np.ndarray:
    """Pack spikes into ``.dat`` frames.

    spikes: (T, H, W) bool, or uint8 where any nonzero value is a spike; H*W a multiple of 8.
    Returns uint8 (T, H*W//8) in file order (rows flipped vertically if ``flipud``).
    """
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise DatError(f"spikes must be (T, H, W), got shape {spikes.shape}; add a time axis")
    if spikes.dtype not in (np.bool_, np.uint8):
        raise DatError(
            f"spikes must be bool or uint8 0/1, got {spikes.dtype}; convert with .astype(bool)"
        )
    n_frames, height, width = spikes.shape
    check_size(height, width, error=DatError)
    spikes = np.ascontiguousarray(spikes).view(np.uint8)
    out = np.empty((n_frames, height * width // 8), dtype=np.uint8)
    if n_frames == 0:
        return out
    layout = _row_layout(height, width, flipud)
    parallel = spikes.size >= _PARALLEL_PIXELS
    if layout is None:
        kernel = _pack._pack_bits if parallel else _pack._pack_bits_serial
        kernel(spikes, bool(flipud), out)
    else:
        words = spikes.reshape(n_frames, height * width).view(np.uint64)
        kernel = _pack._pack_rows if parallel else _pack._pack_rows_serial
        kernel(words, layout[0], layout[1], bool(flipud), out)
    return out


def unpack_frames(
    packed: np.ndarray, height: int, width: int, *, flipud: bool = True
) -> np.ndarray:
    """Unpack ``.dat`` frames.

    packed: uint8 (T, H*W//8) in file order. Returns bool (T, H, W) in image order (rows
    flipped back if ``flipud``).
    """
    check_size(height, width, error=DatError)
    frame_bytes = height * width // 8
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != frame_bytes:
        raise DatError(
            f"packed frames must be uint8 (T, {frame_bytes}) for {height}x{width}, "
            f"got {packed.dtype} {packed.shape}"
        )
    packed = np.ascontiguousarray(packed)
    n_frames = packed.shape[0]
    out = np.empty((n_frames, height, width), dtype=np.bool_)
    if n_frames == 0:
        return out
    layout = _row_layout(height, width, flipud)
    parallel = out.size >= _PARALLEL_PIXELS
    if layout is None:
        kernel = _pack._unpack_bits if parallel else _pack._unpack_bits_serial
        kernel(packed, bool(flipud), out.view(np.uint8))
    else:
        pixels = out.reshape(n_frames, height * width).view(np.uint8)
        kernel = _pack._unpack_rows if parallel else _pack._unpack_rows_serial
        kernel(packed, layout[0], layout[1], bool(flipud), pixels)
    return out


class DatWriter(AtomicOutput):
    """Stream frames into a ``.dat``; the file appears under its name only when complete.

    Frames go to a temporary file in the same folder. On a clean exit (or ``close()``) the
    sidecar ``<stem>.json`` is written (with the final frame count), then the temporary file is
    renamed to ``path``: the ``.dat`` appears last, so its presence means the pair is complete.
    On an exception (or ``abort()``) the temporary file is removed and no ``.dat`` is left.

    >>> with DatWriter("clip.dat", 240, 320, meta={"threshold": 5.0}) as w:
    ...     w.write(spikes)            # bool (t, 240, 320), any number of times
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        height: int,
        width: int,
        *,
        flipud: bool = True,
        meta: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix == ".json":
            raise DatError(f"{self.path}: a .dat path cannot end in .json (that is the sidecar)")
        if not overwrite:
            for existing in (self.path, sidecar_path(self.path)):
                if existing.exists():
                    raise DatError(
                        f"{existing} exists; pass overwrite=True (--overwrite) to replace it"
                    )
        check_size(height, width, error=DatError)
        self.height = int(height)
        self.width = int(width)
        self.flipud = bool(flipud)
        self.frame_bytes = self.height * self.width // 8
        self._meta = self._check_meta(dict(meta or {}))
        self._frames = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = temp_file(self.path)
        self._fh = os.fdopen(fd, "wb")
        self._closed = False

    def _check_meta(self, meta: dict[str, Any]) -> dict[str, Any]:
        own = {"height": self.height, "width": self.width, "flipud": self.flipud}
        return check_meta(self.path, meta, own, _OWN_KEYS, DatError)

    @property
    def frames(self) -> int:
        """Frames written so far."""
        return self._frames

    def write(self, spikes: np.ndarray) -> None:
        """Append spikes: bool (t, H, W) (or uint8, nonzero = spike)."""
        self._check_open()
        spikes = np.asarray(spikes)
        if spikes.ndim != 3 or spikes.shape[1:] != (self.height, self.width):
            raise DatError(
                f"{self.path}: expected spikes (t, {self.height}, {self.width}), got {spikes.shape}"
            )
        for a in range(0, spikes.shape[0], _WRITE_CHUNK):
            self.write_packed(pack_frames(spikes[a : a + _WRITE_CHUNK], flipud=self.flipud))

    def write_packed(self, packed: np.ndarray) -> None:
        """Append packed frames: uint8 (t, H*W//8), already in file order (same flipud)."""
        self._check_open()
        packed = np.asarray(packed)
        if packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[1] != self.frame_bytes:
            raise DatError(
                f"{self.path}: expected packed uint8 (t, {self.frame_bytes}), "
                f"got {packed.dtype} {packed.shape}"
            )
        try:  # buffered: a failed or short write raises here or at close()
            self._fh.write(np.ascontiguousarray(packed).data)
        except OSError as err:
            self.abort()
            raise naming(err, self.path) from None
        self._frames += packed.shape[0]

    def update_meta(self, **values: Any) -> None:
        """Add or change sidecar keys before :meth:`close` (e.g. counts known at the end)."""
        self._check_open()
        self._meta = self._check_meta({**self._meta, **values})

    def _check_open(self) -> None:
        if self._closed:
            raise DatError(f"{self.path}: the writer is already closed; open a new DatWriter")

    def sidecar(self) -> dict[str, Any]:
        """The sidecar as it will be written now."""
        return {
            "height": self.height,
            "width": self.width,
            "frames": self._frames,
            "flipud": self.flipud,
            "format": FORMAT,
            "spikesim_version": __version__,
            **self._meta,
        }

    def close(self) -> Path:
        """Finish: flush, write the sidecar, rename the temporary file to ``path``."""
        self._check_open()
        self._closed = True
        try:
            self._fh.close()
            publish(self._tmp, self.path, self.sidecar())
        except OSError as err:
            self._tmp.unlink(missing_ok=True)
            raise naming(err, self.path) from None
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        return self.path

    def abort(self) -> None:
        """Give up: remove the temporary file; nothing is left under ``path``."""
        if self._closed:
            return
        self._closed = True
        try:
            self._fh.close()
        except OSError:
            pass  # the buffered tail could not be written either; the file is discarded
        self._tmp.unlink(missing_ok=True)


def write_dat(
    path: str | os.PathLike[str],
    spikes: np.ndarray,
    *,
    flipud: bool = True,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write spikes (T, H, W) bool to ``path`` and its sidecar, atomically. Returns ``path``.
    An existing ``path`` or sidecar is replaced only with ``overwrite``."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise DatError(f"spikes must be (T, H, W), got shape {spikes.shape}; add a time axis")
    shape = (spikes.shape[1], spikes.shape[2])
    with DatWriter(path, *shape, flipud=flipud, meta=meta, overwrite=overwrite) as writer:
        writer.write(spikes)
    return Path(path)


class DatFile(LazyReader):
    """A ``.dat`` opened for reading, memory-mapped: reading frames [a, b) touches only them.

    Height, width and flipud come from the sidecar ``<stem>.json``; a bare ``.dat`` (from a
    camera) needs ``height`` and ``width``. ``flipud=None`` means the sidecar's value, else
    True; an explicit value overrides the sidecar. Indexing gives bool: ``f[i]`` (H, W),
    ``f[a:b]`` (n, H, W). Pickles by path (the map is reopened lazily), so DataLoader
    workers can share one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        height: int | None = None,
        width: int | None = None,
        flipud: bool | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            raise DatError(f"{self.path}: no such .dat file; check the path") from None
        except OSError as err:  # ELOOP: a symlink loop; EACCES; ...
            raise DatError(f"{self.path}: cannot be read ({err.strerror})") from None
        if not stat.S_ISREG(mode):
            raise DatError(f"{self.path}: {file_kind(mode)}, not a .dat file")
        meta = read_sidecar(self.path)
        side = sidecar_path(self.path)
        if meta:
            for key, given in (("height", height), ("width", width)):
                if given is not None and int(given) != meta[key]:
                    raise DatError(
                        f"{self.path}: {key} {given} disagrees with the sidecar {side.name} "
                        f"({key} {meta[key]}); drop the {key} or fix the sidecar"
                    )
            height, width = meta["height"], meta["width"]
        elif height is None or width is None:
            raise DatError(
                f"{self.path}: no sidecar {side.name}, so the frame size is unknown; "
                "pass height and width (e.g. 250x400 for the camera)"
            )
        check_size(height, width, error=DatError)
        self.height = int(height)
        self.width = int(width)
        if flipud is None:
            flipud = bool(meta.get("flipud", True))
        self.flipud = bool(flipud)
        self.meta: dict[str, Any] = meta
        self.frame_bytes = self.height * self.width // 8
        size = self.path.stat().st_size
        n_frames, rest = divmod(size, self.frame_bytes)
        if rest:
            raise DatError(
                f"{self.path}: size {size} bytes is not a whole number of "
                f"{self.height}x{self.width} frames ({self.frame_bytes} bytes each: "
                f"{n_frames} frames and {rest} bytes left over); the file is truncated "
                "or the frame size is wrong: check height and width, or re-create the file"
            )
        if "frames" in meta and meta["frames"] != n_frames:
            raise DatError(
                f"{self.path}: the sidecar says {meta['frames']} frames but the file holds "
                f"{n_frames} ({size} bytes); the file is truncated or the sidecar is stale"
            )
        self._frames = n_frames
        self._handle: mmap.mmap | None = None

    # -- size -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._frames

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, H, W)."""
        return (self._frames, self.height, self.width)

    def __repr__(self) -> str:
        return (
            f"DatFile({str(self.path)!r}, frames={self._frames}, "
            f"size={self.height}x{self.width}, flipud={self.flipud})"
        )

    # -- reading ----------------------------------------------------------------------------
    def _mapped(self) -> mmap.mmap:
        if self._handle is None:
            with open(self.path, "rb") as fh:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            if len(mapped) != self._frames * self.frame_bytes:
                mapped.close()  # replaced or cut since it was opened (e.g. before pickling)
                raise DatError(
                    f"{self.path}: the file changed size since it was opened; open it again"
                )
            self._handle = mapped
        return self._handle

    def _window(self, start: int, stop: int) -> np.ndarray:
        """uint8 (stop-start, H*W//8) view into the map (valid while no close())."""
        n = stop - start
        if n == 0:
            return np.empty((0, self.frame_bytes), dtype=np.uint8)
        flat = np.frombuffer(
            self._mapped(),
            dtype=np.uint8,
            count=n * self.frame_bytes,
            offset=start * self.frame_bytes,
        )
        return flat.reshape(n, self.frame_bytes)

    def read_packed(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """``count`` frames from ``start`` (all the rest if None) as uint8 (n, H*W//8) in file
        order (a copy of those bytes only)."""
        start, stop = frame_range(start, count, self._frames, str(self.path), error=DatError)
        return self._window(start, stop).copy()

    def read(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """``count`` frames from ``start`` (all the rest if None) as bool (n, H, W)."""
        start, stop = frame_range(start, count, self._frames, str(self.path), error=DatError)
        window = self._window(start, stop)
        spikes = unpack_frames(window, self.height, self.width, flipud=self.flipud)
        del window  # release the map's buffer export so close() can unmap
        return spikes

    def __getitem__(self, key: int | slice) -> np.ndarray:
        if isinstance(key, slice):
            a, b, step = key.indices(self._frames)
            if step == 1:
                return self.read(a, max(b - a, 0))
            idx = range(a, b, step)
            if not idx:
                return np.empty((0, self.height, self.width), dtype=np.bool_)
            lo, hi = min(idx), max(idx) + 1
            return self.read(lo, hi - lo)[idx.start - lo :: step]
        i = operator.index(key)  # ints and NumPy integers; TypeError for anything else
        if i < 0:
            i += self._frames
        if not 0 <= i < self._frames:
            raise IndexError(f"frame {key} out of range for {self._frames} frames")
        return self.read(i, 1)[0]


def read_dat(
    path: str | os.PathLike[str],
    *,
    height: int | None = None,
    width: int | None = None,
    start: int = 0,
    count: int | None = None,
    flipud: bool | None = None,
) -> np.ndarray:
    """Read ``count`` frames from ``start`` (default: all) as bool (n, H, W).

    Size and flipud come from the sidecar; a bare ``.dat`` needs ``height`` and ``width``.
    ``flipud=None``: the sidecar's value, else True (the camera's order).
    """
    with DatFile(path, height=height, width=width, flipud=flipud) as dat:
        return dat.read(start, count)
