"""``spklip av-experiment | av-train | av-eval``: S-CMRL against its baselines on converted
audio-visual clips; one model trained to a checkpoint; a checkpoint evaluated."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import (
    check_not_input,
    checkpoint_option,
    data_option,
    fail,
    option_group,
    out_dir_option,
    overwrite_option,
    refuse_existing,
    seed_option,
    set_threads,
    threads_option,
)


def _numbers(text: str, kind: type, what: str) -> list:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{what} must be comma-separated numbers, got {text!r}")
    if not values:
        fail(f"{what} is empty; give at least one value")
    return values


def _av_data_options(command):
    """--audio-from, --steps, --mels, --frames-per-step, --vision-binning, --vision-input,
    --spikes-from, --intensity-count, --audio-mode: how converted clips and their WAVs become
    AV spike tensors (``spklip.av_data.AVSpikeSettings``)."""
    return option_group(*_AV_DATA_OPTIONS)(command)


def _av_settings(
    *,
    steps: int,
    mels: int,
    frames_per_step: int,
    vision_binning: str,
    vision_input: str,
    intensity_count: int,
    audio_mode: str,
    seed: int,
):
    from spklip.av_data import AVSpikeSettings

    return AVSpikeSettings(
        steps=steps,
        n_mels=mels,
        frames_per_step=frames_per_step,
        seed=seed,
        vision_binning=vision_binning,
        vision_input=vision_input,
        intensity_count=intensity_count,
        audio_mode=audio_mode,
    )


_AV_DATA_OPTIONS = [
    click.option(
        "--audio-from",
        required=True,
        type=click.Path(path_type=Path, file_okay=False),
        help="the `spikesim synth --audio` folder the converted clips came from (their WAVs)",
    ),
    click.option(
        "--steps", type=click.IntRange(min=1), default=4, show_default=True, help="time steps T"
    ),
    click.option(
        "--mels", type=click.IntRange(min=1), default=16, show_default=True, help="mel bands M"
    ),
    click.option(
        "--frames-per-step",
        type=click.IntRange(min=1),
        default=16,
        show_default=True,
        help="spectrogram frames F per time step",
    ),
    click.option(
        "--vision-binning",
        type=click.Choice(["or", "frames", "count", "or-pair", "net"]),
        default="or",
        show_default=True,
        help="how each step gathers its spike or event frames: OR, stacked as channels, counted, "
        "OR of this step and of the previous one (or-pair), or ON/OFF where ON or OFF events "
        "outnumber the other kind (net; event conversions only)",
    ),
    click.option(
        "--vision-input",
        type=click.Choice(["data", "spikes+dvs"]),
        default="data",
        show_default=True,
        help="the frames of --data alone, or an intensity channel from the spike-camera "
        "conversion --spikes-from followed by the events of --data (a --sensor dvs conversion)",
    ),
    click.option(
        "--spikes-from",
        type=click.Path(path_type=Path),
        default=None,
        help="with --vision-input spikes+dvs: a spike-camera conversion of the same synth folder",
    ),
    click.option(
        "--intensity-count",
        type=click.IntRange(min=1),
        default=3,
        show_default=True,
        help="with --vision-input spikes+dvs: spikes per step that make a pixel of the "
        "intensity channel 1",
    ),
    click.option(
        "--audio-mode",
        type=click.Choice(["if", "onoff", "if+onoff"]),
        default="if+onoff",
        show_default=True,
        help="audio spikes: integrate-and-fire, cochlea-style ON/OFF events, or both as channels",
    ),
]


def _av_train_options(command):
    """--model, --epochs, --batch-size, --lr, --alpha, --sa-weight, --modality-dropout,
    --val-fraction: the S-CMRL size and one training run's recipe."""
    return option_group(*_AV_TRAIN_OPTIONS)(command)


