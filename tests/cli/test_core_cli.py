"""`spikesim info | encode | tfi | tfp` as a user runs them, on a real clip and on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import spikesim
from cli.spikesim_cli import app

SPIKESIM = Path(sys.executable).parent / "spikesim"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def basketball(clips_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Basketball clip encoded at 48x64 with the sensor noise preset."""
    out = tmp_path_factory.mktemp("cli") / "basketball.dat"
    video = clips_dir / "ucf101-mini" / "Basketball" / "v_Basketball_g01_c01.avi"
    code, stdout, stderr = run(
        "encode", str(video), "--out", str(out), "--size", "48x64", "--noise", "sensor"
    )
    assert code == 0, stderr
    assert "141 frames of 48x64" in stdout
    return out


def test_encode_writes_one_spike_frame_per_video_frame_and_a_sidecar(basketball: Path) -> None:
    with spikesim.DatFile(basketball) as f:
        assert f.shape == (141, 48, 64)
        meta = f.meta
        spikes = f[:]
    assert meta["threshold"] == 5.0 and meta["factor"] == 1 and meta["interp"] == "none"
    assert meta["noise"] == "sensor"
    assert meta["encoder"]["noise"]["threshold_mismatch"] == pytest.approx(0.045)
    assert meta["source"].endswith("v_Basketball_g01_c01.avi")
    assert meta["source_fps"] == pytest.approx(29.97, abs=0.01)
    # a bright indoor clip: every pixel fires at most once per frame, on average ~I/5
    assert 0.02 < spikes.mean() < 0.2


def test_encode_matches_the_library_on_the_same_frames(clips_dir: Path, tmp_path: Path) -> None:
    video = clips_dir / "hmdb51-mini" / "wave" / "RATRACE_wave_f_nm_np1_fr_goo_37.avi"
    out = tmp_path / "wave.dat"
    assert run("encode", str(video), "--out", str(out), "--size", "24x32", "--seed", "3")[0] == 0
    frames = np.stack(list(spikesim.iter_frames(video, size=(24, 32))))
    expected = spikesim.encode(frames, seed=3)
    np.testing.assert_array_equal(spikesim.read_dat(out), expected)


def test_info_reports_frames_size_rate_and_sidecar(basketball: Path) -> None:
    code, stdout, _ = run("info", str(basketball), "--json")
    assert code == 0
    info = json.loads(stdout)
    spikes = spikesim.read_dat(basketball)
    assert (info["frames"], info["height"], info["width"]) == (141, 48, 64)
    assert info["spikes"] == int(spikes.sum())
    assert info["firing_rate"] == pytest.approx(spikes.mean())
    assert info["source_seconds"] == pytest.approx(141 / 29.97, rel=1e-3)
    assert info["sidecar"]["encoder"]["encoder"] == "integrate-and-fire"
    code, text, _ = run("info", str(basketball))
    assert code == 0 and "height           48" in text and "firing rate" in text


def test_info_on_a_bare_file_needs_its_size(basketball: Path, tmp_path: Path) -> None:
    bare = tmp_path / "camera.dat"
    bare.write_bytes(basketball.read_bytes())
    done = subprocess.run([str(SPIKESIM), "info", str(bare)], capture_output=True, text=True)
    assert done.returncode == 2 and "--size HxW" in done.stderr
    code, stdout, _ = run("info", str(bare), "--size", "48x64", "--json")
    assert code == 0 and json.loads(stdout)["frames"] == 141


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_tfi_writes_a_video_and_the_exact_npy(
    basketball: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"tfi{suffix}"
    code, _, stderr = run("tfi", str(basketball), "--half-window", "10", "--out", str(out), "--npy")
    assert code == 0, stderr
    expected = spikesim.tfi(spikesim.read_dat(basketball), half_window=10)
    np.testing.assert_array_equal(np.load(out.with_suffix(".npy")), expected)
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 141 - 20
    cap.release()


def test_tfp_writes_a_folder_of_pngs(basketball: Path, tmp_path: Path) -> None:
    out = tmp_path / "tfp"
    code, _, stderr = run("tfp", str(basketball), "--half-window", "4", "--out", str(out))
    assert code == 0, stderr
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 141 - 8
    expected = spikesim.tfp(spikesim.read_dat(basketball), half_window=4)
    np.testing.assert_array_equal(cv2.imread(str(pngs[5]), cv2.IMREAD_GRAYSCALE), expected[5])


def test_a_window_longer_than_the_file_is_a_usage_error(basketball: Path, tmp_path: Path) -> None:
    code, _, stderr = run(
        "tfi", str(basketball), "--half-window", "100", "--out", str(tmp_path / "x")
    )
    assert code == 2 and "smaller --half-window" in stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "missing.dat"], "missing.dat"),
        (["tfi", "missing.dat"], "missing.dat"),
        (["encode", "missing.avi"], "missing.avi"),
        (["info", "{trunc}"], "not a whole number"),
        (["info", "{trunc}", "--size", "47x63"], "multiple of 8"),
        (["encode", "{notvideo}", "--out", "{out}"], "video"),
        (["encode", "{video}", "--size", "12x34x5"], "HxW"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    basketball: Path, clips_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    trunc = tmp_path / "trunc.dat"
    trunc.write_bytes(basketball.read_bytes()[:-100])
    (tmp_path / "trunc.json").write_text(basketball.with_suffix(".json").read_text())
    notvideo = tmp_path / "notes.avi"
    notvideo.write_text("not a video\n")
    names = {
        "trunc": str(trunc),
        "notvideo": str(notvideo),
        "out": str(tmp_path / "out.dat"),
        "video": str(clips_dir / "ucf101-mini" / "Basketball" / "v_Basketball_g01_c01.avi"),
    }
    argv = [a.format(**names) for a in args]
    done = subprocess.run(
        [str(SPIKESIM), *argv], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert message in done.stderr
    assert len(lines) <= 3  # click's usage errors add "Usage:" and "Try --help" lines
    assert not (tmp_path / "out.dat").exists()
