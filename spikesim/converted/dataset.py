"""The base of every converted-dataset reader (folder, HDF5); one API::

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

from pathlib import Path
from typing import Any

import numpy as np

from ..checks import frame_range
from ..dat import unpack_frames
from ..errors import DatasetError
from .layout import ClipRecord, check_clip_path, sorted_records


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
        start, stop = frame_range(start, count, clip.frames, clip.path, error=DatasetError)
        return clip, start, stop

    def _read_packed(self, i: int, clip: ClipRecord, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def _set_clips(self, records: list[ClipRecord], classes: list[str] | None, where: str) -> None:
        """Fill ``clips``, ``classes``, ``height``, ``width`` from manifest records, checked."""
        clips = sorted_records(records, where)
        if not clips:
            raise DatasetError(f"{where}: lists no clips; the conversion converted nothing")
        if classes is None:
            by_label = {c.label: c.cls for c in clips}
            classes = [by_label.get(k, f"class{k}") for k in range(max(by_label) + 1)]
        for clip in clips:
            check_clip_path(clip.path, where)
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
