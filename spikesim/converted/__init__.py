"""Converted datasets: the folder layout (``layout``), and one reading API over a converted
folder (``folder``) and a packed HDF5 file (``h5``): ``open_dataset(path)``."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DatasetError
from .dataset import ConvertedDataset
from .folder import FolderDataset
from .h5 import H5Dataset, pack_dataset
from .layout import ClipRecord, merge_shards

__all__ = [
    "ClipRecord",
    "ConvertedDataset",
    "FolderDataset",
    "H5Dataset",
    "merge_shards",
    "open_dataset",
    "pack_dataset",
]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def open_dataset(path: str | os.PathLike, *, check_files: bool = True) -> ConvertedDataset:
    """Open a converted folder or a packed ``.h5``; the same API for both.

    For a folder, ``check_files`` checks at once that every listed ``.dat`` exists (one
    ``stat`` per clip; a process re-opening a dataset already checked may skip it).
    """
    path = Path(path)
    if path.is_dir():
        return FolderDataset(path, check_files=check_files)
    if path.is_file():
        with open(path, "rb") as fh:
            signature = fh.read(8)
        if signature == _HDF5_SIGNATURE:
            return H5Dataset(path)
        raise DatasetError(
            f"{path}: neither a converted folder nor an HDF5 file from `spikesim pack`"
        )
    raise DatasetError(f"{path}: no such folder or file; give a converted folder or a .h5")
