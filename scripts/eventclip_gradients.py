"""Why the event-CLIP loss terms add little to L_ct: each term's gradient on the student's
trainable parameters, at the start of distillation and after it, on the VALIDATION protocol
of ``scripts.demo_events --validation`` (data seed 1, the seen classes of split seed 100,
pseudo-unseen classes of validation seed 0; no test scene is rendered)::

    .venv/bin/python -m scripts.eventclip_gradients [--batches 8] [--alpha 0.1] [--kl-weight 1]
        [--teacher-epochs N] [--teacher-logit-scale S] [--epochs N] [--lr LR] [--trainable T]

Prints, averaged over batches of the seen classes: the norm of each weighted term's
gradient, the cosine between the terms' gradients and the cosine of the full loss's gradient
with L_ct's (Adam's step depends on the direction, barely on a common scale); the teacher's
logit scale, the Sinkhorn target's mass on the diagonal and the teacher's L_zs soft-target
mass on the pseudo-unseen classes.
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
from spklip.eventclip import (
    contrastive_loss,
    log_sinkhorn,
    similarity_kl_loss,
    student_from_teacher,
    zero_shot_distill_loss,
)
from spklip.training.distill import (
    FULL,
    ExperimentConfig,
    ablation_weights,
    distill,
    render_glyphs,
    split_classes,
    train_teacher,
)


def _report(student, params, batches, img, ev, text_all, text_seen, scale, w, title) -> None:
    zs = zero_shot_distill_loss
    terms = {
        "ct": lambda s, v: w.ct * contrastive_loss(s, v, w.ct_temperature),
        "kl": lambda s, v: w.kl * similarity_kl_loss(s, v, w.kl_temperature),
        "zs(all prompts)": lambda s, v: w.zs * zs(s, v, text_all, scale, w.zs_temperature),
        "zs(seen prompts)": lambda s, v: w.zs * zs(s, v, text_seen, scale, w.zs_temperature),
    }
    norms = {k: [] for k in terms}
    cos: dict[tuple[str, str], list[float]] = {}
    full_vs_ct = []
    for idx in batches:
        v = img[idx]
        g = {}
        for k, f in terms.items():
            s = F.normalize(student(ev[idx]), dim=-1)
            grads = torch.autograd.grad(f(s, v), params)
            g[k] = torch.cat([x.flatten() for x in grads])
            norms[k].append(g[k].norm().item())
        keys = list(g)
        for i, a in enumerate(keys):
            for b in keys[i + 1 :]:
                cos.setdefault((a, b), []).append(F.cosine_similarity(g[a], g[b], dim=0).item())
        full = g["ct"] + g["kl"] + g["zs(all prompts)"]
        full_vs_ct.append(F.cosine_similarity(full, g["ct"], dim=0).item())
    print(f"\n## {title} (weights ct {w.ct:g}, kl {w.kl:g}, zs {w.zs:g})")
    for k, n in norms.items():
        print(f"  |grad| {k}: {np.mean(n):.2f}")
    for (a, b), c in cos.items():
        print(f"  cos({a}, {b}) = {np.mean(c):.3f}")
    print(f"  cos(full, ct) = {np.mean(full_vs_ct):.4f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=8, help="batches of 64 to average over")
    ap.add_argument("--alpha", type=float, default=0.1, help="L_zs weight")
    ap.add_argument("--kl-weight", type=float, default=1.0, help="L_kl weight")
    ap.add_argument(
        "--teacher-logit-scale",
        type=float,
        help="fix the teacher's logit scale (0, 100]  [default: ExperimentConfig's teacher]",
    )
    ap.add_argument("--teacher-epochs", type=int, help="teacher epochs  [default: the demo's]")
    ap.add_argument("--epochs", type=int, help="student epochs  [default: the demo's]")
    ap.add_argument("--lr", type=float, help="student peak lr  [default: the demo's]")
    ap.add_argument("--trainable", help="student layers that train: all, early, mid")
    args = ap.parse_args(argv)
    if args.batches < 1:
        raise SystemExit("error: --batches must be >= 1")
    torch.set_num_threads(1)
    cfg = ExperimentConfig(validation=True)
    try:
        if args.teacher_logit_scale is not None:
            cfg = replace(cfg, teacher=replace(cfg.teacher, logit_scale=args.teacher_logit_scale))
        if args.teacher_epochs is not None:
            cfg = replace(cfg, teacher=replace(cfg.teacher, epochs=args.teacher_epochs))
        student = {"epochs": args.epochs, "lr": args.lr, "trainable": args.trainable}
        student = {k: v for k, v in student.items() if v is not None}
        cfg = replace(cfg, student=replace(cfg.student, **student))
    except SpklipError as e:
        raise SystemExit(f"error: {e}") from None
    seen_all, _ = split_classes(len(GLYPH_CLASSES), cfg.n_unseen, cfg.validation_split_seed)
    data = render_glyphs(seen_all, cfg.train_per_class, seed=VALIDATION_DATA_SEED, spec=cfg.spec)
    labels = data.labels
    prompts = glyph_prompts(seen_all)
    teacher = train_teacher(data.images, labels, prompts, cfg.teacher, seed=VALIDATION_DATA_SEED)
    seen, unseen = split_classes(len(seen_all), cfg.n_unseen, 0)  # validation seed 0
    on = np.isin(labels, seen)
    img = torch.from_numpy(encode_frames(teacher.image_encoder, data.images[on]))
    ev = torch.from_numpy(data.events[on])
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(rng.permutation(len(ev))[:64]) for _ in range(args.batches)]
    scale = teacher.logit_scale.detach()
    text_all, text_seen = teacher.class_text, teacher.class_text[seen]
    acc = (
        F.normalize(torch.from_numpy(encode_frames(teacher.image_encoder, data.images)), dim=-1)
        @ text_all.t()
    ).argmax(1).numpy() == labels
    print(
        f"teacher logit scale {scale.item():.2f}; teacher Top-1 on its training images "
        f"{acc.mean():.3f}"
    )
    v = img[batches[0]]
    q = log_sinkhorn(v @ v.t(), 0.01).exp()
    same = torch.from_numpy(labels[on][batches[0].numpy()])
    same = (same[:, None] == same[None]) & ~torch.eye(len(v), dtype=torch.bool)
    print(
        f"image-image cosine: same class {(v @ v.t())[same].mean():.3f}; Sinkhorn target "
        f"(T 0.01) on the diagonal {q.diag().mean():.3f}, on other same-class images "
        f"{(q * same).sum(1).mean():.3f}"
    )
    pt = F.softmax(scale * img @ text_all.t() / 2.0, dim=1)
    print(
        f"teacher L_zs target (T 2): max prob {pt.max(1).values.mean():.3f}, mass on the "
        f"{len(unseen)} pseudo-unseen classes {pt[:, unseen].sum(1).mean():.3f}"
    )
    w = ablation_weights(FULL, alpha=args.alpha, kl_weight=args.kl_weight)
    ct_only = ablation_weights("L_ct", alpha=args.alpha, kl_weight=args.kl_weight)
    # The demo's student recipe (cfg.student), trained with L_ct alone.
    trained = distill(
        teacher, data.events[on], data.images[on], labels[on], seen, ct_only, cfg.student, seed=0
    )
    names = {n for n, p in trained.named_parameters() if p.requires_grad}  # what trains
    student = student_from_teacher(teacher)
    params = [p for n, p in student.named_parameters() if n in names]
    _report(student, params, batches, img, ev, text_all, text_seen, scale, w, "at the start")
    params = [p for n, p in trained.named_parameters() if n in names]
    _report(trained, params, batches, img, ev, text_all, text_seen, scale, w, "after L_ct")


if __name__ == "__main__":
    main()
