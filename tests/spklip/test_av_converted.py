"""The real-data audio-visual path: `spikesim synth --audio --corrupt` -> `spikesim convert`
-> AV spike tensors (spklip.av_data.ConvertedAV), the WAV noise callable, and
`spklip av-experiment` with its one-line errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import spikesim
from cli.spklip_cli import main
from spklip.av_data import AVSpikeSettings, ConvertedAV, intensity_to_steps, load_converted_av
from spklip.checkpoint import load_model, load_scmrl_model
from spklip.errors import SpklipError
from spklip.evaluation.av import evaluate_av, predict_av
from spklip.metrics import predictions
from spklip.scmrl import create_scmrl

pytest.importorskip("av", reason="PyAV reads the sound tracks")


@pytest.fixture(scope="module")
def av_folders(tmp_path_factory) -> tuple[Path, Path]:
    """4 classes x 6 clips (groups g01, g03 train, g02 test), 32x32 video of 16 frames with sound,
    converted at 16x16, one spike frame per video frame."""
    root = tmp_path_factory.mktemp("av")
    synth = spikesim.synthesize(
        root / "synth",
        classes=4,
        clips_per_class=6,
        size=(32, 32),
        frames=16,
        audio=True,
        corrupt=True,
    )
    settings = spikesim.ConvertSettings(size=(16, 16), factor=1, interp="linear", threshold=8.0)
    spikesim.convert_dataset(synth, root / "conv", settings, progress=False)
    return synth, root / "conv"


SETTINGS = AVSpikeSettings(steps=4, n_mels=8, frames_per_step=8)


def test_converted_clips_become_av_tensors_with_their_labels(av_folders):
    synth, conv = av_folders
    source = ConvertedAV(conv, synth, SETTINGS)
    dataset = spikesim.open_dataset(conv)
    captions = {
        json.loads(line)["path"]: json.loads(line)
        for line in (synth / "captions.jsonl").read_text().splitlines()
    }
    for split in ("train", "test"):
        idx = dataset.indices(split)
        t = source.tensors(split)
        assert t.vision.shape == (len(idx), 4, 1, 16, 16)
        assert t.audio.shape == (len(idx), 4, 3, 8, 8)  # IF, ON, OFF
        assert t.labels.tolist() == [dataset.clips[i].label for i in idx]
        assert t.classes == dataset.classes
        # the WAV paired with each clip is the one synth wrote for its video
        for i in idx:
            row = captions[dataset.clips[i].source]
            assert source.wavs[i] == synth / row["audio"]
            assert source.corruption[i] == row["corruption"]
    # vision: OR of 4 spike frames per step, as vision_to_steps bins them
    i = dataset.indices("train")[0]
    frames = dataset.read(i)
    first = source.tensors("train").vision[0, 0, 0].numpy()
    np.testing.assert_array_equal(first, frames[:4].any(axis=0).astype(np.uint8))
    # audio spikes are 0/1 and neither silent nor saturated
    audio = source.tensors("train").audio.float()
    assert 0.02 < float(audio.mean()) < 0.9
    assert set(np.unique(audio.numpy())) <= {0.0, 1.0}


def test_audio_modes_give_if_spikes_and_on_off_events_as_channels(av_folders):
    synth, conv = av_folders
    i = spikesim.open_dataset(conv).indices("train")[0]
    modes = {
        m: ConvertedAV(
            conv, synth, AVSpikeSettings(steps=4, n_mels=8, frames_per_step=8, audio_mode=m)
        )
        for m in ("if", "onoff", "if+onoff")
    }
    both = modes["if+onoff"].audio(i)
    assert both.shape == (4, 3, 8, 8) and both.dtype == np.uint8
    np.testing.assert_array_equal(both[:, :1], modes["if"].audio(i))
    np.testing.assert_array_equal(both[:, 1:], modes["onoff"].audio(i))
    # the ON/OFF channels are the cochlea events of the clip's mel spectrogram, 0/1
    wave = modes["onoff"].read_wave(i)
    hop = len(wave) // 32
    spec = spikesim.mel_spectrogram(wave, 16000, n_fft=512, hop_length=hop, n_mels=8)
    events = spikesim.audio_spikes(spec, mode="onoff", theta=3.0)  # (frames, 2, 8)
    start = (len(spec) - 32) // 2
    expected = (events[start : start + 32] != 0).reshape(4, 8, 2, 8).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(both[:, 1:], expected)
    assert 0 < both[:, 1:].mean() < both[:, :1].mean()  # events where the sound changes
    with pytest.raises(SpklipError, match="audio_mode") as info:
        AVSpikeSettings(audio_mode="cochlea")
    assert "\n" not in str(info.value)


def test_groups_are_the_corruptions_and_evaluation_reports_them(av_folders):
    synth, conv = av_folders
    source = ConvertedAV(conv, synth, SETTINGS)
    idx = source.indices("test")
    t = source.tensors("test")
    assert t.groups == [source.corruption[i] for i in idx]
    assert set(t.groups) == {"none", "video", "audio"}
    sub = t.subset([2, 0])
    assert sub.groups == [t.groups[2], t.groups[0]]
    torch.manual_seed(0)
    model = create_scmrl(
        "scmrl-tiny",
        **{
            **t.shapes,
            "vision_size": (16, 16),
            "audio_size": (8, 8),
            "stages": 1,
            "token_grid": (2, 2),
        },
    )
    result = evaluate_av(model, t)
    hits = {g: [] for g in t.groups}
    logits, labels = predict_av(model, t)
    right = predictions(logits, labels) == labels
    for g, ok in zip(t.groups, right, strict=True):
        hits[g].append(ok)
    assert result["per_group"] == {g: float(np.mean(h)) for g, h in sorted(hits.items())}


def test_event_conversions_give_on_off_event_frames(av_folders, tmp_path):
    synth, _ = av_folders
    settings = spikesim.ConvertSettings(size=(16, 16), factor=1, interp="linear", sensor="dvs")
    conv = spikesim.convert_dataset(synth, tmp_path / "dvs", settings, progress=False).out
    source = ConvertedAV(conv, synth, AVSpikeSettings(steps=5, n_mels=8, frames_per_step=8))
    dataset = spikesim.open_dataset(conv)
    i = dataset.indices("train")[0]
    v = source.vision(i)
    assert v.shape == (5, 2, 16, 16) and v.dtype == np.uint8  # 15 intervals, 3 per step
    events = dataset.read_events(i)
    frame_us = 1e6 / 25.0  # synth's frame rate
    counts = spikesim.event_count_frames(events, 16, 16, 15, t0=0, t1=round(15 * frame_us))
    np.testing.assert_array_equal(v[0], (counts[:3] != 0).any(axis=0))
    assert 0 < v.mean() < 0.5  # events where things move, not everywhere
    framed = ConvertedAV(
        conv, synth, AVSpikeSettings(steps=5, n_mels=8, frames_per_step=8, vision_binning="frames")
    ).vision(i)
    assert framed.shape == (5, 6, 16, 16)  # 3 intervals x (ON, OFF) per step
    np.testing.assert_array_equal(framed.reshape(5, 3, 2, 16, 16).any(axis=1), v)


def test_splits_carve_val_from_train_and_keep_test(av_folders):
    synth, conv = av_folders
    train, val, test, _ = load_converted_av(conv, synth, SETTINGS, val_fraction=0.5, split_seed=3)
    n_train = len(spikesim.open_dataset(conv).indices("train"))
    assert len(train) + len(val) == n_train and len(val) == 8  # one group (2 clips) per class
    assert sorted(val.labels.tolist()) == [0, 0, 1, 1, 2, 2, 3, 3]
    # by group: the validation group is the same scene in every class, and not in training
    source = ConvertedAV(conv, synth, SETTINGS)
    dataset = spikesim.open_dataset(conv)
    side = spikesim.carve_val(
        [dataset.clips[i] for i in dataset.indices("train")], spikesim.ValHoldout(0.5, 3)
    )
    val_groups = {spikesim.clip_group(p, p.split("/")[0]) for p, s in side.items() if s == "val"}
    assert len(val_groups) == 1
    assert torch.equal(source.train_val(0.5, seed=3)[1].vision, val.vision)
    again = load_converted_av(conv, synth, SETTINGS, val_fraction=0.5, split_seed=3)[1]
    assert torch.equal(again.audio, val.audio) and torch.equal(again.vision, val.vision)
    assert len(test) == len(spikesim.open_dataset(conv).indices("test"))


def test_audio_at_snr_adds_noise_to_the_wavs(av_folders):
    synth, conv = av_folders
    source = ConvertedAV(conv, synth, SETTINGS)
    clean = source.tensors("test").audio.numpy()
    at_snr = source.audio_at_snr("test", seed=1)
    assert at_snr(200.0).shape == clean.shape
    np.testing.assert_array_equal(at_snr(200.0), clean)  # noise far below 16-bit quantisation
    noisy = at_snr(0.0)
    assert (noisy != clean).mean() > 0.05
    np.testing.assert_array_equal(noisy, source.audio_at_snr("test", seed=1)(0.0))  # seeded


def test_missing_sound_is_one_line(av_folders, tmp_path):
    _, conv = av_folders
    with pytest.raises(SpklipError, match="no sound for") as info:
        ConvertedAV(conv, tmp_path, SETTINGS)
    assert "\n" not in str(info.value)


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_av_experiment_runs_from_the_command_line(av_folders, tmp_path, capsys):
    synth, conv = av_folders
    out = tmp_path / "run"
    argv = [
        "av-experiment", "--data", str(conv), "--audio-from", str(synth), "--out", str(out),
        "--fusion", "scmrl,audio-only", "--epochs", "1", "--seeds", "0",
        "--snrs", "0,30", "--batch-size", "4", "--alpha", "0.5", "--sa-weight", "0.1",
        "--vision-binning", "frames", "--modality-dropout", "0.2",
    ]  # fmt: skip
    code, _, err = run_main(argv, capsys)
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert set(report["variants"]) == {"scmrl", "audio-only"}
    assert report["base"]["alpha"] == 0.5 and report["loss"]["sa_weight"] == 0.1
    assert report["train"]["modality_dropout"] == 0.2
    assert report["base"]["vision_channels"] == 4  # 16 frames in 4 steps, stacked
    assert report["data"]["vision_binning"] == "frames"
    assert set(report["variants"]["scmrl"]["per_group"]) == {"none", "video", "audio"}
    assert "Test Top-1 by group" in (out / "report.md").read_text()
    assert [p["snr_db"] for p in report["variants"]["scmrl"]["noise"]] == [0.0, 30.0]
    assert (out / "noise_curve.png").stat().st_size > 0
    assert "| scmrl |" in (out / "report.md").read_text()
    # the outputs exist now: no overwrite without --overwrite
    code, _, err = run_main(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "--overwrite" in err


def test_av_train_saves_a_checkpoint_that_av_eval_reads(av_folders, tmp_path, capsys):
    synth, conv = av_folders
    run = tmp_path / "run"
    data = ["--data", str(conv), "--audio-from", str(synth)]
    argv = ["av-train", *data, "--out", str(run), "--epochs", "2", "--batch-size", "4",
            "--alpha", "0.5", "--modality-dropout", "0.3"]  # fmt: skip
    code, out, err = run_main(argv, capsys)
    assert code == 0, err
    folders = sorted((run / "checkpoints").glob("epoch_*"))
    assert len(folders) == 1 and "checkpoint:" in out
    config = json.loads((folders[0] / "config.json").read_text())
    assert config["kind"] == "scmrl" and config["model_config"]["alpha"] == 0.5
    assert config["train_config"]["modality_dropout"] == 0.3
    assert len(json.loads((run / "history.json").read_text())) == 2
    # av-eval rebuilds the model from the checkpoint: same numbers as the model in memory
    code, out, err = run_main(["av-eval", "--checkpoint", str(run), *data], capsys)
    assert code == 0, err
    result = json.loads(out)
    model, _ = load_scmrl_model(run)
    test = ConvertedAV(conv, synth, AVSpikeSettings()).tensors("test")
    expected = evaluate_av(model, test)
    assert result["top1"] == expected["top1"] and result["per_group"] == expected["per_group"]
    # the AV settings must be the ones it was trained with; an SPKLIP loader refuses it
    code, _, err = run_main(["av-eval", "--checkpoint", str(run), *data, "--steps", "2"], capsys)
    assert code == 2 and err.count("\n") == 1 and "steps 4" in err
    code, _, err = run_main(
        ["av-eval", "--checkpoint", str(run), *data, "--audio-mode", "if"], capsys
    )
    assert code == 2 and err.count("\n") == 1 and "audio_mode if+onoff" in err
    with pytest.raises(SpklipError, match="av-eval"):
        load_model(run)
    # no overwrite without --overwrite
    code, _, err = run_main(argv, capsys)
    assert code == 2 and "--overwrite" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fusion", "telepathy"], "unknown variant"),
        (["--audio-from", "/nonexistent/synth"], "no such folder"),
        (["--seeds", "a,b"], "--seeds"),
        (["--model", "scmrl-huge"], "unknown S-CMRL config"),
        (["--modality-dropout", "1"], "--modality-dropout"),
    ],
)
def test_av_experiment_bad_input_is_one_line(av_folders, tmp_path, capsys, extra, message):
    synth, conv = av_folders
    argv = ["av-experiment", "--data", str(conv), "--audio-from", str(synth)]
    argv += ["--out", str(tmp_path / "o"), *extra]
    code, _, err = run_main(argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err


def test_mux_sound_gives_a_real_clip_a_track_that_reads_back(clips_dir, tmp_path):
    src = clips_dir / "ucf101-mini/SoccerJuggling/v_SoccerJuggling_g23_c01.avi"
    rate = 16000
    t = np.arange(rate) / rate
    sound = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = spikesim.mux_sound(src, tmp_path / "with_sound.mkv", sound, rate)
    back, got_rate = spikesim.read_audio(out, sample_rate=None)
    assert got_rate == rate
    np.testing.assert_allclose(back, np.round(sound * 32767) / 32768, atol=1e-4)
    # the video packets are the original's
    assert spikesim.probe_video(out).frames_reported in (
        0,
        spikesim.probe_video(src).frames_reported,
    )
    with pytest.raises(spikesim.AudioError, match="exists"):
        spikesim.mux_sound(src, out, sound, rate)


@pytest.fixture(scope="module")
def dvs_folder(av_folders, tmp_path_factory) -> Path:
    """The fixture's synth folder converted by the event camera at 16x16."""
    synth, _ = av_folders
    settings = spikesim.ConvertSettings(size=(16, 16), factor=1, interp="linear", sensor="dvs")
    out = tmp_path_factory.mktemp("dvs") / "dvs"
    return spikesim.convert_dataset(synth, out, settings, progress=False).out


