"""A crash-isolating process pool: run one function over many tasks in worker processes.

A worker that dies (a crash inside a decoder, the OOM killer) breaks a
``ProcessPoolExecutor``. The tasks that were in flight then become suspects and are run
again one at a time in a fresh pool: the one that kills its worker alone is reported through
``crashed(task)``, the others run normally. Three lone crashes in a row mean the workers cannot
run at all, which is an error.

Workers run on one thread each (N workers use N cores, not N x cores), ignore Ctrl-C (the
parent decides and stops them) and are started by a fork server or spawned, never forked.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import TypeVar

from .errors import SpikesimError

T = TypeVar("T")
R = TypeVar("R")

# Modules a fork server imports once, so each worker starts with them loaded.
PRELOAD = ["spikesim.pipeline"]


def limit_threads() -> None:
    """Run this process on one thread (OpenMP, BLAS, OpenCV, Numba)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2
    import numba

    cv2.setNumThreads(1)
    numba.set_num_threads(1)


@contextmanager
def one_thread() -> Iterator[None]:
    """Work in this process on one thread, as a worker does, and restore afterwards.

    Per clip the pipeline works on small chunks (``factor`` frames per source frame), where
    thread start-up and synchronisation cost more than they save, badly so on a busy
    machine; cores are used by running several workers.
    """
    import cv2
    import numba

    cv_threads, nb_threads = cv2.getNumThreads(), numba.get_num_threads()
    cv2.setNumThreads(1)
    numba.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        numba.set_num_threads(nb_threads)


def _init_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group; the parent decides and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (from the parent stopping the pool, or a scheduler) ends the worker through
    # SystemExit, so multiprocessing's exit handlers run: Numba's threading layer registers a
    # semaphore in each worker, and a worker killed outright leaves it to the resource
    # tracker, which then warns about "leaked semaphore objects" after Ctrl-C.
    signal.signal(signal.SIGTERM, _exit_now)
    _die_with(parent)
    limit_threads()


def _exit_now(signum: int, frame: object) -> None:
    raise SystemExit(1)


def _die_with(parent: int) -> None:
    """End this worker when the process that made the pool ends, however it ends (kill -9).

    A worker's own parent is the fork server, not the pool's owner, so a parent-death signal
    would not fire; and a worker blocked reading its task queue never notices the owner is
    gone (it holds a write end of that queue itself). A daemon thread waits on a pidfd of the
    owner (readable when it exits), or polls it where pidfds are missing, then exits hard.
    """
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)  # already gone
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): poll the PID
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while _alive(parent):
                time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)  # a clean exit (see _init_worker) ...
        time.sleep(5)
        os._exit(1)  # ... or a hard one, if the main thread is stuck in native code

    threading.Thread(target=watch, name="spikesim-parent-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mp_context() -> multiprocessing.context.BaseContext:
    # Never fork: a forked copy of a process with OpenCV / Numba threads can deadlock.
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def _terminate(executor: ProcessPoolExecutor) -> None:
    stop = getattr(executor, "terminate_workers", None)  # Python >= 3.14
    if stop is not None:
        stop()
        return
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        proc.terminate()
    executor.shutdown(wait=True, cancel_futures=True)


def run_isolated(
    function: Callable[[T], R],
    tasks: Sequence[T],
    workers: int,
    crashed: Callable[[T], R],
) -> Iterator[R]:
    """Yield ``function(task)`` for every task as they finish, in ``workers`` processes with at
    most ``2 * workers`` tasks in flight; a task that kills its worker yields ``crashed(task)``.

    ``function`` must be picklable (a module-level function, or a ``functools.partial`` of
    one) and should not raise for a bad task: return the failure instead.
    """
    pending = list(reversed(tasks))
    suspects: list[T] = []
    lone_crashes = 0
    while pending or suspects:
        executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )
        in_flight: dict[Future, T] = {}
        try:
            while pending or suspects or in_flight:
                if suspects:
                    if not in_flight:  # isolate: one suspect alone in the pool
                        task = suspects.pop()
                        in_flight[executor.submit(function, task)] = task
                else:
                    while pending and len(in_flight) < 2 * workers:
                        task = pending.pop()
                        in_flight[executor.submit(function, task)] = task
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()  # raises BrokenProcessPool if a worker died
                    del in_flight[future]
                    lone_crashes = 0
                    yield result
        except BrokenProcessPool:
            executor.shutdown(wait=False, cancel_futures=True)
            outcomes, unfinished = [], []
            for future, task in in_flight.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    outcomes.append(future.result())  # finished before the crash
                else:
                    unfinished.append(task)
            if len(in_flight) == 1 and unfinished:
                lone_crashes += 1
                if lone_crashes >= 3:
                    raise SpikesimError(
                        "worker processes keep dying, whatever the task; "
                        "run with --workers 1 to see why"
                    ) from None
                outcomes.append(crashed(unfinished[0]))
            else:
                suspects.extend(reversed(unfinished))
            yield from outcomes
            continue
        except BaseException:
            _terminate(executor)
            raise
        executor.shutdown(wait=True)
