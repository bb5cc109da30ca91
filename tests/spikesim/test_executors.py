"""The Dask executor: a local cluster on loopback converts to the same bytes, manifest and
failures as the local pool (--workers 2), resumes, and reports what is wrong in one line."""

from __future__ import annotations

import builtins
import json
import os
import shutil
from pathlib import Path

import pytest

from spikesim.convert import ConvertSettings, convert_dataset
from spikesim.errors import SpikesimError
from spikesim.executors import check_executor

ROOT = Path(__file__).resolve().parents[2]
SMALL = ConvertSettings(size=(48, 64), factor=3, interp="flow", seed=7)


def _outputs(out: Path) -> dict[str, bytes]:
    """Every .dat, sidecar and run file that must not depend on where clips ran."""
    keep = (".dat", ".json")
    files = {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.suffix in keep
    }
    for name in ("manifest.jsonl", "failures.jsonl", "classes.txt", "config.yaml"):
        files[name] = (out / name).read_bytes()
    return files


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    # Worker processes are spawned: they must find this checkout's spikesim.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), old) if p)
    import dask

    try:
        # One retry: a task that kills its worker twice is reported, not retried for long.
        with (
            dask.config.set({"distributed.scheduler.allowed-failures": 1}),
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=50,
            ) as local,
        ):
            yield local
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_dask_gives_the_bytes_of_the_local_pool(clips_dir: Path, tmp_path: Path, cluster):
    src = Path(shutil.copytree(clips_dir / "hmdb51-mini", tmp_path / "src"))
    bad = src / "wave" / "Broken_wave_f_nm_np1_fr_goo_1.avi"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + os.urandom(2000))
    pool = convert_dataset(src, tmp_path / "pool", SMALL, workers=2, progress=False)
    said: list[str] = []
    dask = convert_dataset(
        src,
        tmp_path / "dask",
        SMALL,
        executor="dask",
        address=cluster.scheduler_address,
        progress=False,
        log=said.append,
    )
    assert (dask.converted, dask.failed) == (pool.converted, pool.failed) == (3, 1)
    assert dask.repeats == pool.repeats > 0
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "pool")
    failures = (tmp_path / "dask" / "failures.jsonl").read_text().splitlines()
    assert [json.loads(r)["clip"] for r in failures] == ["wave/Broken_wave_f_nm_np1_fr_goo_1.avi"]
    assert any("dask: 2 workers" in line for line in said)
    # Resume: nothing left to do but the broken clip, which fails again.
    again = convert_dataset(
        src,
        tmp_path / "dask",
        SMALL,
        executor="dask",
        address=cluster.scheduler_address,
        progress=False,
    )
    assert (again.converted, again.skipped, again.failed) == (0, 3, 1)
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "pool")


def _die_on_crash(task: str) -> str:
    """Runs on a worker: dies like a segfaulting decoder on the task named "crash"."""
    if task == "crash":
        os._exit(1)
    return task.upper()


def test_a_task_that_kills_its_worker_is_reported_and_the_rest_run(cluster) -> None:
    from spikesim.executors import run_dask

    tasks = ["a", "crash", "b", "c"]
    got = list(run_dask(_die_on_crash, tasks, cluster.scheduler_address, lambda t: f"died:{t}"))
    assert sorted(got) == ["A", "B", "C", "died:crash"]


def test_executor_arguments_are_checked(monkeypatch) -> None:
    with pytest.raises(SpikesimError, match="choose one of local, dask"):
        check_executor("ray", None)
    with pytest.raises(SpikesimError, match="needs --address"):
        check_executor("dask", None)
    with pytest.raises(SpikesimError, match="only for --executor dask"):
        check_executor("local", "tcp://127.0.0.1:8786")
    real_import = builtins.__import__

    def no_distributed(name, *args, **kw):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError(name)
        return real_import(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(SpikesimError, match=r"pip install 'spikesim\[dask\]'") as err:
        check_executor("dask", "tcp://127.0.0.1:8786")
    assert "\n" not in str(err.value)


def test_an_unreachable_scheduler_is_one_line(clips_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    import spikesim.executors as executors

    monkeypatch_timeout = executors._CONNECT_TIMEOUT
    executors._CONNECT_TIMEOUT = "2s"
    try:
        with pytest.raises(SpikesimError, match="cannot reach the Dask scheduler"):
            convert_dataset(
                clips_dir / "hmdb51-mini",
                tmp_path / "out",
                SMALL,
                executor="dask",
                address="tcp://127.0.0.1:9",
                progress=False,
            )
    finally:
        executors._CONNECT_TIMEOUT = monkeypatch_timeout


def test_workers_undo_dasks_malloc_trim_setting(monkeypatch) -> None:
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_; a worker puts glibc back to large
    thresholds (else every frame-sized array is mmapped afresh: 1.6x CPU per clip)."""
    import sys

    from spikesim.executors import _keep_freed_memory

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert _keep_freed_memory() is False  # nothing to undo
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    assert _keep_freed_memory() is sys.platform.startswith("linux")
