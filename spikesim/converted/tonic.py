"""A Tonic-style view of a converted dataset: ``view[i] -> (frames, target)``.

Tonic's datasets and SpikingJelly's frame datasets hand out ``(data, target)`` pairs with
optional ``transform`` / ``target_transform`` callables and say their ``sensor_size``; frame
tensors are ``(T, C, H, W)``. :class:`FrameView` does that over a converted folder or packed
``.h5`` with NumPy only (no torch import): each clip's spikes as ``(T, 1, H, W)`` frames in
image order (rows top to bottom, whatever ``flipud`` the files use), so a
``torch.utils.data.DataLoader`` takes it as it is::

    view = FrameView("converted/", split="train", frames=64)
    loader = torch.utils.data.DataLoader(view, batch_size=8, shuffle=True)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..checks import whole_number
from ..errors import DatasetError
from .dataset import ConvertedDataset


class FrameView:
    """``(frames, target)`` pairs of one split of a converted dataset.

    ``dataset``: a path (folder or ``.h5``) or an open ``ConvertedDataset``. ``split``:
    ``"train"``, ``"test"``, ... or None for every clip. ``frames``: keep the first ``frames``
    spike frames of each clip (all when None; a clip shorter than that is an error, so a batch
    stacks). ``dtype``: of the frames (float32 by default, 0/1; ``bool`` or ``uint8`` to save
    memory). ``transform(frames)`` and ``target_transform(target)`` are applied last.

    ``view[i]`` -> ``(frames (T, 1, H, W), target int)``; ``len(view)``; ``classes`` (index =
    target); ``targets`` (one per item); ``sensor_size = (W, H, 1)`` as Tonic gives it.
    """

    def __init__(
        self,
        dataset: str | os.PathLike | ConvertedDataset,
        *,
        split: str | None = None,
        frames: int | None = None,
        dtype: Any = np.float32,
        transform: Callable[[np.ndarray], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ) -> None:
        if not isinstance(dataset, ConvertedDataset):
            from . import open_dataset

            dataset = open_dataset(dataset)
        self.dataset = dataset
        self.split = split
        self.frames = None if frames is None else whole_number(frames, "frames", minimum=1)
        self.dtype = np.dtype(dtype)
        for name, fn in (("transform", transform), ("target_transform", target_transform)):
            if fn is not None and not callable(fn):
                raise DatasetError(f"{name} must be callable, got {type(fn).__name__}")
        self.transform = transform
        self.target_transform = target_transform
        self._items = dataset.indices(split)
        if not self._items:
            raise DatasetError(
                f"{getattr(dataset, 'root', dataset)}: no clips in split {split!r}; "
                "choose another split or None for all clips"
            )
        if self.frames is not None:
            short = [dataset.clips[i] for i in self._items if dataset.clips[i].frames < self.frames]
            if short:
                raise DatasetError(
                    f"{short[0].path} has {short[0].frames} spike frames, fewer than "
                    f"frames={self.frames}; lower frames (shortest clip: "
                    f"{min(c.frames for c in short)})"
                )
        self.classes = list(dataset.classes)
        self.targets = [dataset.clips[i].label for i in self._items]
        self.sensor_size = (dataset.width, dataset.height, 1)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        i = self._items[index]
        spikes = self.dataset.read(i, 0, self.frames)  # (T, H, W) bool, image order
        frames = spikes[:, None].astype(self.dtype, copy=False)
        target: Any = self.targets[index]
        if self.transform is not None:
            frames = self.transform(frames)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return frames, target

    def __repr__(self) -> str:
        return (
            f"FrameView({len(self)} clips, split={self.split!r}, "
            f"sensor_size={self.sensor_size}, frames={self.frames})"
        )
