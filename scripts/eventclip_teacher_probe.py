"""How sharp the event-CLIP teacher is, per teacher setting, on the VALIDATION protocol of
``scripts.demo_events --validation`` (data seed 1, the seen classes of split seed 100; the
pseudo-unseen classes of validation seed 0; no test scene is rendered)::

    .venv/bin/python -m scripts.eventclip_teacher_probe learned learned::30 30 100:5e-4

Each argument is SCALE[:LR[:EPOCHS]]: SCALE ``learned`` (CLIP's learned logit scale) or a fixed
scale in (0, 100]; LR and EPOCHS default to `TeacherConfig`'s. Prints, per setting: the
teacher's Top-1 over all 18 class prompts on its training images, on 20 other images per class
and on their DVS event frames; the L_zs soft target at temperature 2 (mean top probability,
mass on the pseudo-unseen classes); the mean same-class image-image cosine and the Sinkhorn
target's diagonal mass (T 0.01) on a batch of 64 held-out images.
"""

from __future__ import annotations

import sys
import time
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
    render_glyphs,
    split_classes,
    train_teacher,
)


def _top1(teacher, frames: np.ndarray, labels: np.ndarray) -> float:
    f = torch.from_numpy(encode_frames(teacher.image_encoder, frames))
    return float(((f @ teacher.class_text.t()).argmax(1).numpy() == labels).mean())


def main(argv: list[str] | None = None) -> None:
    specs = sys.argv[1:] if argv is None else argv
    if not specs:
        raise SystemExit("error: give at least one teacher setting SCALE[:LR[:EPOCHS]]")
    torch.set_num_threads(1)
    cfg = ExperimentConfig(validation=True)
    try:
        teachers = []
        for spec in specs:
            scale, lr, epochs = ([*spec.split(":"), "", ""])[:3]
            tc = replace(cfg.teacher, logit_scale=None if scale == "learned" else float(scale))
            tc = replace(tc, lr=float(lr)) if lr else tc
            teachers.append((spec, replace(tc, epochs=int(epochs)) if epochs else tc))
    except (SpklipError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    seen_all, _ = split_classes(len(GLYPH_CLASSES), cfg.n_unseen, cfg.validation_split_seed)
    data = render_glyphs(seen_all, cfg.train_per_class, seed=VALIDATION_DATA_SEED, spec=cfg.spec)
    test = render_glyphs(
        seen_all, 20, seed=VALIDATION_DATA_SEED, first_index=cfg.train_per_class, spec=cfg.spec
    )
    labels, test_labels = data.labels, test.labels
    _, unseen = split_classes(len(seen_all), cfg.n_unseen, 0)  # validation seed 0
    for spec, tc in teachers:
        t0 = time.perf_counter()
        teacher = train_teacher(
            data.images, labels, glyph_prompts(seen_all), tc, seed=VALIDATION_DATA_SEED
        )
        f = torch.from_numpy(encode_frames(teacher.image_encoder, test.images))
        scale = teacher.logit_scale.item()
        target = F.softmax(scale * f @ teacher.class_text.t() / 2.0, dim=1)
        v = f[:64]
        q = log_sinkhorn(v @ v.t(), 0.01).exp()
        same = torch.from_numpy(test_labels[:64])
        same = (same[:, None] == same[None]) & ~torch.eye(len(v), dtype=torch.bool)
        print(
            f"{spec}: scale {scale:.1f}; Top-1 train images "
            f"{_top1(teacher, data.images, labels):.3f}, held-out images "
            f"{_top1(teacher, test.images, test_labels):.3f}, their events "
            f"{_top1(teacher, test.events, test_labels):.3f}; L_zs target max "
            f"{target.max(1).values.mean():.3f}, pseudo-unseen mass "
            f"{target[:, unseen].sum(1).mean():.3f}; same-class cos {(v @ v.t())[same].mean():.3f},"
            f" Sinkhorn diagonal {q.diag().mean():.3f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
