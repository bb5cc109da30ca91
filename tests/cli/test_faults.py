"""Faults seen from the command line (issue 15): a full disk, kill -9 / SIGTERM, a second
run into the same folder. Each test fails on the behaviour the issue reports.

A full disk is simulated without root: the command runs in a child process whose
``RLIMIT_FSIZE`` is small and whose SIGXFSZ is ignored, so a write past the limit fails with
EFBIG exactly where a write on a full disk fails with ENOSPC.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cli.spikesim_cli import main
from spikesim.dat import write_dat
from spikesim.files import TMP_MARK, hold_lock

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--size", "48x64", "--factor", "2", "--interp", "linear", "--no-progress"]


def cli(*argv: object, limit: int | None = None, **kw) -> subprocess.Popen:
    """``spikesim ARGV`` in a child process; ``limit``: the largest file it may write."""

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, as a full disk gives ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1",
           "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}  # fmt: skip
    code = "import sys; from cli.spikesim_cli import main; main(sys.argv[1:])"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, argv)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=small_disk if limit is not None else None,
        **kw,
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def one_error_line(err: str, *, logs: bool = False) -> str:
    """The one ``error:`` line of stderr; ``logs``: other lines are progress notes (convert),
    but no traceback or warning."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and (logs or len(lines) == 1), err
    assert lines[-1] == errors[0] and "Traceback" not in err and "arning" not in err, err
    return errors[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TMP_MARK in p.name)


@pytest.fixture(scope="module")
def noisy_dat(tmp_path_factory) -> Path:
    """A 60-frame 256x320 .dat of random spikes: its images compress badly, so every output
    (a PNG, a video, an .npy) is far larger than the 16 KiB the child may write."""
    rng = np.random.default_rng(0)
    dat = write_dat(
        tmp_path_factory.mktemp("noise") / "noise.dat", rng.random((60, 256, 320)) < 0.3
    )
    _warm_numba_cache(dat)
    return dat


def _warm_numba_cache(dat: Path) -> None:
    """Compile the kernels here first: the child could not save Numba's cache files either."""
    from spikesim.dat import DatFile
    from spikesim.reconstruct import iter_tfi, iter_tfp

    with DatFile(dat) as f:
        for iterate in (iter_tfi, iter_tfp):
            for _ in iterate(f, 2):
                break


# ---------------------------------------------------------------------------- a full disk

FULL = 16 * 1024


# (command, output, options): every kind of output tfi / tfp write.
OUTPUTS = [
    ("tfp", "images", []),  # PNGs: cv2.imwrite said yes and left empty files
    ("tfi", "video.mp4", []),  # H.264 through PyAV: an unplayable 64 KiB file, exit 0
    ("tfi", "video.avi", []),  # OpenCV's VideoWriter, which reports nothing
    ("tfp", "video.avi", ["--npy"]),  # the memory-mapped .npy: SIGBUS, exit 135, no message
]


def test_a_full_disk_fails_in_one_line_and_leaves_nothing(noisy_dat: Path, tmp_path: Path):
    # The four commands run side by side: each waits mostly on its interpreter's start.
    runs = []
    for k, (command, name, extra) in enumerate(OUTPUTS):
        out = tmp_path / f"out{k}" / name
        out.parent.mkdir()
        proc = cli(command, noisy_dat, "--half-window", "2", "--out", out, *extra, limit=FULL)
        runs.append((out, proc))
    for out, proc in runs:
        code, stdout, err = finish(proc)
        line = one_error_line(err)
        assert code > 0, (out, code, err)  # an error, not a signal (SIGBUS)
        assert "wrote" not in stdout
        assert str(out.parent) in line  # the message names the output
        assert list(out.parent.iterdir()) == [], out  # nothing final, no temporaries


def test_encode_on_a_full_disk_leaves_no_dat(clips_dir: Path, tmp_path: Path) -> None:
    from spikesim.pipeline import ConvertSettings, convert_clip

    clip = next((clips_dir / "ucf101-mini").rglob("*.avi"))
    settings = ConvertSettings(size=(96, 128), factor=2, interp="linear")
    convert_clip(clip, tmp_path / "warm.dat", settings, seed=0, source="x")  # compiles here: the
    # child could not save Numba's cache files either
    out = tmp_path / "out" / "clip.dat"
    out.parent.mkdir()
    options = ["--size", "96x128", "--factor", "2", "--interp", "linear"]
    code, _, err = finish(cli("encode", clip, "--out", out, *options, limit=FULL))
    line = one_error_line(err)
    assert code == 1 and str(out) in line and "free some space" in line
    assert list(out.parent.iterdir()) == []