INTENSITY = AVSpikeSettings(
    steps=5, n_mels=8, frames_per_step=8, vision_input="spikes+dvs", vision_binning="net",
    intensity_count=1,
)  # fmt: skip


def test_spikes_dvs_input_puts_the_spike_cameras_intensity_before_the_events(
    av_folders, dvs_folder
):
    synth, conv = av_folders
    source = ConvertedAV(dvs_folder, synth, INTENSITY, spikes_from=conv)
    events_only = ConvertedAV(dvs_folder, synth, replace(INTENSITY, vision_input="data"))
    spikes = spikesim.open_dataset(conv)
    by_source = {c.source: k for k, c in enumerate(spikes.clips)}
    for i in source.indices("train")[:3]:
        v = source.vision(i)
        assert v.shape == (5, 3, 16, 16) and v.dtype == np.uint8  # intensity, net ON, net OFF
        j = by_source[source.dataset.clips[i].source]  # the same video's spike-camera clip
        np.testing.assert_array_equal(v[:, :1], intensity_to_steps(spikes.read(j), 5, 1))
        np.testing.assert_array_equal(v[:, 1:], events_only.vision(i))
        assert 0 < v[:, 0].mean() < 1  # neither dark nor saturated
    t = source.tensors("train")
    assert t.shapes["vision_channels"] == 3