def _probability(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 <= value < 1.0:
        fail(f"--{param.name.replace('_', '-')} {value:g}: give a probability in [0, 1)")
    return value


_AV_TRAIN_OPTIONS = [
    click.option(
        "--model",
        default="scmrl-tiny",
        show_default=True,
        help="S-CMRL size: scmrl-tiny, scmrl-paper",
    ),
    click.option(
        "--epochs", type=click.IntRange(min=1), default=15, show_default=True, help="epochs per run"
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=8,
        show_default=True,
        help="clips per step",
    ),
    click.option(
        "--lr",
        type=click.FloatRange(min=0, min_open=True),
        default=2e-3,
        show_default=True,
        help="peak AdamW learning rate",
    ),
    click.option(
        "--alpha",
        type=click.FloatRange(min=0),
        default=1.5,
        show_default=True,
        help="weight of S-CMRL's cross-modal residual branch",
    ),
    click.option(
        "--sa-weight",
        type=click.FloatRange(min=0),
        default=1.0,
        show_default=True,
        help="weight of the semantic alignment loss L_SA (the no-L_SA ablation sets 0)",
    ),
    click.option(
        "--modality-dropout",
        type=float,
        callback=_probability,
        default=0.0,
        show_default=True,
        help="per training clip, the probability that the spikes of one modality (chosen at "
        "random) are zeroed; models that read both streams only",
    ),
    click.option(
        "--val-fraction",
        type=click.FloatRange(0, 1, min_open=True, max_open=True),
        default=0.2,
        show_default=True,
        help="share of each class of the train split held out for validation (epoch choice)",
    ),
]


@click.command("av-experiment")
@data_option
@_av_data_options
@click.option(
    "--fusion",
    "variants",
    default="all",
    show_default=True,
    help="variants, comma-separated: scmrl, audio-only, vision-only, additive, concat, "
    "scmrl-no-sa, scmrl-no-residual, or all",
)
@out_dir_option(what="report.json, report.md and noise_curve.png")
@_av_train_options
@click.option("--seeds", default="0,1,2", show_default=True, help="training seeds, comma-separated")
@click.option(
    "--snrs",
    default="0,5,10,15,20,25,30",
    show_default=True,
    help="SNRs (dB) of the white noise added to the test WAVs for the noise curve; 'none' skips it",
)
@seed_option
@threads_option
@overwrite_option
def av_experiment(
    data: Path,
    audio_from: Path,
    model: str,
    variants: str,
    out: Path | None,
    epochs: int,
    seeds: str,
    batch_size: int,
    lr: float,
    alpha: float,
    sa_weight: float,
    modality_dropout: float,
    steps: int,
    mels: int,
    frames_per_step: int,
    vision_binning: str,
    vision_input: str,
    spikes_from: Path | None,
    intensity_count: int,
    audio_mode: str,
    snrs: str,
    val_fraction: float,
    seed: int,
    threads: int | None,
    overwrite: bool,
) -> None:
    """Train S-CMRL and its baselines (each with every seed) on a converted `spikesim synth
    --audio` dataset: vision spikes from the .dat clips (or ON/OFF event frames of a
    `--sensor dvs` conversion), audio spikes from each clip's WAV.
    Validation (carved from the train split with --seed) picks the epoch; the test split is
    read once per run.

    Writes OUT/report.json (every run, per-class and noise results, binary share, energy),
    OUT/report.md (the table) and OUT/noise_curve.png.
    """
    import torch

    import spikesim
    from spklip.av_data import load_converted_av
    from spklip.evaluation.av import results_markdown
    from spklip.evaluation.figures import plot_noise_curve
    from spklip.scmrl import get_scmrl_config
    from spklip.scmrl_loss import SCMRLLossConfig
    from spklip.training.av import VARIANTS, AVTrainConfig, run_av_experiment

    if out is None:
        fail("--out is required: the folder for report.json, report.md and noise_curve.png")
    check_not_input(out, data, audio_from, *([spikes_from] if spikes_from else []))
    outputs = [out / "report.json", out / "report.md", out / "noise_curve.png"]
    refuse_existing(*outputs, overwrite=overwrite)
    names = [v.name for v in VARIANTS]
    chosen = names if variants == "all" else [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in names]
    if unknown or not chosen:
        fail(f"unknown variant(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(names)}")
    seed_list = _numbers(seeds, int, "--seeds")
    base = get_scmrl_config(model, alpha=alpha)  # SpklipError: one line, exit 2 (_common)
    snr_list = [] if snrs.strip().lower() == "none" else _numbers(snrs, float, "--snrs")
    set_threads(threads if threads is not None else 1)
    settings = _av_settings(
        steps=steps, mels=mels, frames_per_step=frames_per_step, vision_binning=vision_binning,
        vision_input=vision_input, intensity_count=intensity_count, audio_mode=audio_mode,
        seed=seed,
    )  # fmt: skip
    train, val, test, source = load_converted_av(
        data, audio_from, settings, val_fraction=val_fraction, split_seed=seed,
        spikes_from=spikes_from,
    )  # fmt: skip
    click.echo(f"train {len(train)}, val {len(val)}, test {len(test)} clips", err=True)
    results = run_av_experiment(
        train,
        val,
        test,
        models=chosen,
        seeds=seed_list,
        epochs=epochs,
        base=base,
        train=AVTrainConfig(
            batch_size=batch_size,
            lr=lr,
            loss=SCMRLLossConfig(sa_weight=sa_weight),
            modality_dropout=modality_dropout,
        ),
        audio_at_snr=source.audio_at_snr("test", seed=seed) if snr_list else None,
        snrs=snr_list,
        log=lambda line: click.echo(line, err=True),
    )
    results["data"] = {"data": str(data), "audio_from": str(audio_from), **vars(settings)}
    if spikes_from is not None:
        results["data"]["spikes_from"] = str(spikes_from)
    results["torch_threads"] = torch.get_num_threads()
    out.mkdir(parents=True, exist_ok=True)
    spikesim.write_json(out / "report.json", results)
    text = results_markdown(results)
    if snr_list:
        plot_noise_curve(results, out / "noise_curve.png")
        text += "\n![noise curve](noise_curve.png)\n"
    spikesim.write_atomic(out / "report.md", text)
    click.echo(text)


AV_EVAL_JSON = "av_eval.json"


@click.command("av-train")
@data_option
@_av_data_options
@click.option(
    "--fusion",
    "variant",
    default="scmrl",
    show_default=True,
    help="the model: scmrl, audio-only, vision-only, additive, concat, scmrl-no-sa, "
    "scmrl-no-residual",
)
@out_dir_option(what="checkpoints/epoch_NNN (the best validation epoch) and history.json")
@_av_train_options
@seed_option
@threads_option
@overwrite_option
def av_train(
    data: Path,
    audio_from: Path,
    steps: int,
    mels: int,
    frames_per_step: int,
    vision_binning: str,
    vision_input: str,
    spikes_from: Path | None,
    intensity_count: int,
    audio_mode: str,
    variant: str,
    out: Path | None,
    model: str,
    epochs: int,
    batch_size: int,
    lr: float,
    alpha: float,
    sa_weight: float,
    modality_dropout: float,
    val_fraction: float,
    seed: int,
    threads: int | None,
    overwrite: bool,
) -> None:
    """Train one S-CMRL (or one baseline) on the train split of a converted `spikesim synth
    --audio` dataset less a validation share (carved with --seed), which picks the epoch;
    the test split is not read. Saves that epoch's checkpoint for `spklip av-eval`."""
    from dataclasses import asdict

    import torch

    import spikesim
    from spklip.av_data import load_converted_av
    from spklip.checkpoint import CHECKPOINTS, epoch_dir_name, save_scmrl_checkpoint
    from spklip.scmrl import SCMRL, get_scmrl_config
    from spklip.scmrl_loss import SCMRLLossConfig
    from spklip.training.av import VARIANTS, AVTrainConfig, train_av

    if out is None:
        fail("--out is required: the run folder for checkpoints/ and history.json")
    check_not_input(out, data, audio_from, *([spikes_from] if spikes_from else []))
    by_name = {v.name: v for v in VARIANTS}
    if variant not in by_name:
        fail(f"unknown variant {variant!r}; choose from {', '.join(by_name)}")
    refuse_existing(out / CHECKPOINTS, out / "history.json", overwrite=overwrite)
    set_threads(threads if threads is not None else 1)
    settings = _av_settings(
        steps=steps, mels=mels, frames_per_step=frames_per_step, vision_binning=vision_binning,
        vision_input=vision_input, intensity_count=intensity_count, audio_mode=audio_mode,
        seed=seed,
    )  # fmt: skip
    train, val, _, _ = load_converted_av(
        data, audio_from, settings, val_fraction=val_fraction, split_seed=seed,
        spikes_from=spikes_from,
    )  # fmt: skip
    chosen = by_name[variant]
    cfg = get_scmrl_config(get_scmrl_config(model, alpha=alpha), **train.shapes, **chosen.model)
    loss = SCMRLLossConfig(**{**asdict(SCMRLLossConfig(sa_weight=sa_weight)), **chosen.loss})
    train_cfg = AVTrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, loss=loss,
        modality_dropout=modality_dropout,
        log=lambda r: click.echo(
            f"epoch {r['epoch']}: loss {r['loss']:.3f}, train {r['train_top1']:.3f}, "
            f"val {r['val_top1']:.3f}", err=True
        ),
    )  # fmt: skip
    click.echo(f"train {len(train)}, val {len(val)} clips", err=True)
    torch.manual_seed(seed)
    net = SCMRL(cfg)
    history = train_av(net, train, val_set=val, config=train_cfg)
    best = next(r for r in history if r.get("best"))
    if overwrite and (out / CHECKPOINTS).exists():
        import shutil

        shutil.rmtree(out / CHECKPOINTS)
    folder = save_scmrl_checkpoint(
        out / CHECKPOINTS / epoch_dir_name(best["epoch"]),
        net,
        config={
            "variant": variant,
            "classes": train.classes,
            "epoch": best["epoch"],
            "val_top1": best["val_top1"],
            "train_config": {
                k: v for k, v in asdict(train_cfg).items() if k not in ("log", "loss")
            },
            "loss": asdict(loss),
            "av_settings": asdict(settings),
            "data": str(data),
            "audio_from": str(audio_from),
            "spikes_from": None if spikes_from is None else str(spikes_from),
        },
    )
    spikesim.write_json(out / "history.json", history)
    click.echo(f"best epoch {best['epoch']}: val Top-1 {best['val_top1']:.3f}")
    click.echo(f"checkpoint: {folder}")


