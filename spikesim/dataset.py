"""Read a converted dataset, a folder written by ``spikesim convert`` or a packed ``.h5``,
through one API::

    ds = open_dataset("converted/")          # or "dataset.h5"
    ds.classes                               # ["ApplyEyeMakeup", ...], index = label
    ds.clips[i]                              # ClipRecord(path, cls, label, split, caption, ...)
    ds.read(i, start=0, count=256)           # bool (n, H, W), image order
    ds.read_packed(i, start=0, count=256)    # uint8 (n, H*W//8), file order (bit-packed)

Opening is cheap (the manifest only) and no file handle is held until the first read, in the
process that reads: a dataset object can be built once and handed to DataLoader workers
(forked or spawned), each of which opens its own handles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from .dat import unpack_frames
from .errors import DatasetError
from .files import read_jsonl

MANIFEST = "manifest.jsonl"
CLASSES = "classes.txt"
CONFIG = "config.yaml"


@dataclass(frozen=True)
class ClipRecord:
    """One converted clip: a row of ``manifest.jsonl``.

    ``path`` is the ``.dat`` relative to the dataset root; ``frames`` the number of spike
    frames; ``source`` the video it came from (relative to the source dataset root);
    ``caption`` is None when the source had none (prompts are then built from ``cls``).
    """

    path: str
    cls: str
    label: int
    split: str
    caption: str | None
    frames: int
    height: int
    width: int
    source: str
    factor: int

    @classmethod
    def from_row(cls, row: dict[str, Any], where: str = "manifest") -> ClipRecord:
        try:
            return cls(
                path=str(row["path"]),
                cls=str(row["class"]),
                label=int(row["label"]),
                split=str(row["split"]),
                caption=None if row.get("caption") is None else str(row["caption"]),
                frames=int(row["frames"]),
                height=int(row["height"]),
                width=int(row["width"]),
                source=str(row.get("source", "")),
                factor=int(row.get("factor", 1)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetError(
                f"{where}: a row lacks or has a bad {err}; re-run spikesim convert to rewrite it"
            ) from None

    def to_row(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "class": self.cls,
            "label": self.label,
            "split": self.split,
            "caption": self.caption,
            "frames": self.frames,
            "height": self.height,
            "width": self.width,
            "source": self.source,
            "factor": self.factor,
        }


class ConvertedDataset:
    """Converted clips, their labels and captions; subclasses supply the bytes.

    Attributes: ``root`` (folder or .h5 path), ``classes`` (names, index = label), ``clips``
    (``ClipRecord`` list, sorted by path), ``height``, ``width``, ``flipud``, ``config``
    (the ``config.yaml`` dict, ``{}`` if absent).
    """

    root: Path
    classes: list[str]
    clips: list[ClipRecord]
    height: int
    width: int
    flipud: bool
    config: dict[str, Any]

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.root)!r}, clips={len(self.clips)}, "
            f"classes={len(self.classes)}, size={self.height}x{self.width})"
        )

    def indices(self, split: str | None = None) -> list[int]:
        """Indices of the clips of one split (``"train"``, ``"test"``, ...) or of all."""
        return [i for i, c in enumerate(self.clips) if split is None or c.split == split]

    def read_packed(self, i: int, start: int = 0, count: int | None = None) -> np.ndarray:
        """Frames [start, start+count) of clip ``i`` as uint8 (n, H*W//8), file order."""
        clip, start, stop = self._range(i, start, count)
        out = self._read_packed(i, clip, start, stop)
        if out.shape != (stop - start, self.height * self.width // 8):
            raise DatasetError(
                f"{self.root}: {clip.path} gave {out.shape[0]} of the {stop - start} frames "
                f"asked; the data is truncated, convert it again"
            )
        return out

    def read(self, i: int, start: int = 0, count: int | None = None) -> np.ndarray:
        """Frames [start, start+count) of clip ``i`` as bool (n, H, W), image order."""
        packed = self.read_packed(i, start, count)
        return unpack_frames(packed, self.height, self.width, flipud=self.flipud)

    def _range(self, i: int, start: int, count: int | None) -> tuple[ClipRecord, int, int]:
        if not -len(self.clips) <= i < len(self.clips):
            raise IndexError(f"clip {i} out of range for {len(self.clips)} clips")
        clip = self.clips[i]
        start = int(start)
        stop = clip.frames if count is None else start + int(count)
        if not 0 <= start <= stop <= clip.frames:
            raise DatasetError(
                f"{clip.path}: frames [{start}, {stop}) are out of range; the clip has "
                f"{clip.frames} frames"
            )
        return clip, start, stop

    def _read_packed(self, i: int, clip: ClipRecord, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def _set_clips(self, rows: list[dict[str, Any]], classes: list[str] | None, where: str) -> None:
        """Fill ``clips``, ``classes``, ``height``, ``width`` from manifest rows, checked."""
        clips = sorted((ClipRecord.from_row(r, where) for r in rows), key=lambda c: c.path)
        if not clips:
            raise DatasetError(f"{where}: lists no clips; the conversion converted nothing")
        if classes is None:
            by_label = {c.label: c.cls for c in clips}
            classes = [by_label.get(k, f"class{k}") for k in range(max(by_label) + 1)]
        for clip in clips:
            part = PurePosixPath(clip.path)
            if part.is_absolute() or ".." in part.parts or "\\" in clip.path:
                raise DatasetError(f"{where}: path {clip.path!r} points outside the dataset")
            if not 0 <= clip.label < len(classes) or classes[clip.label] != clip.cls:
                raise DatasetError(
                    f"{where}: {clip.path} has label {clip.label} ({clip.cls}) that does not "
                    f"match the class list; the manifest and classes disagree"
                )
        sizes = {(c.height, c.width) for c in clips}
        if len(sizes) > 1:
            raise DatasetError(
                f"{where}: clips of different sizes {sorted(sizes)}; convert with one --size"
            )
        self.clips = clips
        self.classes = list(classes)
        self.height, self.width = sizes.pop()


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
        self.config = _read_yaml(self.root / CONFIG)
        classes_file = self.root / CLASSES
        classes = (
            [
                ln.strip()
                for ln in classes_file.read_text(encoding="utf-8").splitlines()
                if ln.strip()
            ]
            if classes_file.is_file()
            else None
        )
        rows = read_jsonl(manifest, fix="re-run spikesim convert")
        self._set_clips(rows, classes, str(manifest))
        self.flipud = bool(self.config.get("flipud", True))
        frame_bytes = self.height * self.width // 8
        missing = [c.path for c in self.clips if check_files and not (self.root / c.path).is_file()]
        if missing:
            raise DatasetError(
                f"{self.root}: {len(missing)} clips in {MANIFEST} have no .dat (first: "
                f"{missing[0]}); run spikesim convert again to resume"
            )
        self._frame_bytes = frame_bytes

    def _read_packed(self, i: int, clip: ClipRecord, start: int, stop: int) -> np.ndarray:
        path = self.root / clip.path
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise DatasetError(f"{path}: missing; run spikesim convert again") from None
        try:
            size = os.fstat(fd).st_size
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


def open_dataset(path: str | os.PathLike, *, check_files: bool = True) -> ConvertedDataset:
    """Open a converted folder or a packed ``.h5`` (see ``spikesim.h5``); same API for both.

    For a folder, ``check_files`` checks at once that every listed ``.dat`` exists (one
    ``stat`` per clip; a process re-opening a dataset already checked may skip it).
    """
    path = Path(path)
    if path.is_dir():
        return FolderDataset(path, check_files=check_files)
    if path.is_file():
        with open(path, "rb") as fh:
            signature = fh.read(8)
        if signature == b"\x89HDF\r\n\x1a\n":
            from .h5 import H5Dataset

            return H5Dataset(path)
        raise DatasetError(
            f"{path}: neither a converted folder nor an HDF5 file from `spikesim pack`"
        )
    raise DatasetError(f"{path}: no such folder or file; give a converted folder or a .h5")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        raise DatasetError(f"{path}: not valid YAML; re-run spikesim convert") from None
    return data if isinstance(data, dict) else {}