def test_spikes_dvs_input_refuses_wrong_conversions_in_one_line(av_folders, dvs_folder):
    synth, conv = av_folders
    cases = [
        (lambda: ConvertedAV(dvs_folder, synth, INTENSITY), "--spikes-from"),
        (lambda: ConvertedAV(conv, synth, INTENSITY, spikes_from=conv), "--sensor dvs"),
        (lambda: ConvertedAV(dvs_folder, synth, INTENSITY, spikes_from=dvs_folder), "event"),
        (lambda: ConvertedAV(dvs_folder, synth, SETTINGS, spikes_from=conv), r"spikes\+dvs"),
    ]
    for make, message in cases:
        with pytest.raises(SpklipError, match=message) as info:
            make()
        assert "\n" not in str(info.value)


def test_av_train_records_the_vision_input_and_av_eval_asks_for_it(
    av_folders, dvs_folder, tmp_path, capsys
):
    synth, conv = av_folders
    run = tmp_path / "run"
    data = ["--data", str(dvs_folder), "--audio-from", str(synth), "--steps", "5"]
    vision = ["--vision-input", "spikes+dvs", "--spikes-from", str(conv),
              "--vision-binning", "net", "--intensity-count", "1"]  # fmt: skip
    argv = ["av-train", *data, *vision, "--out", str(run), "--epochs", "1",
            "--batch-size", "4", "--fusion", "vision-only"]  # fmt: skip
    code, _, err = run_main(argv, capsys)
    assert code == 0, err
    config = json.loads(next((run / "checkpoints").glob("epoch_*/config.json")).read_text())
    assert config["av_settings"]["vision_input"] == "spikes+dvs"
    assert config["av_settings"]["intensity_count"] == 1
    assert config["spikes_from"] == str(conv)
    assert config["model_config"]["vision_channels"] == 3
    code, out, err = run_main(["av-eval", "--checkpoint", str(run), *data, *vision], capsys)
    assert code == 0, err
    assert json.loads(out)["n"] == len(spikesim.open_dataset(dvs_folder).indices("test"))
    code, _, err = run_main(["av-eval", "--checkpoint", str(run), *data], capsys)
    assert code == 2 and err.count("\n") == 1 and "vision_input spikes+dvs" in err
