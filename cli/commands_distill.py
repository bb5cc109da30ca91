"""``spklip distill``: the event-CLIP system on the rendered glyph set (one seed)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import out_dir_option, overwrite_option, refuse_existing, seed_option, threads_option

_LOSSES = {  # -> keys of spklip.training.distill.ABLATIONS
    "full": "full (L_ct + λ·L_kl + α·L_zs)",
    "ct+kl": "L_ct + λ·L_kl",
    "ct+zs": "L_ct + α·L_zs",
    "ct": "L_ct",
    "pred": "L_pred only",
}


@click.command("distill")
@click.option(
    "--modality",
    type=click.Choice(["events", "spikes"]),
    default="events",
    show_default=True,
    help="what the student reads: DVS event grey frames or spike-rate frames",
)
@click.option(
    "--loss",
    type=click.Choice(list(_LOSSES)),
    default="full",
    show_default=True,
    help="student loss: full = L_ct + λ·L_kl + α·L_zs; ct+kl; ct+zs; ct; pred (L_pred only)",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0, min_open=True),
    help="α, the L_zs weight  [default: the demo's]",
)
@click.option(
    "--kl-weight",
    type=click.FloatRange(min=0, min_open=True),
    help="λ, the L_kl weight  [default: the demo's]",
)
@click.option(
    "--unseen", type=click.IntRange(min=1), default=8, show_default=True, help="held-out classes"
)
@click.option(
    "--per-class",
    type=click.IntRange(min=8),
    help="training samples per class  [default: the demo's]",
)
@click.option("--epochs", type=click.IntRange(min=1), help="student epochs  [default: the demo's]")
@click.option(
    "--teacher-epochs", type=click.IntRange(min=1), help="teacher epochs  [default: the demo's]"
)
@click.option(
    "--text",
    type=click.Choice(["auto", "minilm", "transformer"]),
    default="auto",
    show_default=True,
    help="teacher text tower (auto: MiniLM when installed)",
)
@out_dir_option(what="result.json, teacher.pt and student.pt")
@seed_option
@threads_option
@overwrite_option
def distill_cmd(
    modality: str,
    loss: str,
    alpha: float | None,
    kl_weight: float | None,
    unseen: int,
    per_class: int | None,
    epochs: int | None,
    teacher_epochs: int | None,
    text: str,
    out: Path | None,
    seed: int,
    threads: int | None,
    overwrite: bool,
) -> None:
    """Render the glyph set, train the image-text teacher on all classes, distil an event (or
    spike) encoder from it on the seen classes with the chosen loss, and evaluate zero-shot,
    few-shot (prototypes, K = 1, 2, 4, 8) and retrieval on the held-out classes.

    Writes OUT/result.json (every number, the settings), OUT/teacher.pt and OUT/student.pt
    (state dicts). `make demo-events` runs every loss over several seeds.
    """
    from dataclasses import replace

    import torch

    from spikesim import write_json
    from spklip.training.distill import ExperimentConfig, run_experiment

    from ._common import fail

    if out is None:
        fail("give --out DIR for result.json, teacher.pt and student.pt")
    targets = [out / "result.json", out / "teacher.pt", out / "student.pt"]
    refuse_existing(*targets, overwrite=overwrite)
    if threads:
        torch.set_num_threads(threads)
    config = ExperimentConfig(
        n_unseen=unseen, ablations=(_LOSSES[loss],), spikes=modality == "spikes"
    )
    if modality == "spikes":  # the spike encoder always trains with the full loss
        config = replace(config, ablations=())
    if per_class:
        config = replace(config, train_per_class=per_class)
    if epochs:
        config = replace(config, student=replace(config.student, epochs=epochs))
    if alpha is not None:
        config = replace(config, alpha=alpha)
    if kl_weight is not None:
        config = replace(config, kl_weight=kl_weight)
    config = replace(
        config,
        teacher=replace(
            config.teacher, text=text, **({"epochs": teacher_epochs} if teacher_epochs else {})
        ),
    )
    models: dict = {}
    result = run_experiment(config, seed=seed, log=lambda s: click.echo(s, err=True), keep=models)
    result["settings"] = config.to_dict()
    result["modality"] = modality
    out.mkdir(parents=True, exist_ok=True)
    torch.save(models["teacher"].state_dict(), out / "teacher.pt")
    torch.save(models["student"].state_dict(), out / "student.pt")
    write_json(out / "result.json", result)
    click.echo(f"wrote {out / 'result.json'}, teacher.pt, student.pt")


COMMANDS = [distill_cmd]