# ---------------------------------------------------------------------------- processes


def _session_members(sid: int) -> list[int]:
    """PIDs of live processes in session ``sid`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture(scope="module")
def many_clips(tmp_path_factory) -> Path:
    """A synthetic dataset big enough that a 2-worker convert is still busy after a second."""
    src = tmp_path_factory.mktemp("many") / "synth"
    with pytest.raises(SystemExit):
        main(["synth", "--out", str(src), "--classes", "2", "--clips-per-class", "12",
              "--size", "64x80", "--video-frames", "24"])  # fmt: skip
    return src


@pytest.fixture
def sessions():
    """Sessions started by a test; whatever is left of them is killed at the end, so a
    failing test does not leave orphans behind (as the behaviour under test did)."""
    started: list[int] = []
    yield started
    for sid in started:
        for pid in _session_members(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _start_convert(src: Path, out: Path) -> subprocess.Popen:
    proc = cli("convert", src, "--out", out, "--workers", "2", "--size", "64x80",
               "--factor", "8", "--no-progress", start_new_session=True)  # fmt: skip
    # Busy: the pool's workers are up (the session holds the CLI, the fork server, the
    # resource tracker and the workers) and a first clip is done.
    assert _wait_for(lambda: len(_session_members(proc.pid)) >= 4, 60), "no workers started"
    assert _wait_for(lambda: any(_clips(out)), 60), "no clip finished"
    return proc


def _clips(out: Path) -> list[Path]:
    """Converted clips (not the links of the SpikeCV view under train/ and test/)."""
    return [p for p in out.rglob("*.dat") if not p.is_symlink()]


def test_kill_9_of_convert_leaves_no_process_behind(
    many_clips: Path, tmp_path: Path, sessions: list[int]
) -> None:
    proc = _start_convert(many_clips, tmp_path / "out")
    sessions.append(proc.pid)
    proc.kill()
    proc.wait(30)  # not communicate(): orphans holding its pipes would block that forever
    # Workers, the fork server and the resource tracker all end (they stayed, blocked, before).
    assert _wait_for(lambda: not _session_members(proc.pid), 10), "processes are still alive"


def test_sigterm_of_convert_stops_cleanly_with_a_manifest(
    many_clips: Path, tmp_path: Path, sessions: list[int]
) -> None:
    out = tmp_path / "out"
    proc = _start_convert(many_clips, out)
    sessions.append(proc.pid)
    proc.terminate()
    code, _, err = finish(proc, 60)
    assert code == 130, err
    line = one_error_line(err, logs=True)  # also: no "leaked semaphore" warning
    assert "interrupted" in line
    assert _wait_for(lambda: not _session_members(proc.pid), 10)
    listed = [
        json.loads(line)["path"] for line in (out / "manifest.jsonl").read_text().splitlines()
    ]
    assert listed and all((out / path).is_file() for path in listed)  # what finished
    assert leftovers(out) == [] and not (out / ".convert.lock").exists()


def test_ctrl_c_of_convert_prints_one_line(
    many_clips: Path, tmp_path: Path, sessions: list[int]
) -> None:
    proc = _start_convert(many_clips, tmp_path / "out")
    sessions.append(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    code, _, err = finish(proc, 60)
    assert code == 130
    assert "semaphore" not in err
    one_error_line(err, logs=True)


def test_a_second_convert_into_the_same_folder_refuses(
    capsys, clips_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with hold_lock(out / ".convert.lock", what="a spikesim convert"):
        with pytest.raises(SystemExit) as exit_info:
            main(["convert", str(clips_dir / "hmdb51-mini"), "--out", str(out), *SMALL])
        line = one_error_line(capsys.readouterr().err)
        assert exit_info.value.code == 2
        assert f"process {os.getpid()}" in line and "already running" in line
        assert not any(_clips(out))
    # A lock file left by a killed run (its flock died with it) does not stop the next run.
    (out / ".convert.lock").write_text("999999 somehost\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", str(clips_dir / "hmdb51-mini"), "--out", str(out), *SMALL])
    assert exit_info.value.code == 0, capsys.readouterr().err
    assert len(_clips(out)) == 3 and not (out / ".convert.lock").exists()


# ---------------------------------------------------------------------------- outputs and inputs


def test_no_command_writes_over_its_input(capsys, clips_dir: Path, tmp_path: Path) -> None:
    import shutil

    clip = Path(shutil.copy(next((clips_dir / "ucf101-mini").rglob("*.avi")), tmp_path))
    before = clip.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(clip), "--out", str(clip), "--overwrite"])
    assert exit_info.value.code == 2 and str(clip) in one_error_line(capsys.readouterr().err)
    assert clip.read_bytes() == before
    # the sidecar of an encoded .dat is an input of tfi: never its output
    dat = tmp_path / "clip.dat"
    with pytest.raises(SystemExit):
        main(["encode", str(clip), "--out", str(dat), "--size", "32x32"])
    capsys.readouterr()
    side = dat.with_suffix(".json").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["tfi", str(dat), "--half-window", "1", "--out", str(dat.with_suffix(".json")),
              "--overwrite"])  # fmt: skip
    assert exit_info.value.code == 2
    one_error_line(capsys.readouterr().err)
    assert dat.with_suffix(".json").read_bytes() == side
    # pack into the folder it reads, even with --overwrite
    out = tmp_path / "conv"
    with pytest.raises(SystemExit):
        main(["convert", str(clips_dir / "hmdb51-mini"), "--out", str(out), *SMALL])
    capsys.readouterr()
    manifest = (out / "manifest.jsonl").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(["pack", str(out), "--out", str(out / "manifest.jsonl"), "--overwrite"])
    assert exit_info.value.code == 2 and "inside" in one_error_line(capsys.readouterr().err)
    assert (out / "manifest.jsonl").read_bytes() == manifest


def test_ctrl_c_in_train_says_to_resume(capsys, monkeypatch, tmp_path: Path) -> None:
    import spklip.training.loop as loop_module
    from cli.spklip_cli import main as spklip_main

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "train", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        spklip_main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    line = one_error_line(capsys.readouterr().err)
    # "run the same command again" was refused without --resume
    assert exit_info.value.code == 130 and "--resume" in line


def test_eval_never_writes_into_the_dataset_it_reads(capsys, tmp_path: Path) -> None:
    from cli.spklip_cli import main as spklip_main

    data = tmp_path / "conv"
    data.mkdir()
    (data / "manifest.jsonl").write_text("{}\n")
    with pytest.raises(SystemExit) as exit_info:
        spklip_main(["eval", "--checkpoint", str(tmp_path / "run"), "--data", str(data),
                     "--out", str(data / "results"), "--overwrite"])  # fmt: skip
    assert exit_info.value.code == 2 and "which this command reads" in one_error_line(
        capsys.readouterr().err
    )
    assert (data / "manifest.jsonl").read_text() == "{}\n"


def test_info_on_a_fifo_or_a_device_says_what_it_is(capsys, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.dat"
    os.mkfifo(fifo)  # opened for reading, it blocked `info` until a writer came
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a device")):
        with pytest.raises(SystemExit) as exit_info:
            main(["info", str(path), "--size", "8x16"])
        line = one_error_line(capsys.readouterr().err)
        assert exit_info.value.code == 2 and kind in line and str(path) in line


def test_a_sidecar_claiming_huge_frames_over_a_small_file_is_one_line(capsys, tmp_path: Path):
    path = write_dat(tmp_path / "a.dat", np.zeros((3, 8, 16), bool))
    side = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**side, "height": 10000, "width": 10000}))
    with pytest.raises(SystemExit) as exit_info:
        main(["info", str(path)])
    assert exit_info.value.code == 2 and "10000x10000" in one_error_line(capsys.readouterr().err)


def test_pack_on_a_full_disk_leaves_no_h5(capsys, clips_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "conv"
    with pytest.raises(SystemExit):
        main(["convert", str(clips_dir / "hmdb51-mini"), "--out", str(out), *SMALL])
    capsys.readouterr()
    target = tmp_path / "packed" / "ds.h5"
    target.parent.mkdir()
    code, _, err = finish(cli("pack", out, "--out", target, limit=FULL))
    # one error line (besides the progress bar), no "Exception ignored" tracebacks from h5py
    line = one_error_line(err.replace("\r", "\n").replace("pack:", "\npack:"), logs=True)
    assert code == 1 and str(target) in line and "free some space" in line
    assert list(target.parent.iterdir()) == []
