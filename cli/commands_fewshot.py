"""``spklip fewshot``: adapt a checkpoint to a new domain with K clips per class."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import (
    checkpoint_option,
    data_option,
    device_option,
    out_dir_option,
    seed_option,
    threads_option,
)


@click.command("fewshot")
@checkpoint_option
@data_option
@click.option(
    "--shots",
    default="2,4,6,8",
    show_default=True,
    help="K values: training clips per class, comma-separated (K=0 is always reported)",
)
@out_dir_option(what="fewshot.json and fewshot.png  [default: print the JSON only]")
@click.option("--epochs", type=click.IntRange(min=1), help="fine-tuning epochs per K")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="peak learning rate")
@click.option("--batch-size", type=click.IntRange(min=1), help="clips per step")
@seed_option
@click.option(
    "--adapt-bn",
    is_flag=True,
    help="let BatchNorm statistics follow the new domain while fine-tuning (AdaBN-style)",
)
@threads_option
@device_option
def fewshot_cmd(
    checkpoint: Path,
    data: Path,
    shots: str,
    out: Path | None,
    epochs: int | None,
    lr: float | None,
    batch_size: int | None,
    seed: int,
    adapt_bn: bool,
    threads: int | None,
    device: str,
) -> None:
    """Few-shot adaptation: for each K, fine-tune the final two layers of STAR-Net on K
    training clips per class, then measure zero-shot Top-1 on the test split.

    Writes OUT/fewshot.json (accuracy per K, trainable and total parameters) and
    OUT/fewshot.png (the curve) when --out is given; prints the JSON otherwise.
    """
    import json

    from spklip.training.fewshot import FEWSHOT_DEFAULTS, fewshot

    from .commands_spklip import _one_line_warnings

    _one_line_warnings()
    settings = {"epochs": epochs, "lr": lr, "batch_size": batch_size}
    chosen = {k: (FEWSHOT_DEFAULTS[k] if v is None else v) for k, v in settings.items()}
    result = fewshot(
        checkpoint,
        data,
        shots=shots,
        out=out,
        seed=seed,
        adapt_batchnorm=adapt_bn,
        threads=threads,
        device=device,
        progress=out is not None,
        **chosen,
    )
    if out is None:
        click.echo(json.dumps(result, indent=2))
        return
    acc = result["accuracy"]
    curve = ", ".join(f"K={k} {acc[k]:.3f}" for k in acc)
    click.echo(
        f"zero-shot top-1 on {result['test_clips']} test clips: {curve}\n"
        f"trained {result['trainable_params']:,} of {result['total_params']:,} parameters "
        f"({result['trainable_fraction']:.1%}) in {result['total_seconds']:.0f} s\n"
        f"results: {result['files']['result']}\nfigure: {result['files']['figure']}"
    )


COMMANDS: list[click.Command] = [fewshot_cmd]
