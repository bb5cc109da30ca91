"""The command-line conventions of docs/conventions.md, each point of issue 9 as a test that
would have caught the stumble a new user met."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

import spikesim
from cli.spikesim_cli import app as spikesim_app
from cli.spklip_cli import app as spklip_app

BIN = Path(sys.executable).parent
SPIKESIM = BIN / "spikesim"


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out.update(_commands(command, f"{prefix}{name} "))
        else:
            out[f"{prefix}{name}"] = command
    return out


ALL = {
    **{f"spikesim {k}": v for k, v in _commands(spikesim_app).items()},
    **{f"spklip {k}": v for k, v in _commands(spklip_app).items()},
}


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        name: p
        for p in command.params
        if isinstance(p, click.Option)
        for name in p.opts
        if name.startswith("--")
    }


# ------------------------------------------------------------------ 5, 6: names and outputs


def test_out_is_always_an_option_never_a_positional() -> None:
    for name, command in ALL.items():
        positionals = [p.name for p in command.params if isinstance(p, click.Argument)]
        assert not any("out" in (p or "") for p in positionals), (name, positionals)


def test_one_name_per_meaning() -> None:
    retired = {"--window", "--clips", "--max-clips", "--workers-loader"}
    for name, command in ALL.items():
        opts = _options(command)
        assert not retired & opts.keys(), (name, retired & opts.keys())
        # --workers means conversion processes; loader processes are --loader-workers
        if name.startswith("spklip"):
            assert "--workers" not in opts, name
        # --frames means spike frames per clip; synth's video length is --video-frames
        if name == "spikesim synth":
            assert "--frames" not in opts and "--video-frames" in opts


def test_shared_options_have_one_default_everywhere() -> None:
    for name, command in ALL.items():
        opts = _options(command)
        if "--device" in opts:
            assert opts["--device"].default == "auto", name
        if "--split" in opts:  # evaluation reads test; searching a dataset reads all of it
            assert opts["--split"].default == ("all" if name == "spklip retrieve" else "test")
        if "--half-window" in opts:
            assert opts["--half-window"].default == 20, name


def test_every_option_has_help_and_required_ones_say_so() -> None:
    for name, command in ALL.items():
        ctx = click.Context(command)
        for flag, option in _options(command).items():
            if flag in ("--help", "--version"):
                continue
            assert option.help, f"{name} {flag} has no help text"
            shown = option.get_help_record(ctx)[1]
            assert shown.count("[required]") == option.required, f"{name} {flag}: {shown!r}"


def test_eval_out_is_a_folder_and_nothing_lands_in_the_working_directory(
    tmp_path: Path, monkeypatch
) -> None:
    # the old `--out evaldir/` wrote a file named evaldir and confusion.png into the cwd
    from spklip.training.loop import TrainConfig, train
    from tests.spklip.test_data import make_converted
    from tests.spklip.training.test_loop import MINI

    data = make_converted(tmp_path / "data", per_class=4, frames=20, size=(8, 16))
    train(
        TrainConfig(
            data=data, out=tmp_path / "run", model="spklip-tiny", model_overrides=MINI,
            epochs=1, batch_size=2, lr=1e-3, workers=0, progress=False, threads=1,
        )
    )  # fmt: skip
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    result = CliRunner().invoke(
        spklip_app,
        ["eval", "--checkpoint", str(tmp_path / "run" / "checkpoints" / "latest"),
         "--data", str(data), "--out", "evaldir", "--loader-workers", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (work / "evaldir").iterdir()) == ["confusion.png", "eval.json"]
    assert sorted(p.name for p in work.iterdir()) == ["evaldir"]


# ------------------------------------------------------------------ 2: checkpoint paths


def test_a_run_folder_a_checkpoint_folder_and_the_latest_pointer_all_resolve(
    tmp_path: Path,
) -> None:
    from spklip.checkpoint import resolve_checkpoint

    run = tmp_path / "run"
    ckdir = run / "checkpoints"
    for epoch in ("epoch_001", "epoch_002"):
        (ckdir / epoch).mkdir(parents=True)
        (ckdir / epoch / "config.json").write_text("{}")
        (ckdir / epoch / "model.safetensors").write_bytes(b"")
    (ckdir / "latest").write_text("epoch_001\n")
    want = ckdir / "epoch_001"
    assert resolve_checkpoint(run) == want
    assert resolve_checkpoint(ckdir) == want
    assert resolve_checkpoint(ckdir / "latest") == want  # README's form; was an error
    assert resolve_checkpoint(ckdir / "epoch_002") == ckdir / "epoch_002"
    # a pointer that leaves the run is not followed: the newest folder of this run is used
    (ckdir / "latest").write_text("../../elsewhere/epoch_009\n")
    assert resolve_checkpoint(ckdir / "latest") == ckdir / "epoch_002"


# ------------------------------------------------------------------ 3: nothing overwritten


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPIKESIM), *args], capture_output=True, text=True)


def test_encode_refuses_to_replace_a_dat_or_a_json_beside_the_video(
    clips_dir: Path, tmp_path: Path
) -> None:
    video = tmp_path / "clip.avi"
    video.write_bytes((clips_dir / "hmdb51-mini" / "wave").glob("*.avi").__next__().read_bytes())
    notes = tmp_path / "clip.json"
    notes.write_text('{"mine": true}')  # an unrelated file that happens to share the stem
    done = _run("encode", str(video), "--size", "24x32")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--overwrite" in done.stderr
    assert notes.read_text() == '{"mine": true}' and not (tmp_path / "clip.dat").exists()
    # onto the video itself: refused even with --overwrite
    done = _run("encode", str(video), "--out", str(video), "--overwrite")
    assert done.returncode == 2 and "input" in done.stderr
    assert _run("encode", str(video), "--size", "24x32", "--overwrite").returncode == 0


def test_write_dat_refuses_to_replace_without_overwrite(tmp_path: Path) -> None:
    spikes = np.zeros((2, 2, 4), bool)
    path = spikesim.write_dat(tmp_path / "a.dat", spikes)
    with pytest.raises(spikesim.DatError, match="overwrite"):
        spikesim.write_dat(path, spikes)
    spikesim.write_dat(path, ~spikes, overwrite=True)
    assert spikesim.read_dat(path).all()


# ------------------------------------------------------------------ 7: info


def test_info_summarises_a_converted_folder_and_its_pack(tmp_path: Path) -> None:
    from tests.spklip.test_data import make_converted

    folder = make_converted(tmp_path / "conv", per_class=2, frames=8, size=(8, 16))
    h5 = spikesim.pack_dataset(folder, tmp_path / "ds.h5")
    for path in (folder, h5):
        done = _run("info", str(path), "--json")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["clips"] == len(spikesim.open_dataset(folder))
        assert (summary["height"], summary["width"]) == (8, 16)
        assert 0 <= summary["firing_rate"] <= 1


def test_a_bare_dat_names_the_size_flag(tmp_path: Path) -> None:
    bare = tmp_path / "camera.dat"
    bare.write_bytes(bytes(8 * 50))
    done = _run("info", str(bare))
    assert done.returncode == 2 and "--size" in done.stderr


# ------------------------------------------------------------------ 8: readable TFI


def test_normalize_brightens_tfi_and_the_codec_is_named(clips_dir: Path, tmp_path: Path) -> None:
    video = clips_dir / "ucf101-mini" / "Basketball" / "v_Basketball_g01_c01.avi"
    dat = tmp_path / "b.dat"
    assert _run("encode", str(video), "--out", str(dat), "--size", "48x64").returncode == 0
    plain, stretched = tmp_path / "plain", tmp_path / "stretched"
    assert _run("tfi", str(dat), "--out", str(plain), "--half-window", "10").returncode == 0
    done = _run("tfi", str(dat), "--out", str(stretched), "--half-window", "10", "--normalize")
    assert done.returncode == 0 and "contrast x" in done.stdout
    import cv2

    dark = cv2.imread(str(plain / "000050.png"), cv2.IMREAD_GRAYSCALE)
    bright = cv2.imread(str(stretched / "000050.png"), cv2.IMREAD_GRAYSCALE)
    assert dark.max() <= 255 / 5 + 1  # raw TFI at threshold 5: nearly black
    assert bright.mean() > 3 * dark.mean() and bright.max() == 255
    done = _run("tfi", str(dat), "--out", str(tmp_path / "v.mp4"), "--half-window", "10")
    assert done.returncode == 0 and ("h264" in done.stdout or "mp4v" in done.stdout)


# ------------------------------------------------------------------ 1, 4, 9: library words


def test_spike_clips_has_no_train_flag_that_reads_like_a_split() -> None:
    from spklip.data import SpikeClips

    params = inspect.signature(SpikeClips).parameters
    assert "train" not in params and "augment" in params and "split" in params


def test_every_reader_takes_start_and_count(tmp_path: Path) -> None:
    from tests.spklip.test_data import make_converted

    folder = make_converted(tmp_path / "conv", per_class=1, frames=20, size=(8, 16))
    ds = spikesim.open_dataset(folder)
    path = folder / ds.clips[0].path
    with spikesim.DatFile(path) as dat:
        want = dat[5:12]
        np.testing.assert_array_equal(dat.read(5, 7), want)
        np.testing.assert_array_equal(
            dat.read_packed(5, 7), spikesim.pack_frames(want, flipud=dat.flipud)
        )
    np.testing.assert_array_equal(spikesim.read_dat(path, start=5, count=7), want)
    np.testing.assert_array_equal(ds.read(0, 5, 7), want)
    np.testing.assert_array_equal(ds.read_packed(0, 5, 7), spikesim.pack_frames(want))


def test_iter_frames_returns_the_decoded_size_unless_asked(clips_dir: Path) -> None:
    wide = next((clips_dir / "ucf101-mini").rglob("*.avi"))
    native = spikesim.probe_video(wide)
    frame = next(spikesim.iter_frames(wide))
    assert frame.shape == (native.height, native.width)
    assert next(spikesim.iter_frames(wide, size=(24, 32))).shape == (24, 32)
