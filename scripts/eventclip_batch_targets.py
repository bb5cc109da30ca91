"""Same-class negatives in the event-CLIP student's batches, on the VALIDATION protocol of
``scripts.demo_events --validation`` (data seed 1, the seen classes of split seed 100, the 10
training classes of validation seed 0; no test scene is rendered)::

    .venv/bin/python -m scripts.eventclip_batch_targets [--class-runs 1,8,32]
        [--temperatures 0.01,0.02,0.05,0.1] [--teacher-epochs N]

L_ct (temperature 0.02) treats every other image of a batch as a negative, same-class ones
included; L_kl's Sinkhorn target gives those some mass. Per batch composition (`batch_order`
with ``class_run``, the demo's batch size and epochs) this prints:

- how many same-class partners a sample has in its batch;
- the softmax over the batch's teacher image features at L_ct's temperature, for a student
  that reproduces its paired image exactly: the mass on the paired image, on same-class
  partners, and the L_ct it still pays (what near-duplicates cost L_ct at its optimum);
- per L_kl temperature, the Sinkhorn target's mass on the paired image, on same-class
  partners and on other classes;
- after training the demo's student with L_ct alone on those batches: the student's
  event-vs-image softmax (at each L_kl temperature) mass on same-class partners, beside the
  target's (below the target: L_ct has pushed near-duplicates apart, which L_kl would undo).

Averages are over every batch of the student's schedule, on the training samples.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from scripts.demo_events import VALIDATION_DATA_SEED
from spikesim import GLYPH_CLASSES, glyph_prompts
from spklip.errors import SpklipError
from spklip.evaluation.distill import encode_frames
from spklip.eventclip import log_sinkhorn
from spklip.training.distill import (
    ExperimentConfig,
    ablation_weights,
    batch_order,
    distill,
    render_glyphs,
    split_classes,
    train_teacher,
)


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"error: {what} must be comma-separated numbers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise SystemExit(f"error: {what} must be numbers > 0, got {text!r}")
    return values


def _masses(p: torch.Tensor, same: torch.Tensor) -> tuple[float, float, float]:
    """Row-stochastic (B, B) -> mean mass on the diagonal, on same-class off-diagonal
    entries and on other classes."""
    eye = torch.eye(len(p), dtype=torch.bool)
    return (
        p.diag().mean().item(),
        (p * (same & ~eye)).sum(1).mean().item(),
        (p * ~same).sum(1).mean().item(),
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--class-runs", default="1,8,32", help="class_run values (comma-separated)")
    ap.add_argument(
        "--temperatures", default="0.01,0.02,0.05,0.1", help="L_kl temperatures (comma-separated)"
    )
    ap.add_argument("--teacher-epochs", type=int, help="teacher epochs  [default: the demo's]")
    args = ap.parse_args(argv)
    temps = _floats(args.temperatures, "--temperatures")
    torch.set_num_threads(1)
    cfg = ExperimentConfig(validation=True)
    try:
        recipes = {
            int(r): replace(cfg.student, class_run=int(r)) for r in args.class_runs.split(",")
        }
        if args.teacher_epochs is not None:
            cfg = replace(cfg, teacher=replace(cfg.teacher, epochs=args.teacher_epochs))
    except (SpklipError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    seen_all, _ = split_classes(len(GLYPH_CLASSES), cfg.n_unseen, cfg.validation_split_seed)
    data = render_glyphs(seen_all, cfg.train_per_class, seed=VALIDATION_DATA_SEED, spec=cfg.spec)
    labels = data.labels
    teacher = train_teacher(
        data.images, labels, glyph_prompts(seen_all), cfg.teacher, seed=VALIDATION_DATA_SEED
    )
    seen, _ = split_classes(len(seen_all), cfg.n_unseen, 0)  # validation seed 0
    on = np.isin(labels, seen)
    y = labels[on]
    img = torch.from_numpy(encode_frames(teacher.image_encoder, data.images[on]))
    ct_t = ablation_weights("L_ct", alpha=cfg.alpha, kl_weight=cfg.kl_weight).ct_temperature
    st = cfg.student
    print(
        f"teacher: {cfg.teacher.epochs} epochs, logit scale {teacher.logit_scale.item():.2f}; "
        f"{on.sum()} training samples of {len(seen)} classes; batch {st.batch_size}, "
        f"{st.epochs} epochs; L_ct temperature {ct_t:g}"
    )
    same_cos = []
    for c in np.unique(y):
        v = img[torch.from_numpy(y == c)]
        n = len(v)
        same_cos.append(((v @ v.t()).sum() - n).item() / (n * (n - 1)))
    print(f"mean same-class teacher image cosine {np.mean(same_cos):.3f}")
    for run, recipe in recipes.items():
        batches = batch_order(y, st.batch_size, st.epochs, np.random.default_rng(0), run)
        student = distill(
            teacher,
            data.events[on],
            data.images[on],
            y,
            seen,
            ablation_weights("L_ct", alpha=cfg.alpha, kl_weight=cfg.kl_weight),
            recipe,
            seed=0,
        )
        ev = torch.from_numpy(encode_frames(student, data.events[on]))
        partners, ct_mass, ct_loss = [], [], []
        target = {t: [] for t in temps}
        stud = {t: [] for t in temps}
        for idx in batches:
            lab = torch.from_numpy(y[idx])
            same = lab[:, None] == lab[None]
            v, s = img[idx], ev[idx]
            partners.append(same.sum(1).float().mean().item() - 1)
            sim = v @ v.t()
            p_ct = F.softmax(sim / ct_t, dim=1)
            ct_mass.append(_masses(p_ct, same))
            ct_loss.append(-p_ct.diag().log().mean().item())
            for t in temps:
                target[t].append(_masses(log_sinkhorn(sim, t).exp(), same))
                stud[t].append(_masses(F.softmax(s @ v.t() / t, dim=1), same))
        m = np.mean(ct_mass, axis=0)
        print(
            f"\n## class_run {run}: {len(batches)} batches, {np.mean(partners):.1f} same-class "
            f"partners per sample\n"
            f"L_ct softmax at a perfect student (T {ct_t:g}): paired {m[0]:.3f}, same-class "
            f"partners {m[1]:.3f}, other classes {m[2]:.3f}; L_ct there {np.mean(ct_loss):.3f}\n"
            "| L_kl T | target: paired | target: same-class | target: other | "
            "L_ct-trained student: paired | same-class | other |\n|---|---|---|---|---|---|---|"
        )
        for t in temps:
            a, b = np.mean(target[t], axis=0), np.mean(stud[t], axis=0)
            print(
                f"| {t:g} | {a[0]:.3f} | {a[1]:.3f} | {a[2]:.3f} | {b[0]:.3f} | {b[1]:.3f} | "
                f"{b[2]:.3f} |"
            )


if __name__ == "__main__":
    main()
