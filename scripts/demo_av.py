"""The audio-visual demo (issue 13, S-CMRL): ``make demo-av``.

``spikesim synth --audio --corrupt`` at a small size -> ``spikesim convert --sensor dvs``
(event camera: ON/OFF event frames) and ``spikesim convert`` (spike camera: the intensity
channel) -> AV spike tensors (``spklip.av_data.load_converted_av``)
-> ``run_av_experiment`` (the fused models trained with modality dropout) over
S-CMRL, audio-only, vision-only, additive, concat, S-CMRL without L_SA and without the
residual, several seeds, with the noise curve (white noise on the WAVs, 0..30 dB), the binary
activation share and the energy table. Also one real clip (the shared UCF101 clips have no
sound track: a synthetic sound is muxed into its video with ``spikesim.mux_sound``) taken
through audio extraction -> mel spectrogram -> audio spikes, drawn as a figure.

Writes OUT/report.json, OUT/report.md, OUT/noise_curve.png, OUT/real_clip_audio.png (and the
data under OUT/synth, OUT/converted, OUT/spikes). Run:
``.venv/bin/python -m scripts.demo_av [OUT]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import spikesim
from spklip.av_data import AVSpikeSettings, load_converted_av
from spklip.evaluation.av import results_markdown
from spklip.evaluation.figures import plot_audio_spikes, plot_noise_curve
from spklip.scmrl import get_scmrl_config
from spklip.scmrl_loss import SCMRLLossConfig
from spklip.training.av import AVTrainConfig, run_av_experiment

# Sizes chosen by measurement on the shared 2-core machine, on the validation split (see
# docs/scmrl.md): the first four synth classes (Grow/Shrink and RotateClockwise/-Anticlockwise,
# two time-reversed pairs), 64x64 video of 33 frames (32 intervals), converted at 32x32
# (scmrl-tiny's vision size). The event camera (``--sensor dvs``, preset "clean") and not the
# spike camera: with spike frames the vision-only model did not learn its clean clips (val
# Top-1 on them 0.08-0.48 with OR, count or per-frame binning at thresholds 2-20), since
# spikes of a static scene fire everywhere and the max-pooling front end saturates; ON/OFF
# events mark the moving edges and their polarity the direction (val Top-1 on clean clips
# 0.6-0.8). Batch 8 (batch 32 gave 2 steps per epoch: chance level).
DATA: dict[str, Any] = {
    "classes": 4,
    "clips_per_class": 100,
    "size": (64, 64),
    "frames": 33,
    "convert_size": (32, 32),
    "factor": 1,
    "sensor": "dvs",
    "interp": "linear",
    # the spike-camera conversion of the same videos for the intensity channel (session 6):
    # threshold 2, so over a step's 8 frames a bright object pixel (luma ~0.85) fires 3-4
    # times and a dark one (~0.2) 0-1 times: intensity_count 3 marks the bright parts
    "spikes_threshold": 2.0,
}
# Audio: IF spikes plus cochlea-style ON/OFF events as three channels (session 5 round 1, val.:
# the audio-only model's Top-1 on its intact clips went from 0.65-0.82 with IF spikes alone to
# 1.0; with IF alone a pitch glide moves under one mel band per step, so the direction of the
# time-reversed sounds was only in the order of the steps, while ON/OFF events show it in
# every frame). See docs/scmrl.md.
# Vision: an intensity channel from the spike camera (a pixel that fired >= 3 times in the
# step) before the net ON/OFF events of the step (ON where ON events outnumber OFF ones, OFF
# where fewer) (session 6, validation, grids "intensity" and "fusion-intensity"): the object's
# contrast is random, so an interval's ON/OFF events of Grow on a dark object equal those of
# Shrink on a bright one; with the intensity known, ON at a bright object's rim means it grows.
# The net count cancels the camera shake that fires ON and OFF at the same pixels. On
# validation (3 seeds, the demo's recipe) S-CMRL 0.946 vs 0.899 with the ORed events (on the
# clips whose sound was degraded 0.786 vs 0.595), additive fusion 0.887 vs 0.905 (one clip
# lower), vision alone 0.509 vs 0.446 (2 seeds): better over the fused models together and
# for vision. See docs/scmrl.md.
AV = AVSpikeSettings(
    steps=4,
    vision_input="spikes+dvs",
    vision_binning="net",
    intensity_count=3,
    audio_mode="if+onoff",
)
# 10 epochs (session 5 round 1, validation, grid "epochs" vs "fusion-onoff", 2 seeds): additive and
# S-CMRL both 0.902 after 10 epochs, 0.911 / 0.902 after 15, at two thirds of the time; the
# demo must stay under 20 minutes on the shared 2-core machine.
EPOCHS = 10
# Chosen on the validation split by scripts/tune_av.py (the test split never read): peak lr
# 5e-3 over 2e-3 (session 4, grid "lr"); S-CMRL alpha 0.5 and L_SA weight 0.1 (session 4:
# 0.607 vs 0.571 for the paper's 1.5 and 1 with the IF audio; session 5 (round 1) with IF + ON/OFF
# audio: 0.902 both, a tie, so the incumbent stays). See docs/scmrl.md.
LR = 5e-3
ALPHA = 0.5
SA_WEIGHT = 0.1
# Modality dropout for the fused models (session 5 (round 2), validation, grid "dropout", 3 seeds):
# per training clip, with this probability, one stream's spikes are zeroed. S-CMRL 0.899 vs
# 0.881 at p 0 and 0.893 at p 0.4, additive 0.905 vs 0.911 / 0.869: within one validation
# clip, the best of the three over both models. (The test split, read once afterwards, did
# not confirm it; see docs/scmrl.md.)
MODALITY_DROPOUT = 0.2
SEEDS = (0, 1, 2)
SNRS = (0, 10, 20, 30)  # 4 points over 0..30 dB: each is a test pass of every trained model
REAL_CLIP = Path("ucf101-mini/SoccerJuggling/v_SoccerJuggling_g23_c01.avi")


def _log(message: str) -> None:
    print(f"[demo-av {time.strftime('%H:%M:%S')}] {message}", flush=True)


def make_data(out: Path, seed: int = 0) -> tuple[Path, Path, Path | None]:
    """synth --audio --corrupt into OUT/synth, convert into OUT/converted (event camera) and,
    for the intensity channel, into OUT/spikes (spike camera; None when ``AV`` reads no
    intensity) (resumable)."""
    synth, converted, spikes = out / "synth", out / "converted", out / "spikes"
    if not (synth / "captions.jsonl").is_file():
        spikesim.synthesize(
            synth,
            classes=DATA["classes"],
            clips_per_class=DATA["clips_per_class"],
            size=DATA["size"],
            frames=DATA["frames"],
            seed=seed,
            audio=True,
            corrupt=True,
            overwrite=True,
        )
    settings = spikesim.ConvertSettings(
        size=DATA["convert_size"],
        factor=DATA["factor"],
        interp=DATA["interp"],
        sensor=DATA["sensor"],
        seed=seed,
    )
    summary = spikesim.convert_dataset(synth, converted, settings, progress=False, log=_log)
    if summary.failed:
        raise SystemExit(f"demo-av: {summary.failed} clips failed to convert; see {converted}")
    if AV.vision_input != "spikes+dvs":
        return synth, converted, None
    settings = dataclasses.replace(settings, sensor="spike", threshold=DATA["spikes_threshold"])
    summary = spikesim.convert_dataset(synth, spikes, settings, progress=False, log=_log)
    if summary.failed:
        raise SystemExit(f"demo-av: {summary.failed} clips failed to convert; see {spikes}")
    return synth, converted, spikes


def real_clip_audio(out: Path, clips_dir: Path, synth: Path) -> dict[str, Any]:
    """Mux a synthetic clip's sound (tiled to the length of the video) into a real UCF101 clip,
    read it back through PyAV and draw its mel spectrogram and audio spikes."""
    src = clips_dir / REAL_CLIP
    if not src.is_file():
        return {"skipped": f"{src} not found (the shared clips are absent)"}
    video = spikesim.probe_video(src)
    duration = video.frames_reported / video.fps
    # the first clip whose sound kept its motion (not one of the degraded thirds)
    rows = [json.loads(line) for line in (synth / "captions.jsonl").read_text().splitlines()]
    wav = synth / next(r["audio"] for r in rows if r.get("corruption") == "none")
    sound, rate = spikesim.read_audio(wav, sample_rate=16000)
    n = round(duration * rate)
    sound = np.tile(sound, -(-n // len(sound)))[:n]
    muxed = spikesim.mux_sound(src, out / "real_clip_with_sound.mkv", sound, rate, overwrite=True)
    info = spikesim.probe_audio(muxed)
    wave, rate = spikesim.read_audio(muxed, sample_rate=16000)
    hop = 160
    spec = spikesim.mel_spectrogram(wave, rate, n_fft=512, hop_length=hop, n_mels=40)
    spikes = spikesim.audio_spikes(spec, mode="if", threshold=2.0, seed=0)
    figure = plot_audio_spikes(
        spec,
        spikes,
        out / "real_clip_audio.png",
        hop_seconds=hop / rate,
        title=f"{REAL_CLIP.name} + the sound of {wav.name} (muxed): mel spectrogram",
    )
    return {
        "clip": str(REAL_CLIP),
        "sound_from": str(wav.relative_to(synth)),
        "muxed": muxed.name,
        "codec": info.codec,
        "sample_rate": rate,
        "seconds": len(wave) / rate,
        "spectrogram_shape": list(spec.shape),
        "spikes_shape": list(spikes.shape),
        "spike_rate": float(spikes.mean()),
        "figure": figure.name,
    }


def report_markdown(report: dict[str, Any]) -> str:
    res = report["results"]
    v = res["variants"]
    best_single = max(v["audio-only"]["test_top1_mean"], v["vision-only"]["test_top1_mean"])
    s = v["scmrl"]["test_top1_mean"]
    lines = [
        "# demo-av: S-CMRL on converted synthetic audio-visual clips",
        "",
        f"Command: `make demo-av` (`python -m scripts.demo_av {report['out']}`). Wall time "
        f"{report['seconds']:.0f} s on {report['cpus']} CPUs, load average "
        f"{report['load_before'][0]:.1f} before / {report['load_after'][0]:.1f} after "
        f"(1 min); torch threads {report['torch_threads']}.",
        "",
        f"Data: `spikesim synth --audio --corrupt` {DATA['classes']} classes x "
        f"{DATA['clips_per_class']} clips ({DATA['size'][0]}x{DATA['size'][1]}, "
        f"{DATA['frames']} frames), converted at {DATA['convert_size'][0]}x"
        f"{DATA['convert_size'][1]} by the event camera (`--sensor {DATA['sensor']}`) and by "
        f"the spike camera (threshold {DATA['spikes_threshold']:g}); vision `{AV.vision_input}`"
        f" binned `{AV.vision_binning}` into {AV.steps} steps (an intensity channel, a pixel "
        f"that fired >= {AV.intensity_count} times in the step, and the step's net ON/OFF "
        "events); audio "
        f"{AV.n_mels} mel bands x {AV.frames_per_step} frames per step, spikes "
        f"`{AV.audio_mode}` (IF spikes and ON/OFF events as channels). A third of each "
        "class's clips lost their picture (group `video`), a third their sound (group "
        "`audio`): a degraded modality keeps only a time-symmetric summary, so it still tells "
        "the pair (Grow/Shrink vs the rotations) but not the direction. Training: "
        f"{report['results']['epochs']} epochs, batch 8, lr {LR:g}, alpha {ALPHA:g}, L_SA "
        f"weight {SA_WEIGHT:g}, modality dropout p {MODALITY_DROPOUT:g} for the models that "
        "read both streams (per training clip, one stream's spikes zeroed). Validation "
        "carved from the train split by group (20 % of the scenes, held out in every class, "
        "seed 0) picks the epoch; the test split is read once per run.",
        "",
        results_markdown(res),
        "## Against the issue's targets",
        "",
        f"- S-CMRL test Top-1 {s:.3f} vs best single modality {best_single:.3f} + 0.10 = "
        f"{best_single + 0.10:.3f}: {'met' if s >= best_single + 0.10 else 'NOT met'}.",
        f"- S-CMRL vs additive fusion {v['additive']['test_top1_mean']:.3f}: "
        f"{'met' if s >= v['additive']['test_top1_mean'] else 'NOT met'} "
        f"(sd over seeds {v['scmrl']['test_top1_sd']:.3f} / "
        f"{v['additive']['test_top1_sd']:.3f}; {len(res['seeds'])} seeds, "
        f"{res['sizes']['test']} test clips: one clip is {1 / res['sizes']['test']:.3f}).",
        "",
        "## Noise robustness",
        "",
        "Gaussian white noise added to each test WAV at the SNR (`spikesim.snr_noise`), the "
        "audio spikes recomputed: ![noise curve](noise_curve.png)",
        "",
        "| variant | " + " | ".join(f"{p:g} dB" for p in SNRS) + " |",
        "|---|" + "---:|" * len(SNRS),
    ]
    for name, e in v.items():
        cells = " | ".join(f"{p['top1_mean']:.3f}" for p in e["noise"])
        lines.append(f"| {name} | {cells} |")
    b = v["scmrl"]["binary"]
    lines += [
        "",
        "## Binary activations (S-CMRL, first seed)",
        "",
        f"Inter-layer binary share {b['inter_layer_binary_fraction']:.4f}; "
        f"{b['binary_layers']} of {b['layers']} layers read only 0/1; real-valued inputs: "
        f"{', '.join(b['real_valued_inputs']) or 'none'}.",
        "",
        "## One real clip through the audio path",
        "",
    ]
    real = report["real_clip"]
    if "skipped" in real:
        lines.append(f"Skipped: {real['skipped']}.")
    else:
        lines += [
            f"`{real['clip']}` has no sound track; the sound of `{real['sound_from']}` was muxed "
            f"into its untouched video packets ({real['codec']}, `spikesim.mux_sound`), read back "
            f"with `spikesim.read_audio` ({real['seconds']:.2f} s at {real['sample_rate']} Hz), "
            f"mel spectrogram {real['spectrogram_shape']}, IF spikes {real['spikes_shape']} "
            f"(rate {real['spike_rate']:.3f}).",
            "",
            "![real clip audio](real_clip_audio.png)",
        ]
    return "\n".join(lines) + "\n"


def run(out: Path, clips_dir: Path, *, epochs: int = EPOCHS, seeds=SEEDS) -> dict[str, Any]:
    torch.set_num_threads(1)  # 2 threads on the shared 2-core machine spin against others
    begin = time.perf_counter()
    load_before = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    synth, converted, spikes = make_data(out)
    _log("data ready; building AV tensors")
    train, val, test, source = load_converted_av(converted, synth, AV, spikes_from=spikes)
    audio_at_snr = source.audio_at_snr("test")
    _log(f"train {len(train)}, val {len(val)}, test {len(test)}; training")
    results = run_av_experiment(
        train,
        val,
        test,
        seeds=seeds,
        epochs=epochs,
        base=get_scmrl_config("scmrl-tiny", alpha=ALPHA),
        train=AVTrainConfig(
            batch_size=8,
            lr=LR,
            loss=SCMRLLossConfig(sa_weight=SA_WEIGHT),
            modality_dropout=MODALITY_DROPOUT,
        ),
        audio_at_snr=audio_at_snr,
        snrs=SNRS,
        log=_log,
    )
    plot_noise_curve(results, out / "noise_curve.png")
    real = real_clip_audio(out, clips_dir, synth)
    report = {
        "out": str(out),
        "data": {**DATA, "settings": vars(source.settings)},
        "results": results,
        "real_clip": real,
        "seconds": time.perf_counter() - begin,
        "load_before": list(load_before),
        "load_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    spikesim.write_json(out / "report.json", report)
    spikesim.write_atomic(out / "report.md", report_markdown(report))
    _log(f"wrote {out / 'report.md'} in {report['seconds']:.0f} s")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="runs/demo-av", type=Path)
    parser.add_argument("--clips", default=Path("../shared/data/clips"), type=Path)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds 0..N-1")
    args = parser.parse_args(argv)
    run(args.out, args.clips, epochs=args.epochs, seeds=tuple(range(args.seeds)))


if __name__ == "__main__":
    main()