@click.command("av-eval")
@checkpoint_option
@data_option
@_av_data_options
@click.option(
    "--split",
    type=click.Choice(["train", "test"]),
    default="test",
    show_default=True,
    help="split to evaluate",
)
@out_dir_option(what=f"{AV_EVAL_JSON}  [default: print the JSON only]")
@threads_option
@overwrite_option
def av_eval(
    checkpoint: Path,
    data: Path,
    audio_from: Path,
    steps: int,
    mels: int,
    frames_per_step: int,
    vision_binning: str,
    vision_input: str,
    spikes_from: Path | None,
    intensity_count: int,
    audio_mode: str,
    split: str,
    out: Path | None,
    threads: int | None,
    overwrite: bool,
) -> None:
    """Top-1, per class and per corruption group of an `spklip av-train` checkpoint on a
    split of a converted `spikesim synth --audio` dataset. The AV settings the model was
    trained with (saved in the checkpoint) must match --steps, --mels, --frames-per-step,
    --vision-binning, --vision-input, --intensity-count and --audio-mode; a mismatch is
    refused."""
    import spikesim
    from spklip.av_data import ConvertedAV
    from spklip.checkpoint import load_scmrl_model
    from spklip.evaluation.av import evaluate_av

    if out is not None:
        check_not_input(out, data, audio_from, checkpoint, *([spikes_from] if spikes_from else []))
        refuse_existing(out / AV_EVAL_JSON, overwrite=overwrite)
    set_threads(threads if threads is not None else 1)
    model, ckpt = load_scmrl_model(checkpoint)
    saved = ckpt.config.get("av_settings", {})
    if saved and "audio_mode" not in saved:  # saved before audio_mode existed: IF spikes only
        saved = {**saved, "audio_mode": "if"}
    if saved and "vision_input" not in saved:  # saved before vision_input: the data's frames
        saved = {**saved, "vision_input": "data"}
    asked = {"steps": steps, "n_mels": mels, "frames_per_step": frames_per_step,
             "vision_binning": vision_binning, "vision_input": vision_input,
             "audio_mode": audio_mode}  # fmt: skip
    if vision_input == "spikes+dvs":
        asked["intensity_count"] = intensity_count
    differ = [k for k, v in asked.items() if k in saved and saved[k] != v]
    if differ:
        fail(
            "the checkpoint was trained with "
            + ", ".join(f"{k} {saved[k]}" for k in differ)
            + "; pass the same AV settings"
        )
    settings = _av_settings(
        steps=steps, mels=mels, frames_per_step=frames_per_step, vision_binning=vision_binning,
        vision_input=vision_input, intensity_count=intensity_count, audio_mode=audio_mode,
        seed=saved.get("seed", 0),
    )  # fmt: skip
    dataset = ConvertedAV(data, audio_from, settings, spikes_from=spikes_from).tensors(split)
    if dataset.classes != ckpt.config.get("classes", dataset.classes):
        fail(f"{data}: its classes differ from the checkpoint's; evaluate on the same classes")
    result = {
        "checkpoint": str(ckpt.path),
        "variant": ckpt.config.get("variant"),
        "split": split,
        **evaluate_av(model, dataset),
    }
    if out is None:
        click.echo(json.dumps(result, indent=2))
        return
    spikesim.write_json(out / AV_EVAL_JSON, result)
    groups = ", ".join(f"{g} {v:.3f}" for g, v in result.get("per_group", {}).items())
    click.echo(
        f"{result['n']} clips ({split}): Top-1 {result['top1']:.3f}"
        + (f" (by group: {groups})" if groups else "")
        + f"\nresults: {out / AV_EVAL_JSON}"
    )


COMMANDS: list[click.Command] = [av_experiment, av_train, av_eval]
