"""Write reconstructed images: a video (``.mp4``, ``.avi``), a folder of PNGs, or a ``.npy``.

Every output is written under a temporary name in the destination folder and renamed when
complete, so a crash or Ctrl-C never leaves a half-written file under the final name.
"""

from __future__ import annotations

import errno
import os
import shutil
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from .errors import SpikesimError, VideoError
from .files import AtomicOutput, naming, temp_name

__all__ = ["H264", "VIDEO_CODECS", "FrameWriter", "NpyWriter", "save_npy"]

# suffix -> OpenCV FourCC. mp4v (MPEG-4 part 2) and MJPG are built into every OpenCV wheel;
# an .mp4 is written as H.264 instead where PyAV (FFmpeg with libx264) is installed.
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}
H264 = "h264 (libx264 via PyAV)"

# Suffixes that name a file, not a folder: refused rather than made into a folder of PNGs.
_OTHER_FILE_SUFFIXES = {
    ".mkv", ".mov", ".webm", ".wmv", ".flv", ".m4v", ".gif",
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy", ".npz", ".dat", ".h5",
}  # fmt: skip


class FrameWriter(AtomicOutput):
    """Grayscale uint8 frames to a video or a folder of PNGs, written atomically.

    ``out`` ending in ``.mp4`` (H.264 through PyAV when it is installed, else OpenCV's mp4v)
    or ``.avi`` (MJPG) gives a video at ``fps`` frames per second (``codec`` says which);
    any other name gives a folder ``out/000000.png, 000001.png, ...``
    (lossless). Video codecs need even sizes: an odd height or width is padded by repeating
    the last row or column, so the video is at most one pixel larger than the frames.

    Use as a context manager: on a clean exit the temporary file / folder is renamed to
    ``out``; on an exception it is deleted. Outside ``with``, call ``close()`` (or ``abort()``).
    """

    def __init__(self, out: str | os.PathLike[str], *, fps: float = 30.0) -> None:
        self.path = Path(out)
        self.fps = float(fps)
        if not self.fps > 0:
            raise SpikesimError(f"fps must be > 0, got {fps!r}")
        suffix = self.path.suffix.lower()
        self.is_video = suffix in VIDEO_CODECS
        if not self.is_video and suffix in _OTHER_FILE_SUFFIXES:
            raise SpikesimError(
                f"{self.path}: cannot write {suffix} frames; use .mp4, .avi, or a folder name "
                "(for PNGs)"
            )
        if self.path.is_dir() and (self.is_video or any(self.path.iterdir())):
            raise SpikesimError(
                f"{self.path} is an existing folder; remove it or pick another name"
            )
        if not self.is_video and self.path.exists() and not self.path.is_dir():
            raise SpikesimError(f"{self.path} is an existing file; remove it or pick another name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self._size: tuple[int, int] | None = None  # (H, W) of the frames, fixed by the first write
        self._video: cv2.VideoWriter | _H264Writer | None = None
        self.codec: str | None = None  # set when the first frame is written
        # The temporary name keeps the suffix: OpenCV picks the container from it.
        self._tmp = temp_name(self.path, suffix if self.is_video else "")
        if not self.is_video:
            self._tmp.mkdir()
        self._closed = False

    def write(self, frames: np.ndarray) -> None:
        """Append uint8 frames: one (H, W) image or a stack (n, H, W). All must be one size."""
        if self._closed:
            raise SpikesimError(f"{self.path}: writer is already closed")
        stack = np.asarray(frames)
        if stack.ndim == 2:
            stack = stack[None]
        if stack.ndim != 3 or stack.dtype != np.uint8:
            raise SpikesimError(
                f"frames must be uint8 (H, W) or (n, H, W), got {stack.dtype} {stack.shape}"
            )
        size = (stack.shape[1], stack.shape[2])
        if self._size is None:
            if 0 in size:
                raise SpikesimError(f"frames must not be empty, got size {size}")
            self._size = size
        elif size != self._size:
            raise SpikesimError(f"frame size {size} differs from the first frames' {self._size}")
        for image in stack:
            if self.is_video:
                self._write_video_frame(image)
            else:
                self._write_png(image)
            self.frames += 1

    def _write_video_frame(self, image: np.ndarray) -> None:
        height, width = image.shape
        pad_h, pad_w = height % 2, width % 2
        if self._video is None:
            size = (width + pad_w, height + pad_h)  # OpenCV wants (width, height)
            self._video = (
                _open_h264(self._tmp, self.fps, size)
                if self.path.suffix.lower() == ".mp4"
                else None
            )
            if self._video is not None:
                self.codec = H264
            else:
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
                self._video = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, size, isColor=False)
                self.codec = VIDEO_CODECS[self.path.suffix.lower()]
            if not self._video.isOpened():
                raise VideoError(
                    f"{self.path}: OpenCV cannot encode {self.path.suffix} at "
                    f"{height}x{width}; try .avi or a folder of PNGs"
                )
        if pad_h or pad_w:
            image = np.pad(image, ((0, pad_h), (0, pad_w)), mode="edge")
        try:
            self._video.write(np.ascontiguousarray(image))
        except OSError as err:  # PyAV reports a failed write (full disk) as an OSError
            raise naming(err, self.path) from None

    def _write_png(self, image: np.ndarray) -> None:
        # Encoded in memory and written by us: cv2.imwrite reports success when the disk is
        # full and leaves an empty file, so it cannot be trusted to say the bytes arrived.
        ok, data = cv2.imencode(".png", np.ascontiguousarray(image))
        if not ok:
            raise VideoError(f"{self.path}: OpenCV could not encode frame {self.frames} as PNG")
        name = self._tmp / f"{self.frames:06d}.png"
        try:
            with open(name, "xb") as fh:  # buffered: a failed or short write raises at close
                fh.write(data.tobytes())
        except OSError as err:
            raise naming(err, self.path) from None

    def close(self) -> Path:
        """Finish and rename the temporary output to ``out``; return the final path."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            if self._video is not None:
                self._video.release()
            if self.is_video and self.frames == 0:
                raise SpikesimError(f"{self.path}: no frames were written, so no video was made")
            if self.is_video:
                self._check_video()
        except OSError as err:
            self._remove_tmp()
            raise naming(err, self.path) from None
        except BaseException:
            self._remove_tmp()
            raise
        # os.replace overwrites an existing file, or an empty folder on POSIX.
        if not self.is_video and self.path.is_dir():
            self.path.rmdir()  # empty (checked in __init__); a non-empty one makes this raise
        os.replace(self._tmp, self.path)
        return self.path

    def _check_video(self) -> None:
        """Read the finished video's frame count back from its container: OpenCV's writer
        never reports a failed write (a full disk leaves a truncated, unplayable file), so a
        file that does not open or holds fewer frames than were written was not saved."""
        count = _h264_frames(self._tmp) if self.codec == H264 else _opencv_frames(self._tmp)
        if count != self.frames:
            found = "cannot be read back" if count < 0 else f"holds {count} frames"
            raise VideoError(
                f"{self.path}: the video {found} of the {self.frames} written (disk full or "
                "a write error?); nothing was saved"
            )

    def abort(self) -> None:
        """Stop and delete everything written; ``out`` is left untouched."""
        if self._closed:
            return
        self._closed = True
        if self._video is not None:
            try:
                self._video.release()
            except OSError:
                pass  # the output is being thrown away: the failed write is already reported
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp.is_dir():
            shutil.rmtree(self._tmp, ignore_errors=True)
        else:
            self._tmp.unlink(missing_ok=True)


class _H264Writer:
    """Grey frames to an H.264 ``.mp4`` through PyAV's FFmpeg (libx264, yuv420p, CRF 18):
    what every player shows, at a fraction of mp4v's size. The same calls as cv2.VideoWriter."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av  # optional: FrameWriter falls back to OpenCV without it

        self._container = av.open(str(path), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = size
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "18", "preset": "veryfast"}

    def isOpened(self) -> bool:  # cv2.VideoWriter's name
        return True

    def write(self, image: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(image, format="gray")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def release(self) -> None:
        if self._container is None:
            return
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None


def _opencv_frames(path: Path) -> int:
    """Frames in the container of a video OpenCV wrote (read back by OpenCV), -1 if unreadable."""
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
    finally:
        cap.release()


def _h264_frames(path: Path) -> int:
    """Frames in the container of a video PyAV wrote (read back by PyAV), -1 if unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            return int(container.streams.video[0].frames)
    except (av.FFmpegError, IndexError, OSError):
        return -1


def _open_h264(path: Path, fps: float, size: tuple[int, int]) -> _H264Writer | None:
    """An H.264 writer, or None where PyAV or its libx264 encoder is missing."""
    try:
        import av
    except ImportError:
        return None
    if "libx264" not in av.codecs_available:
        return None
    return _H264Writer(path, fps, size)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save ``array`` to ``path`` (``np.save`` format) atomically; return the path."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final, "")
    try:
        # A file object, not a name: np.save would otherwise append ".npy" to the name.
        with open(tmp, "xb") as f:
            np.save(f, np.asarray(array), allow_pickle=False)
        os.replace(tmp, final)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise naming(err, final) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


class NpyWriter(AtomicOutput):
    """A ``.npy`` of known shape written a few frames at a time (bounded memory), atomically.

    ``NpyWriter(path, shape, dtype=np.uint8)``; ``.write(frames)`` appends along axis 0
    (frames: ``shape[1:]`` or ``(n, *shape[1:])``). On a clean exit of ``with`` (or
    ``close()``) the file must hold exactly ``shape[0]`` frames; it is then renamed to ``path``.
    On an exception, or too few frames, the temporary file is deleted.
    """

    def __init__(
        self, path: str | os.PathLike[str], shape: tuple[int, ...], dtype: npt.DTypeLike = np.uint8
    ) -> None:
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        if not self.shape or min(self.shape) < 0:
            raise SpikesimError(f"{self.path}: bad array shape {shape!r}")
        self.dtype = np.dtype(dtype)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self._tmp = temp_name(self.path, "")
        try:
            self._array = _reserved_memmap(self._tmp, self.shape, self.dtype)
        except OSError as err:
            self._tmp.unlink(missing_ok=True)
            raise naming(err, self.path) from None
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._closed = False

    def write(self, frames: np.ndarray) -> None:
        """Append frames of the array's dtype: one ``shape[1:]`` frame or ``(n, *shape[1:])``."""
        if self._closed:
            raise SpikesimError(f"{self.path}: writer is already closed")
        stack = np.asarray(frames)
        if stack.shape == self.shape[1:]:
            stack = stack[None]
        if stack.shape[1:] != self.shape[1:] or stack.dtype != self.dtype:
            raise SpikesimError(
                f"{self.path}: frames must be {self.dtype} (n, *{self.shape[1:]}), "
                f"got {stack.dtype} {stack.shape}"
            )
        if self.frames + len(stack) > self.shape[0]:
            raise SpikesimError(
                f"{self.path}: {self.frames + len(stack)} frames is more than the {self.shape[0]} "
                "the array was made for"
            )
        self._array[self.frames : self.frames + len(stack)] = stack
        self.frames += len(stack)

    def close(self) -> Path:
        """Check the frame count, flush, and rename to ``path``; return it."""
        if self._closed:
            return self.path
        if self.frames != self.shape[0]:
            self.abort()
            raise SpikesimError(
                f"{self.path}: got {self.frames} of {self.shape[0]} frames; nothing was saved"
            )
        self._closed = True
        try:
            if isinstance(self._array, np.memmap):  # an empty array is not mapped
                self._array.flush()
            del self._array  # unmap before the rename
            os.replace(self._tmp, self.path)
        except OSError as err:
            self._tmp.unlink(missing_ok=True)
            raise naming(err, self.path) from None
        return self.path

    def abort(self) -> None:
        """Stop and delete the temporary file; ``path`` is left untouched."""
        if self._closed:
            return
        self._closed = True
        del self._array
        self._tmp.unlink(missing_ok=True)


def _reserved_memmap(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.memmap:
    """A new ``.npy`` at ``path`` mapped for writing, with all its disk blocks reserved first.

    A memory-mapped file is sparse until written, and a store into a page that the full disk
    cannot back kills the process with SIGBUS (no message, no clean-up). Reserving the blocks
    with ``posix_fallocate`` turns a full disk into an ``OSError`` (ENOSPC) here, before any
    frame is computed.
    """
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape}  # fmt: skip
    with open(path, "xb") as fh:
        if _fits_v1(header):
            np.lib.format.write_array_header_1_0(fh, header)
        else:
            np.lib.format.write_array_header_2_0(fh, header)
        offset = fh.tell()
    total = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            os.posix_fallocate(fd, 0, total)
        except OSError as err:
            if err.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                raise
            _fill_zeros(fd, offset, total)  # a file system without fallocate: write the zeros
    finally:
        os.close(fd)
    if total == offset:  # an empty array cannot be mapped
        return np.zeros(shape, dtype)  # type: ignore[return-value]
    return np.memmap(path, dtype=dtype, mode="r+", offset=offset, shape=shape)


def _fits_v1(header: dict) -> bool:
    # Version 1.0 headers hold at most 65535 bytes (numpy picks 2.0 beyond that).
    return len(repr(header)) < 65000


def _fill_zeros(fd: int, start: int, end: int) -> None:
    block = bytes(1 << 20)
    os.lseek(fd, start, os.SEEK_SET)
    while start < end:
        n = os.write(fd, block[: min(len(block), end - start)])
        start += n
