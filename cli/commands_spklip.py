"""``spklip train | eval``: train SPKLIP on a converted dataset, evaluate a checkpoint."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from ._common import (
    check_not_input,
    checkpoint_option,
    data_option,
    device_option,
    fail,
    loader_workers_option,
    out_dir_option,
    overwrite_option,
    refuse_existing,
    seed_option,
    split_option,
    split_value,
    threads_option,
)

EVAL_JSON = "eval.json"

# spklip.data.CAPTION_MODES, spelled out so that --help does not import torch (a test keeps
# the two equal).
_CAPTION_MODES = ("mixed", "prompt", "caption", "both")


def _one_line_warnings() -> None:
    """Library warnings (e.g. short clips padded) as ``warning: ...`` lines on stderr."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        click.echo(f"warning: {message}", err=True)

    warnings.showwarning = show


def _overrides(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict:
    from spklip.errors import SpklipError
    from spklip.factory import parse_overrides

    try:
        return parse_overrides(value)
    except SpklipError as e:
        raise click.BadParameter(str(e)) from None


@click.command("train")
@data_option
@click.option(
    "--model",
    default=None,
    help="model config name  [default: spklip-paper; with --resume: the run's]",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="run folder for checkpoints/ and results.jsonl  [default: runs/MODEL]",
)
@click.option(
    "--epochs", type=click.IntRange(min=1), help="training epochs  [default: the model's recipe]"
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="clips per step and process  [default: the model's recipe]",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    help="peak learning rate  [default: the model's recipe]",
)
@click.option("--frames", type=click.IntRange(min=1), help="model input frames per clip (T)")
@click.option(
    "--bin",
    "bin_",
    type=click.IntRange(1, 255),
    default=1,
    show_default=True,
    help="spike frames summed into each input frame (reads T x bin spike frames)",
)
@click.option(
    "--resume",
    is_flag=True,
    help="continue the run in --out from its latest epoch, with the run's settings",
)
@click.option(
    "--keep-last",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    metavar="N",
    help="epoch checkpoints to keep: the newest N plus the best by validation top-1 (0: keep all)",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="share of the training group names held out (in every class) as the validation split "
    "(recorded in OUT/splits.json; the test split is never read)",
)
@click.option(
    "--val-seed", type=click.IntRange(min=0), default=0, show_default=True,
    help="seed of the validation carving",
)  # fmt: skip
@seed_option
@loader_workers_option
@click.option(
    "--captions",
    type=click.Choice(_CAPTION_MODES),
    default=None,
    help=(
        "training texts: caption (each clip's caption), prompt (class prompts), mixed (one or "
        "the other, 50/50), both (a class prompt and the caption, two loss terms)  "
        "[default: the model's recipe]"
    ),
)
@click.option(
    "--caption-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="with --captions both: weight of the caption term  [default: the model's recipe]",
)
@click.option(
    "--caption-paraphrases/--no-caption-paraphrases",
    default=None,
    help="draw each training caption from the clip's caption and the paraphrases its "
    "captions.jsonl listed  [default: the model's recipe]",
)
@click.option(
    "--class-run",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="batches made of runs of this many clips of one class (within-class negatives for "
    "the caption term; one process only); 1: shuffled",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    callback=_overrides,
    metavar="KEY=VALUE",
    help="model config override, repeatable (e.g. --set hsfe.n_blocks=3)",
)
@click.option(
    "--exclude-classes",
    default="",
    metavar="A,B",
    help="class folders left out of training (eval then scores them apart: true zero-shot)",
)
@device_option
@threads_option
def train_cmd(
    data: Path,
    model: str,
    out: Path | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    frames: int | None,
    bin_: int,
    resume: bool,
    keep_last: int,
    val_fraction: float,
    val_seed: int,
    seed: int,
    loader_workers: int,
    captions: str | None,
    caption_weight: float | None,
    caption_paraphrases: bool | None,
    class_run: int,
    overrides: dict,
    exclude_classes: str,
    device: str,
    threads: int | None,
) -> None:
    """Train SPKLIP contrastively on a converted spike dataset.

    Runs unchanged under torchrun for several GPUs or nodes:
    torchrun --nproc_per_node 4 $(which spklip) train --data ... (see docs/training.md).
    """
    _one_line_warnings()
    from spklip.training.loop import TrainConfig, train

    config = TrainConfig(
        data=data,
        out=out or Path("runs") / (model or "spklip-paper"),
        model=model,
        model_overrides=overrides,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        frames=frames,
        bin=bin_,
        resume=resume,
        keep_last=keep_last or None,
        val_fraction=val_fraction,
        val_seed=val_seed,
        seed=seed,
        workers=loader_workers,
        captions=captions,
        caption_weight=caption_weight,
        caption_paraphrases=caption_paraphrases,
        class_run=class_run,
        device=None if device == "auto" else device,
        exclude_classes=tuple(c.strip() for c in exclude_classes.split(",") if c.strip()),
        threads=threads,
    )
    try:
        result = train(config)
    except KeyboardInterrupt:
        fail(
            "interrupted; the checkpoints of finished epochs are kept: run the same command "
            "with --resume to continue",
            130,
        )
    if result["world_size"] > 1 and not _is_rank0():
        return
    last = result["results"][-1] if result["results"] else {}
    summary = f"trained {result['epochs']} epochs in {result['train_seconds']:.0f} s"
    if "val_top1" in last:
        summary += f"; validation zero-shot top-1 {last['val_top1']:.3f}"
    if result.get("best"):
        best = result["best"]
        summary += f" (best on validation: epoch {best['epoch']}, {best['val_top1']:.3f})"
    click.echo(f"{summary}\ncheckpoint: {result['checkpoint']}")


def _is_rank0() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@click.command("eval")
@checkpoint_option
@data_option
@split_option(what="evaluate")
@out_dir_option(what=f"{EVAL_JSON} and confusion.png  [default: print the JSON only]")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="clips per step"
)
@click.option(
    "--prompts",
    type=click.Path(path_type=Path, dir_okay=False),
    help='class texts from a JSON file {"<class folder>": ["text", ...]} in place of the '
    "built-in templates",
)
@loader_workers_option
@device_option
@overwrite_option
def eval_cmd(
    checkpoint: Path,
    data: Path,
    split: str,
    out: Path | None,
    batch_size: int,
    prompts: Path | None,
    loader_workers: int,
    device: str,
    overwrite: bool,
) -> None:
    """Zero-shot Top-1/Top-5 and text-video retrieval of a checkpoint on a dataset split.

    Prints the results as JSON on stdout, or a summary when --out is given.
    """
    _one_line_warnings()
    from spklip.evaluation.zeroshot import evaluate
    from spklip.prompts import load_prompts

    class_texts = None if prompts is None else load_prompts(prompts)
    if out is not None:
        check_not_input(out, data, checkpoint)
        refuse_existing(out / EVAL_JSON, overwrite=overwrite)
    result = evaluate(
        checkpoint,
        data,
        split_value(split),
        batch_size=batch_size,
        workers=loader_workers,
        device=device,
        out=None if out is None else out / EVAL_JSON,
        figures_dir=out,
        class_texts=class_texts,
    )
    if out is None:
        click.echo(json.dumps(result, indent=2))
        return
    zs, rt = result["zero_shot"], result["retrieval"]
    click.echo(
        f"{result['clips']} clips ({split}): zero-shot top-1 {zs['top1']:.3f}, "
        f"top-5 {zs['top5']:.3f}; t2v R@1 {rt['t2v_R@1']:.3f}, v2t R@1 {rt['v2t_R@1']:.3f}\n"
        f"results: {out / EVAL_JSON}"
    )


@click.command("retrieve")
@checkpoint_option
@data_option
@click.option("--query", required=True, help="what to look for, in words")
@click.option(
    "--top", type=click.IntRange(min=1), default=5, show_default=True, help="clips to list"
)
@split_option(default="all", what="search")
@device_option
@click.option("--json", "as_json", is_flag=True, help="print one JSON list instead of a table")
def retrieve_cmd(
    checkpoint: Path, data: Path, query: str, top: int, split: str, device: str, as_json: bool
) -> None:
    """Search a converted dataset with words: the clips that best match --query, with their
    scores (cosine similarity of the video and text embeddings)."""
    _one_line_warnings()
    from spklip.evaluation.zeroshot import retrieve

    hits = retrieve(checkpoint, data, query, top=top, split=split_value(split), device=device)
    if as_json:
        click.echo(json.dumps(hits, indent=2))
        return
    for hit in hits:
        click.echo(f"{hit['rank']:>3}  {hit['score']:+.3f}  {hit['path']}  ({hit['class']})")


COMMANDS: list[click.Command] = [train_cmd, eval_cmd, retrieve_cmd]
