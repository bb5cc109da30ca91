"""Where a conversion's clips run: this process, the local pool, or a Dask cluster.

``spikesim convert --executor dask --address tcp://scheduler:8786`` sends each clip to the
workers of a running Dask cluster (``distributed``, the optional extra ``spikesim[dask]``).
The task is the very function the local pool runs (``convert_clip`` on one clip, with its
seed from the run seed and the clip path), so the bytes are those of ``--workers N``; the
client (the process running ``spikesim convert``) collects the outcomes, shows progress,
saves the manifest as it goes and writes it once at the end. Workers must see SRC and OUT at
the same paths (a shared file system), as with Slurm shards.

A clip whose worker dies (a decoder crash, the OOM killer) is retried by Dask on other
workers; once Dask gives up on it (``KilledWorker``), it and any clip that shared the dying
worker become suspects, run again one at a time at the end: the one that still kills its
worker alone is recorded as failed and the run goes on, as with the local pool.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from .errors import SpikesimError

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "dask")
"""Names accepted by ``convert_dataset(executor=...)`` and ``--executor``."""

_IN_FLIGHT_PER_WORKER = 2  # like the local pool: a few clips queued per worker, not all
_CONNECT_TIMEOUT = "30s"

_worker_ready = False  # set once per worker process


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise SpikesimError(
            "--executor dask needs Dask's 'distributed' package: pip install 'spikesim[dask]'"
        ) from None
    return distributed


def check_executor(executor: str, address: str | None) -> None:
    """Refuse an unknown executor, a Dask run without an address, or a missing package."""
    if executor not in EXECUTORS:
        raise SpikesimError(f"executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if executor == "dask":
        if not address:
            raise SpikesimError(
                "--executor dask needs --address, the scheduler's address "
                "(e.g. tcp://10.0.0.1:8786)"
            )
        _distributed()
    elif address:
        raise SpikesimError("--address is only for --executor dask")


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_FREED = 64 << 20  # bytes of freed heap a worker keeps instead of returning to the OS
_MMAP_FROM = 32 << 20  # glibc's largest mmap threshold on 64-bit


def _keep_freed_memory() -> bool:
    """Undo Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` for this worker (glibc only).

    Dask's nanny starts workers with it to return memory early; it also freezes glibc's
    mmap threshold at 128 KiB, so every frame-sized NumPy array (300 KB at 240x320) is mapped
    and unmapped afresh: measured 1.6x the CPU per clip. Returns whether it was changed.
    """
    if not os.environ.get("MALLOC_TRIM_THRESHOLD_") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)
            and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED)
        )
    except (OSError, AttributeError):  # not glibc: nothing to undo
        return False


def _on_worker(function: Callable[[T], R], task: T) -> R:
    """Runs on a Dask worker: one thread for the clip's libraries, as in the local pool, and
    glibc's malloc as in a plain process."""
    global _worker_ready
    if not _worker_ready:
        from .pool import limit_threads

        limit_threads()
        _keep_freed_memory()
        _worker_ready = True
    return function(task)


def run_dask(
    function: Callable[[T], R],
    tasks: Sequence[T],
    address: str,
    crashed: Callable[[T], R],
    *,
    log: Callable[[str], None] | None = None,
) -> Iterator[R]:
    """Yield ``function(task)`` for every task as Dask workers finish them.

    ``address``: the scheduler (``tcp://host:8786``) or a ``distributed.Client`` already
    connected. ``function`` must be importable by the workers (a module-level function or a
    ``functools.partial`` of one) and should return failures rather than raise; a task whose
    worker keeps dying yields ``crashed(task)``. At most two tasks per worker thread are in
    flight. Closing the generator cancels what is still queued.
    """
    distributed = _distributed()
    own = not isinstance(address, distributed.Client)
    try:
        client = (
            distributed.Client(address, timeout=_CONNECT_TIMEOUT, set_as_default=False)
            if own
            else address
        )
    except OSError as err:
        raise SpikesimError(
            f"cannot reach the Dask scheduler at {address} ({err}); "
            "start it (dask scheduler) or fix --address"
        ) from None
    in_flight: dict[str, tuple[Any, T, bool]] = {}  # key -> (future, task, ran alone)
    try:
        threads = sum(client.nthreads().values())
        if log is not None:
            log(f"dask: {len(client.nthreads())} workers, {threads} threads at {address}")
        limit = max(1, threads) * _IN_FLIGHT_PER_WORKER
        pending = list(reversed(tasks))
        suspects: list[T] = []  # were on a worker that died; each runs again alone

        def submit(task: T, alone: bool) -> Any:
            future = client.submit(_on_worker, function, task, pure=False)
            in_flight[future.key] = (future, task, alone)
            return future

        first = [submit(pending.pop(), False) for _ in range(min(limit, len(pending)))]
        if not first:
            return
        # This client is not the process default: as_completed must be given its loop.
        done = distributed.as_completed(first, loop=client.loop, raise_errors=False)
        for future in done:
            _, task, alone = in_flight.pop(future.key)
            if future.status == "error":
                error = future.exception()
                if not isinstance(error, distributed.KilledWorker):
                    raise error
                if alone:
                    yield crashed(task)  # it kills a worker even with nothing beside it
                else:
                    suspects.append(task)  # perhaps only a neighbour of the culprit
            else:
                yield future.result()
            future.release()
            if pending:
                done.add(submit(pending.pop(), False))
            elif suspects and not in_flight:
                done.add(submit(suspects.pop(), True))
    finally:
        if in_flight:  # interrupted: drop what is queued or running
            client.cancel([entry[0] for entry in in_flight.values()], force=True)
        if own:
            client.close()
