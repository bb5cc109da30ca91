"""A converted dataset in one HDF5 file (``spikesim pack``), read like the folder.

Layout (``format`` = ``spikesim-h5/1``; strings are UTF-8)::

    /                    attrs: format, height, width, flipud, num_clips, spikesim_version,
                                config (config.yaml as JSON), and how to unpack the bytes
                                without spikesim: bit_order "little" (pixel k of a frame is
                                bit k % 8, least significant first, of byte k // 8),
                                pixel_order "row-major", row_order "bottom-up" when flipud
                                (the first stored row is the image's last) else "top-down"
    /classes             (C,) str            class names, index = label
    /manifest            (N,) str            the manifest.jsonl rows (JSON), sorted by path
    /sidecars            (N,) str            each clip's .dat sidecar (JSON)
    /labels              (N,) int32          = manifest label
    /frames              (N,) int64          spike frames per clip
    /splits              (N,) str            "train" | "test" | "unused"
    /spikes/<i:07d>      (frames, H*W/8) uint8   clip i, bit-packed exactly as in its .dat
                         (file order, flipud as the root attr), chunked per clip in blocks
                         of at most ``chunk_frames`` frames, evened out over the clip
                         (HDF5 stores whole chunks); attrs: path

Clip i of ``/spikes`` is row i of ``/manifest``. The file is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import DatasetError
from ..files import check_room, remove_stale_temps, temp_file
from ..sidecar import sidecar_path
from .dataset import ConvertedDataset
from .folder import FolderDataset
from .layout import ClipRecord

FORMAT = "spikesim-h5/1"
COMPRESSIONS = (None, "lzf", "gzip")
_COPY_FRAMES = 1024  # frames copied per step: bounds memory whatever the clip length


def pack_dataset(
    converted_dir: str | os.PathLike,
    out_h5: str | os.PathLike,
    *,
    compression: str | None = None,
    chunk_frames: int = 64,
    progress: bool = False,
) -> Path:
    """Pack a converted folder into one HDF5 file (layout in the module docstring).

    ``compression``: None (default: spike bits are close to random, see docs/convert.md),
    ``"lzf"`` or ``"gzip"``. ``chunk_frames``: frames per HDF5 chunk. Returns ``out_h5``.
    """
    import h5py

    if compression not in COMPRESSIONS:
        raise DatasetError(f"compression {compression!r} must be one of none, lzf, gzip")
    if chunk_frames < 1:
        raise DatasetError(f"chunk_frames {chunk_frames} must be >= 1")
    if Path(converted_dir).is_file():
        raise DatasetError(f"{converted_dir}: a file (already packed?); give the converted folder")
    src = FolderDataset(converted_dir)
    if src.sensor != "spike":
        raise DatasetError(
            f"{converted_dir}: holds events (--sensor {src.sensor}), already one HDF5 file per "
            "clip; pack packs spike streams"
        )
    out_h5 = Path(out_h5)
    out_h5.parent.mkdir(parents=True, exist_ok=True)
    frame_bytes = src.height * src.width // 8
    string = h5py.string_dtype("utf-8")
    remove_stale_temps(out_h5)  # left by a pack that was killed
    if compression is None:
        # HDF5 cannot fail cleanly half-way (after a write error it crashes the interpreter at
        # exit): make sure the spikes and a margin for the metadata fit before starting.
        spikes = sum(c.frames for c in src.clips) * frame_bytes
        check_room(out_h5, spikes + 4096 * len(src.clips) + (1 << 20))
    fd, tmp = temp_file(out_h5)
    os.close(fd)
    try:
        with _lost_writes() as lost, h5py.File(tmp, "w") as f:
            f.attrs.update(
                format=FORMAT,
                height=src.height,
                width=src.width,
                flipud=src.flipud,
                num_clips=len(src.clips),
                spikesim_version=__version__,
                config=json.dumps(src.config, ensure_ascii=False),
                **unpack_attrs(src.flipud),
            )
            f.create_dataset("classes", data=np.array(src.classes, dtype=object), dtype=string)
            rows = [json.dumps(c.to_row(), ensure_ascii=False) for c in src.clips]
            sidecars = [
                sidecar_path(src.root / c.path).read_text(encoding="utf-8") for c in src.clips
            ]
            f.create_dataset("manifest", data=np.array(rows, dtype=object), dtype=string)
            f.create_dataset("sidecars", data=np.array(sidecars, dtype=object), dtype=string)
            f.create_dataset("labels", data=np.array([c.label for c in src.clips], np.int32))
            f.create_dataset("frames", data=np.array([c.frames for c in src.clips], np.int64))
            splits = np.array([c.split for c in src.clips], dtype=object)
            f.create_dataset("splits", data=splits, dtype=string)
            group = f.create_group("spikes")
            clips = range(len(src.clips))
            if progress:
                from tqdm import tqdm

                clips = tqdm(clips, unit="clip", desc="pack")
            for i in clips:
                clip = src.clips[i]
                ds = group.create_dataset(
                    _name(i),
                    shape=(clip.frames, frame_bytes),
                    dtype=np.uint8,
                    chunks=(_chunk_len(clip.frames, chunk_frames), frame_bytes),
                    compression=compression,
                )
                ds.attrs["path"] = clip.path
                for a in range(0, clip.frames, _COPY_FRAMES):
                    n = min(_COPY_FRAMES, clip.frames - a)
                    ds[a : a + n] = src.read_packed(i, a, n)
        if lost:
            raise lost[0]
        os.replace(tmp, out_h5)
    except OSError as err:  # HDF5's messages run over several lines: keep the errno's words
        Path(tmp).unlink(missing_ok=True)
        if err.errno:
            raise OSError(err.errno, os.strerror(err.errno), str(out_h5)) from None
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DatasetError(f"{out_h5}: could not be written ({first}); nothing was saved") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_h5


def unpack_attrs(flipud: bool) -> dict[str, str]:
    """The root attributes that say how ``/spikes`` bytes become ``(T, H, W)`` images:
    ``np.unpackbits(b, axis=-1, bitorder=bit_order).reshape(T, H, W)``, then ``[:, ::-1]`` when
    ``row_order`` is ``"bottom-up"``."""
    return {
        "bit_order": "little",
        "pixel_order": "row-major",
        "row_order": "bottom-up" if flipud else "top-down",
    }


@contextmanager
def _lost_writes() -> Iterator[list[OSError]]:
    """Collect the write errors h5py reports only as "Exception ignored" when it frees an
    object (HDF5 flushing its metadata cache onto a full disk): the pack must fail on them,
    not go on and print tracebacks."""
    lost: list[OSError] = []
    unraisable_hook, except_hook = sys.unraisablehook, sys.excepthook

    def keep(err: OSError) -> None:
        # A copy without the traceback: frames holding HDF5 objects past the library's
        # shutdown crash the interpreter at exit.
        lost.append(OSError(err.errno, err.strerror or str(err).splitlines()[0]))

    def unraisable(info: Any) -> None:
        if isinstance(info.exc_value, OSError):
            keep(info.exc_value)
        else:
            unraisable_hook(info)

    def printed(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        # Cython prints the traceback of an error in a deallocator through sys.excepthook
        # before reporting it as unraisable.
        if isinstance(value, OSError):
            keep(value)
        else:
            except_hook(kind, value, tb)

    sys.unraisablehook, sys.excepthook = unraisable, printed
    try:
        yield lost
    finally:
        sys.unraisablehook, sys.excepthook = unraisable_hook, except_hook


def _chunk_len(frames: int, most: int) -> int:
    """Frames per chunk: at most ``most``, evened out over the clip.

    HDF5 allocates whole chunks, so a clip of 65 frames in chunks of 64 would store 128;
    two chunks of 33 store 66.
    """
    n_chunks = -(-frames // most)
    return max(1, -(-frames // max(n_chunks, 1)))


def _name(i: int) -> str:
    return f"{i:07d}"


class H5Dataset(ConvertedDataset):
    """A ``.h5`` written by ``pack_dataset``. The file is opened lazily, once per process
    (h5py handles must not cross a fork), and closed when the object is pickled."""

    def __init__(self, path: str | os.PathLike) -> None:
        import h5py

        self.root = Path(path)
        self._file: Any = None
        self._pid: int | None = None
        try:
            with h5py.File(self.root, "r") as f:
                if f.attrs.get("format") != FORMAT:
                    raise DatasetError(
                        f"{self.root}: not a spikesim pack (format "
                        f"{f.attrs.get('format')!r}, expected {FORMAT!r}); "
                        "make one with `spikesim pack`"
                    )
                classes = [_text(s) for s in f["classes"][()]]
                rows = [json.loads(_text(s)) for s in f["manifest"][()]]
                self.config = json.loads(_text(f.attrs.get("config", "{}")))
                self.flipud = bool(f.attrs["flipud"])
        except OSError as err:
            raise DatasetError(f"{self.root}: cannot read as HDF5 ({err}); pack it again") from None
        except KeyError as err:
            raise DatasetError(f"{self.root}: incomplete pack, no {err}; pack it again") from None
        records = [ClipRecord.from_row(r, str(self.root)) for r in rows]
        self._set_clips(records, classes, str(self.root))
        # _set_clips sorts by path; the pack stores them in that order already
        self._index = {c.path: i for i, c in enumerate(self.clips)}

    def sidecar(self, i: int) -> dict[str, Any]:
        """The ``.dat`` sidecar of clip ``i``."""
        return json.loads(_text(self._handle()["sidecars"][i]))

    def _handle(self) -> Any:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.root, "r")
            self._pid = os.getpid()
        return self._file

    def _read_packed(self, i: int, clip: ClipRecord, start: int, stop: int) -> np.ndarray:
        try:
            data = self._handle()["spikes"][_name(self._index[clip.path])]
        except KeyError:
            raise DatasetError(f"{self.root}: no spikes for {clip.path}; pack it again") from None
        return np.asarray(data[start:stop], dtype=np.uint8)

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None  # each process opens its own handle
        state["_pid"] = None
        return state


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
