"""``spklip av-experiment``: S-CMRL against its baselines on converted audio-visual clips."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    check_not_input,
    data_option,
    fail,
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


@click.command("av-experiment")
@data_option
@click.option(
    "--audio-from",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="the `spikesim synth --audio` folder the converted clips came from (their WAVs)  ",
)
@click.option(
    "--model", default="scmrl-tiny", show_default=True, help="S-CMRL size: scmrl-tiny, scmrl-paper"
)
@click.option(
    "--fusion",
    "variants",
    default="all",
    show_default=True,
    help="variants, comma-separated: scmrl, audio-only, vision-only, additive, concat, "
    "scmrl-no-sa, scmrl-no-residual, or all",
)
@out_dir_option(what="report.json, report.md and noise_curve.png")
@click.option(
    "--epochs", type=click.IntRange(min=1), default=15, show_default=True, help="epochs per run"
)
@click.option("--seeds", default="0,1,2", show_default=True, help="training seeds, comma-separated")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="clips per step"
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=2e-3,
    show_default=True,
    help="peak AdamW learning rate",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0),
    default=1.5,
    show_default=True,
    help="weight of S-CMRL's cross-modal residual branch",
)
@click.option(
    "--sa-weight",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="weight of the semantic alignment loss L_SA (the no-L_SA ablation sets 0)",
)
@click.option(
    "--steps", type=click.IntRange(min=1), default=4, show_default=True, help="time steps T"
)
@click.option(
    "--mels", type=click.IntRange(min=1), default=16, show_default=True, help="mel bands M"
)
@click.option(
    "--frames-per-step",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="spectrogram frames F per time step",
)
@click.option(
    "--vision-binning",
    type=click.Choice(["or", "frames", "count"]),
    default="or",
    show_default=True,
    help="how each step gathers its spike or event frames: OR, stacked as channels, counted",
)
@click.option(
    "--snrs",
    default="0,5,10,15,20,25,30",
    show_default=True,
    help="SNRs (dB) of the white noise added to the test WAVs for the noise curve; 'none' skips it",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="share of each class of the train split held out for validation (epoch choice)",
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
    steps: int,
    mels: int,
    frames_per_step: int,
    vision_binning: str,
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
    from spklip.av_data import AVSpikeSettings, load_converted_av
    from spklip.evaluation.av import results_markdown
    from spklip.evaluation.figures import plot_noise_curve
    from spklip.scmrl import get_scmrl_config
    from spklip.scmrl_loss import SCMRLLossConfig
    from spklip.training.av import VARIANTS, AVTrainConfig, run_av_experiment

    if out is None:
        fail("--out is required: the folder for report.json, report.md and noise_curve.png")
    check_not_input(out, data, audio_from)
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
    settings = AVSpikeSettings(
        steps=steps,
        n_mels=mels,
        frames_per_step=frames_per_step,
        seed=seed,
        vision_binning=vision_binning,
    )
    train, val, test, source = load_converted_av(
        data, audio_from, settings, val_fraction=val_fraction, split_seed=seed
    )
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
            batch_size=batch_size, lr=lr, loss=SCMRLLossConfig(sa_weight=sa_weight)
        ),
        audio_at_snr=source.audio_at_snr("test", seed=seed) if snr_list else None,
        snrs=snr_list,
        log=lambda line: click.echo(line, err=True),
    )
    results["data"] = {"data": str(data), "audio_from": str(audio_from), **vars(settings)}
    results["torch_threads"] = torch.get_num_threads()
    out.mkdir(parents=True, exist_ok=True)
    spikesim.write_json(out / "report.json", results)
    text = results_markdown(results)
    if snr_list:
        plot_noise_curve(results, out / "noise_curve.png")
        text += "\n![noise curve](noise_curve.png)\n"
    spikesim.write_atomic(out / "report.md", text)
    click.echo(text)


COMMANDS: list[click.Command] = [av_experiment]
