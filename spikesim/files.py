"""Atomic files: everything is written under a temporary name in its folder, then renamed.

Temporary names are ``<name>.tmp-<pid>-<random>`` (``TMP_MARK``), so a later run can recognise
and remove the leftovers of an interrupted one.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import stat
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import DatasetError

if TYPE_CHECKING:  # typing.Self is new in Python 3.11
    from typing_extensions import Self

TMP_MARK = ".tmp-"


def _default_mode() -> int:
    """The mode a plain ``open()`` would give (0o666 less the umask); mkstemp gives 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_name(path: Path, suffix: str = "") -> Path:
    """A fresh temporary name beside ``path`` (same folder, so the final rename is atomic),
    not yet created: ``<name>.tmp-<pid>-<random><suffix>``. ``suffix`` keeps an extension
    where a library picks the format from it (OpenCV's video writer)."""
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def temp_file(path: Path) -> tuple[int, Path]:
    """Create an empty temporary file beside ``path``; returns an open descriptor and its path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}{TMP_MARK}{os.getpid()}-")
    os.fchmod(fd, _default_mode())
    return fd, Path(tmp)


def naming(err: OSError, path: str | os.PathLike) -> OSError:
    """``err`` naming ``path`` when it names no file: a write that fails on a full disk
    (ENOSPC, EFBIG, EDQUOT) raises an OSError without a file name, and a message without the
    path does not say which output was lost. Same errno, so callers can still test it."""
    if err.filename:
        return err
    return OSError(err.errno, err.strerror or str(err), os.fspath(path))


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is (from ``st_mode``), for a message."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def remove_stale_temps(path: str | os.PathLike) -> int:
    """Delete the temporaries of ``path`` (``<name>.tmp-<pid>-...``) whose writing process no
    longer runs: what a ``kill -9`` of an earlier run left. Returns how many were removed."""
    path = Path(path)
    removed = 0
    if not path.parent.is_dir():
        return 0
    prefix = f"{path.name}{TMP_MARK}"
    for entry in os.scandir(path.parent):
        if not entry.name.startswith(prefix):
            continue
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                Path(entry.path).unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_room(path: str | os.PathLike, nbytes: int) -> None:
    """Raise ``OSError`` (ENOSPC / EFBIG / EDQUOT, naming ``path``) unless ``nbytes`` can be
    written beside ``path`` now: the blocks are reserved in a scratch file that is removed at
    once. For writers that cannot fail cleanly half-way (HDF5 crashes at exit after a write
    error); a check, not a reservation: others may fill the disk afterwards."""
    path = Path(path)
    fd, scratch = temp_file(path)
    try:
        os.posix_fallocate(fd, 0, max(int(nbytes), 1))
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise naming(err, path) from None
    finally:
        os.close(fd)
        scratch.unlink(missing_ok=True)


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``path`` through a temporary file in the same folder and a rename. A failed or
    short write (full disk) raises ``OSError`` naming ``path``; nothing is left behind."""
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:  # a buffered file: close() raises if a write failed
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise naming(err, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (UTF-8, a final newline) to ``path``, atomically; makes the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
    return path


def read_text(path: str | os.PathLike) -> str:
    """A UTF-8 text file of ours (manifest, classes, split list, sidecar); ``DatasetError``
    naming the file when it is not UTF-8 (a file damaged or written by another tool)."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {err.start}); the file is damaged or not ours"
        ) from None


def read_jsonl(
    path: str | os.PathLike, *, fix: str = "the file is damaged"
) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; ``DatasetError`` naming the bad line (``fix`` says what to do)."""
    path = Path(path)
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise DatasetError(f"{path}:{n}: not valid JSON; {fix}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{n}: expected a JSON object")
        rows.append(row)
    return rows


class AtomicOutput:
    """``with`` support for writers that publish on ``close()`` and clean up on ``abort()``.

    Subclasses set ``self._closed = False`` once their temporary output exists, and set it
    back to True in ``close()`` and ``abort()`` (both must be safe to call twice).
    """

    _closed = True

    def close(self) -> object:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:  # close() may already have been called in the block
            self.close()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave its temporary output behind.
        if not getattr(self, "_closed", True):
            try:
                self.abort()
            except OSError:
                pass


@contextmanager
def hold_lock(path: str | os.PathLike, *, what: str, shared: bool = False) -> Iterator[None]:
    """Hold an exclusive lock file at ``path`` for the ``with`` block, or raise
    ``DatasetError`` naming the process that holds it (``what`` says what it protects).
    ``shared``: a shared lock instead, which many holders take together and which keeps the
    exclusive holder out (and is refused while one runs).

    The file holds ``<pid> <host>`` of its exclusive holder, for the message and for people.
    The lock itself is ``flock``, which the kernel drops when its holder dies however it dies,
    so a lock left by a killed run is stale by construction: it is taken over, never obeyed.
    """
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _default_mode())
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").split()
            os.close(fd)
            who = "another process"
            if holder:
                who = f"process {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "")
            raise DatasetError(
                f"{path.parent}: {what} is already running there ({who}, lock {path.name}); "
                "wait for it to end, or use another output folder"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file after we opened it: lock the file
        # that is at ``path`` now, or try again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    if shared:  # other holders may remain: leave the file
        try:
            yield
        finally:
            os.close(fd)
        return
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: nobody can take a file we remove
        os.close(fd)


class LazyReader:
    """A file reader whose OS handle (a memory map, an HDF5 file) opens on first use, closes
    with ``close()`` or at the end of a ``with`` block (the next read opens it again), and
    never crosses processes: a pickled reader drops it and each process opens its own.

    Subclasses set ``self._handle = None`` in ``__init__`` and open it where they read.
    """

    _handle: Any = None

    def close(self) -> None:
        """Close the handle (reopened lazily on the next read)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None  # a map or an HDF5 handle cannot cross processes
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
