"""A converted folder (``spikesim convert``'s output) read clip by clip; layout in
``spikesim.converted.layout``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..events import read_events
from ..files import file_kind
from .dataset import ConvertedDataset
from .layout import CLASSES, CONFIG, MANIFEST, ClipRecord, read_classes, read_config, read_manifest


class FolderDataset(ConvertedDataset):
    """A folder written by ``spikesim convert``: ``manifest.jsonl``, ``classes.txt``,
    ``config.yaml`` and ``<class>/<stem>.dat``. Reads exactly the bytes asked for."""

    def __init__(self, root: str | os.PathLike, *, check_files: bool = True) -> None:
        self.root = Path(root)
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            shards = sorted(self.root.glob("manifest.shard-*-of-*.jsonl"))
            hint = (
                "merge the shards with `spikesim convert SRC --out DIR --merge`"
                if shards
                else "convert a dataset into it with `spikesim convert SRC --out DIR`"
            )
            raise DatasetError(f"{self.root}: no {MANIFEST}, not a converted dataset; {hint}")
        self.config = read_config(self.root / CONFIG)
        self.sensor: str = str(self.config.get("sensor", "spike"))  # "spike" (.dat) or "dvs" (.h5)
        classes = read_classes(self.root / CLASSES)
        self._set_clips(read_manifest(manifest), classes, str(manifest))
        self.flipud = bool(self.config.get("flipud", True))
        frame_bytes = self.height * self.width // 8
        self._real_root = self.root.resolve()
        missing = [c.path for c in self.clips if check_files and not (self.root / c.path).is_file()]
        if check_files:
            for clip in self.clips:
                if clip.path not in missing:
                    self._clip_file(clip)  # a link leaving the root fails here, before any work
        if missing:
            raise DatasetError(
                f"{self.root}: {len(missing)} clips in {MANIFEST} have no .dat (first: "
                f"{missing[0]}); run spikesim convert again to resume"
            )
        self._frame_bytes = frame_bytes

    def read_events(self, i: int, t0: int | None = None, t1: int | None = None) -> np.ndarray:
        """Events of clip ``i`` (a ``--sensor dvs`` conversion) with ``t0 <= t < t1``
        microseconds (None: from the start / to the end), ``spikesim.EVENT_DTYPE``."""
        if self.sensor != "dvs":
            raise DatasetError(f"{self.root}: holds spike streams, not events; use read(i)")
        if not -len(self.clips) <= i < len(self.clips):
            raise IndexError(f"clip {i} out of range for {len(self.clips)} clips")
        return read_events(self._clip_file(self.clips[i]), t0, t1)

    def _clip_file(self, clip: ClipRecord) -> Path:
        """The clip's ``.dat``, refused when its real path (links followed) leaves the root:
        manifest paths are checked when read, but a ``.dat`` that is a symlink to a file
        elsewhere would still be read as part of the dataset."""
        path = self.root / clip.path
        try:
            real = path.resolve(strict=False)
        except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
            raise DatasetError(f"{path}: a symlink loop; replace it with the clip's file") from None
        if not real.is_relative_to(self._real_root):
            raise DatasetError(
                f"{path}: a link to {real}, outside the dataset {self.root}; a dataset reads "
                "only its own files: copy the file in or convert it again"
            )
        return path

    def _read_packed(self, i: int, clip: ClipRecord, start: int, stop: int) -> np.ndarray:
        if self.sensor != "spike":
            raise DatasetError(
                f"{self.root}: holds events (converted with --sensor {self.sensor}), not spike "
                "frames; read them with read_events(i)"
            )
        path = self._clip_file(clip)
        try:
            # O_NONBLOCK: opening a FIFO put in a clip's place must not hang the reader.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise DatasetError(f"{path}: missing; run spikesim convert again") from None
        except OSError as err:
            raise DatasetError(f"{path}: cannot be opened ({err.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise DatasetError(f"{path}: {file_kind(info.st_mode)}, not a .dat file")
            size = info.st_size
            if size != clip.frames * self._frame_bytes:
                raise DatasetError(
                    f"{path}: {size} bytes, but the manifest says {clip.frames} frames of "
                    f"{self._frame_bytes} bytes; the file is damaged, convert it again"
                )
            out = np.empty((stop - start, self._frame_bytes), dtype=np.uint8)
            buf, offset = memoryview(out.reshape(-1)), start * self._frame_bytes
            while buf.nbytes:  # pread may return less than asked
                got = os.preadv(fd, [buf], offset)
                if got == 0:
                    raise DatasetError(f"{path}: ended early; convert it again")
                buf, offset = buf[got:], offset + got
        finally:
            os.close(fd)
        return out
