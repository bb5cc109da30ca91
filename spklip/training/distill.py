"""Training of the event-CLIP system on the rendered glyph set (`spikesim.make_glyph_set`).

1. `train_teacher`: f_I (`GlyphCNN`) and the text tower's trainable part learn image-text
   alignment on still images of ALL classes: cross-entropy of each image against the prompts
   of every class (a random template per step; CLIP's loss when the texts are class prompts),
   with a learned logit scale. Then the teacher is frozen and its class text embeddings are
   the template ensembles.
2. `distill`: f_E (or the spike encoder f_S) starts as a copy of f_I and trains on the event
   (spike) frames of the SEEN classes with `spklip.eventclip.distill_loss`; the teacher's
   image features of the paired images are computed once (f_I is frozen, so they never change).
3. `run_experiment`: one seed end to end: data, teacher, the loss ablation on events, the spike
   encoder, zero-shot / few-shot / retrieval on the held-out classes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikesim import GLYPH_CLASSES, GlyphSet, GlyphSpec, glyph_prompts, make_glyph_set

from ..errors import SpklipError
from ..evaluation.distill import encode_frames, few_shot, retrieval, zero_shot
from ..eventclip import (
    GlyphCNN,
    ImageTextTeacher,
    LossWeights,
    check_logit_scale,
    distill_loss,
    student_from_teacher,
)
from ..text import TextConfig, build_text_encoder, default_tokenizer, trim_padding

__all__ = [
    "ABLATIONS",
    "FULL",
    "FULL_PRED",
    "NO_TRAINING",
    "PAPER_ABLATIONS",
    "TRAINABLE",
    "ZS_PROMPTS",
    "DistillConfig",
    "ExperimentConfig",
    "TeacherConfig",
    "ablation_weights",
    "batch_order",
    "distill",
    "render_glyphs",
    "run_experiment",
    "split_classes",
    "text_config",
    "train_teacher",
]

NO_TRAINING = "f_I on events (no training)"
FULL = "full (L_ct + λ·L_kl + α·L_zs)"
FULL_PRED = "full + L_pred (fine-tuning)"
# The student losses. λ (the L_kl weight) and α (the L_zs weight) are ExperimentConfig's
# ``kl_weight`` and ``alpha`` (`ablation_weights` puts them in); the weights written here are
# the paper's (λ 1, α 0.1). None trains nothing (f_I applied to events).
ABLATIONS: dict[str, LossWeights | None] = {
    NO_TRAINING: None,
    "L_pred only": LossWeights(ct=0.0, kl=0.0, zs=0.0, pred=1.0),
    "L_ct": LossWeights(ct=1.0, kl=0.0, zs=0.0),
    "L_ct + λ·L_kl": LossWeights(ct=1.0, kl=1.0, zs=0.0),
    "L_ct + α·L_zs": LossWeights(ct=1.0, kl=0.0, zs=0.1),  # not in the paper's figure
    FULL: LossWeights(ct=1.0, kl=1.0, zs=0.1),
    # the fine-tuning form: the full loss plus L_pred (not in the demo's rows)
    FULL_PRED: LossWeights(ct=1.0, kl=1.0, zs=0.1, pred=1.0),
}
# The loss ablation of the paper's Fig. 4 (the demo's rows), the full loss last.
PAPER_ABLATIONS = (NO_TRAINING, "L_pred only", "L_ct", "L_ct + λ·L_kl", FULL)
# DistillConfig.zs_prompts: which class prompts L_zs scores the teacher's images and the
# student's inputs against.
ZS_PROMPTS = ("all", "seen")


KL_TEMPERATURE = LossWeights().kl_temperature  # the 0.01


def ablation_weights(
    name: str, *, alpha: float, kl_weight: float, kl_temperature: float = KL_TEMPERATURE
) -> LossWeights | None:
    """The `LossWeights` of ablation ``name`` (a key of `ABLATIONS`) with the L_zs weight
    ``alpha``, the L_kl weight ``kl_weight`` and L_kl's temperature ``kl_temperature`` (of
    both its Sinkhorn target and the student's similarity softmax), for the losses that have
    those terms (the others keep the defaults, so they compare equal across settings)."""
    if name not in ABLATIONS:
        raise SpklipError(f"unknown loss {name!r}; choose one of: {', '.join(ABLATIONS)}")
    if not (alpha > 0 and kl_weight > 0 and kl_temperature > 0):
        raise SpklipError(
            f"alpha, kl_weight and kl_temperature must be > 0, got {alpha}, {kl_weight} and "
            f"{kl_temperature}"
        )
    w = ABLATIONS[name]
    if w is None:
        return None
    w = replace(w, kl=kl_weight if w.kl else 0.0, zs=alpha if w.zs else 0.0)
    return replace(w, kl_temperature=kl_temperature) if w.kl else w


def text_config(tower: str = "auto") -> TextConfig:
    """The teacher's text tower: ``"minilm"`` (frozen MiniLM, trainable projection),
    ``"transformer"`` (a 2-layer byte-token transformer trained from scratch) or ``"auto"``
    (MiniLM when its package is installed)."""
    if tower == "auto":
        from ..minilm import minilm_available

        tower = "minilm" if minilm_available() else "transformer"
    if tower == "minilm":
        return TextConfig(encoder="minilm", tokenizer="minilm", context_length=32, pool="mean")
    if tower == "transformer":
        return TextConfig(context_length=64, width=128, heads=4, layers=2, pool="mean")
    raise SpklipError(f"text tower {tower!r}; choose auto, minilm or transformer")


@dataclass(frozen=True)
class TeacherConfig:
    """f_I width / embedding size and its image-text training."""

    embed_dim: int = 128
    width: int = 32
    # 30 (session 6, validation classes): the 12-epoch teacher reached 41 % Top-1 over 18
    # prompts on held-out images, the 30-epoch one 97 %, and every student rose from 54-55 %
    # to 71-72 % pseudo-unseen Top-1 (docs/eventclip/validation-losses.md)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    text: str = "auto"
    # The image-text logit scale: None = learned from CLIP's start 1/0.07 (capped at 100);
    # a number in (0, 100] = fixed. The teacher's scale is also the one L_zs distils at. On
    # the glyph set, fixed scales 20-100 collapsed the teacher to chance (learned: 13.7;
    # docs/eventclip/validation-losses.md).
    logit_scale: float | None = None

    def __post_init__(self) -> None:
        check_logit_scale(self.logit_scale, "teacher logit_scale")


# DistillConfig.trainable -> how many of GlyphCNN's residual stages train after the stem
# (None: everything, head included).
TRAINABLE: dict[str, int | None] = {"all": None, "early": 1, "mid": 2}


@dataclass(frozen=True)
class DistillConfig:
    """Student training (same for every ablation)."""

    # Defaults: the best recipe on validation classes (scripts/demo_events.py --validation).
    epochs: int = 4
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    shift_px: int = 1  # random translation of the student's input (teacher targets unshifted)
    # Which parts of f_E train (the rest stays f_I's): "all"; "early" = the stem and the first
    # residual stage (the modality gap is in low-level appearance, so the deep layers that carry
    # the teacher's semantic space can stay frozen); "mid" = stem and the first two stages.
    trainable: str = "mid"
    # The class prompts of L_zs: "all" = every class the teacher knows, the held-out ones
    # included (their names only: no sample of a held-out class is ever distilled on), so the
    # teacher's image-vs-unseen-class similarities are distilled too; "seen" = the training
    # classes' prompts only (then L_zs says nothing about the held-out classes). Default: the
    # validation sweep's choice (within noise of "all").
    zs_prompts: str = "seen"
    # Batch composition: each epoch's order is made of runs of ``class_run`` samples of one
    # class (`batch_order`); 1 = a plain shuffle (about 6 same-class partners per sample in a
    # batch of 64 from 10 classes). Larger runs give L_ct more same-class negatives.
    class_run: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.class_run, int) and self.class_run >= 1):
            raise SpklipError(f"class_run must be an integer >= 1, got {self.class_run!r}")
        if self.trainable not in TRAINABLE:
            raise SpklipError(
                f"trainable {self.trainable!r}; choose one of: {', '.join(TRAINABLE)}"
            )
        if self.zs_prompts not in ZS_PROMPTS:
            raise SpklipError(
                f"zs_prompts {self.zs_prompts!r}; choose one of: {', '.join(ZS_PROMPTS)}"
            )
        if not (self.epochs >= 1 and self.batch_size >= 2 and self.lr > 0 and self.shift_px >= 0):
            raise SpklipError(
                "student training needs epochs >= 1, batch_size >= 2, lr > 0 and shift_px >= 0"
            )


def _trainable_parameters(student: GlyphCNN, trainable: str) -> list[torch.nn.Parameter]:
    """Freeze the parts of ``student`` that ``trainable`` keeps; return the ones that train."""
    n = TRAINABLE[trainable]
    if n is None:
        return list(student.parameters())
    train = list(student.stem.parameters()) + [
        p for block in list(student.stages)[:n] for p in block.parameters()
    ]
    keep = {id(p) for p in train}
    for p in student.parameters():
        p.requires_grad_(id(p) in keep)
    return train


def _steps(n: int, batch: int, rng: np.random.Generator, epochs: int):
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n - batch + 1 if n >= batch else 1, batch):
            yield order[i : i + batch]


def batch_order(
    labels: np.ndarray, batch_size: int, epochs: int, rng: np.random.Generator, class_run: int = 1
) -> list[np.ndarray]:
    """The student's batches: ``epochs`` passes over the samples, each cut into batches of
    ``batch_size`` indices (int64) into ``labels`` (N,), the last partial batch dropped (one
    batch of all N when N < batch_size). ``class_run`` 1: each epoch is a random permutation.
    ``class_run`` n > 1: each class's samples, shuffled, are cut into runs of n (the last run
    of a class may be shorter), and the epoch is the runs in random order, so a batch holds
    about batch_size / n runs and each sample has at least min(n, its class size) - 1
    same-class partners whenever its run is not split by a batch boundary."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise SpklipError(f"batch_order needs a non-empty 1-D label array, got {labels.shape}")
    if not (batch_size >= 1 and epochs >= 1 and isinstance(class_run, int) and class_run >= 1):
        raise SpklipError(
            f"batch_order needs batch_size >= 1, epochs >= 1 and an integer class_run >= 1, "
            f"got {batch_size}, {epochs}, {class_run!r}"
        )
    n = len(labels)
    batch = min(batch_size, n)
    if class_run == 1:  # the original sampler (same random draws, so old runs reproduce)
        return list(_steps(n, batch, rng, epochs))
    classes = np.unique(labels)
    out = []
    for _ in range(epochs):
        runs = []
        for c in classes:
            members = rng.permutation(np.flatnonzero(labels == c))
            runs += [members[i : i + class_run] for i in range(0, len(members), class_run)]
        order = np.concatenate([runs[i] for i in rng.permutation(len(runs))])
        out += [order[i : i + batch] for i in range(0, n - batch + 1, batch)]
    return out


def _shift(x: torch.Tensor, rng: np.random.Generator, px: int) -> torch.Tensor:
    """Roll the whole batch by one random (dy, dx) in [-px, px] (cheap translation jitter)."""
    if px == 0:
        return x
    dy, dx = (int(v) for v in rng.integers(-px, px + 1, size=2))
    return torch.roll(x, shifts=(dy, dx), dims=(1, 2))


def _text_features(
    teacher: ImageTextTeacher, prompts: list[list[str]]
) -> Callable[[int], torch.Tensor]:
    """template j -> centred (over the C classes), normalised (C, D) class text features with
    gradient to the trainable text parameters. A frozen MiniLM body gives the same pooled
    features every step, so those are computed once and only the projection runs per step."""
    from ..minilm import MiniLMTextEncoder

    enc = teacher.text_encoder
    if not (
        isinstance(enc, MiniLMTextEncoder)
        and enc.first_trained == len(enc.bert.layers)
        and enc.adapter is None
    ):
        raw = lambda j: teacher.raw_text([p[j] for p in prompts])  # noqa: E731
    else:
        with torch.no_grad():
            pooled = [
                enc.features(
                    trim_padding(
                        teacher.tokenizer.encode_batch(
                            [p[j] for p in prompts], teacher.context_length
                        )
                    )
                )
                for j in range(len(prompts[0]))
            ]
        raw = lambda j: enc.projection(pooled[j])  # noqa: E731

    def text(j: int) -> torch.Tensor:
        r = raw(j)
        return F.normalize(r - r.mean(dim=0), dim=-1)

    return text


def train_teacher(
    images: np.ndarray,
    labels: np.ndarray,
    prompts: list[list[str]],
    config: TeacherConfig = TeacherConfig(),
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> ImageTextTeacher:
    """images float32 (N, H, W), labels int (N,) indexing ``prompts`` (C classes x templates).
    Returns the frozen teacher with ``class_text`` (C, D) set."""
    if len(images) != len(labels) or len(images) == 0:
        raise SpklipError("train_teacher needs as many labels as images, at least one")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tcfg = text_config(config.text)
    tokenizer = default_tokenizer(tcfg)
    teacher = ImageTextTeacher(
        GlyphCNN(config.embed_dim, config.width),
        build_text_encoder(tcfg, config.embed_dim),
        tokenizer,
        tcfg.context_length,
    )
    teacher.set_logit_scale(config.logit_scale)
    params = [p for p in teacher.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(np.asarray(labels, np.int64))
    n_templates = len(prompts[0])
    text_of = _text_features(teacher, prompts)
    steps = list(_steps(len(images), min(config.batch_size, len(images)), rng, config.epochs))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, config.lr, total_steps=len(steps), pct_start=0.15
    )
    teacher.train()
    for i, idx in enumerate(steps):
        j = int(rng.integers(n_templates))
        text = text_of(j)
        img = teacher.encode_image(_shift(x_all[idx], rng, 2))
        loss = F.cross_entropy(teacher.logit_scale * img @ text.t(), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if log and (i % 50 == 0 or i == len(steps) - 1):
            log(f"teacher step {i + 1}/{len(steps)} loss {loss.item():.3f}")
    teacher.freeze()
    teacher.set_class_text(prompts)
    return teacher


def distill(
    teacher: ImageTextTeacher,
    inputs: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int],
    weights: LossWeights,
    config: DistillConfig = DistillConfig(),
    *,
    seed: int = 0,
    shuffle_pairs: bool = False,
    log: Callable[[str], None] | None = None,
) -> GlyphCNN:
    """Train f_E from f_I on ``inputs`` float32 (N, H, W) (event or spike frames) paired with
    ``images`` (N, H, W); ``labels`` (N,) are indices of the teacher's ``class_text`` rows,
    all in ``classes`` (the seen classes: L_pred uses only their prompts; L_zs uses theirs or
    every row of ``class_text``, as ``config.zs_prompts`` says). ``shuffle_pairs``: pair each
    input with a random other image (a control that must not learn). Returns the student
    (eval)."""
    if not (len(inputs) == len(images) == len(labels)) or len(inputs) == 0:
        raise SpklipError("distill needs inputs, images and labels of one non-zero length")
    classes = [int(c) for c in classes]
    where = {c: i for i, c in enumerate(classes)}
    if not set(np.asarray(labels).tolist()) <= set(where):
        raise SpklipError("distill: every label must be one of the training classes given")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    student = student_from_teacher(teacher)
    img_feat = torch.from_numpy(encode_frames(teacher.image_encoder, images))
    if shuffle_pairs:
        img_feat = img_feat[torch.from_numpy(rng.permutation(len(img_feat)))]
    class_text = teacher.class_text[classes].detach()
    zs_text = teacher.class_text.detach() if config.zs_prompts == "all" else class_text
    y = torch.tensor([where[int(c)] for c in labels])
    x_all = torch.from_numpy(inputs)
    scale = teacher.logit_scale.detach()
    params = _trainable_parameters(student, config.trainable)
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = batch_order(labels, config.batch_size, config.epochs, rng, config.class_run)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, config.lr, total_steps=len(steps), pct_start=0.1
    )
    for i, idx in enumerate(steps):
        s = F.normalize(student(_shift(x_all[idx], rng, config.shift_px)), dim=-1)
        parts = distill_loss(s, img_feat[idx], class_text, y[idx], scale, weights, zs_text)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        opt.step()
        sched.step()
        if log and (i % 50 == 0 or i == len(steps) - 1):
            text = " ".join(f"{k} {v.item():.3f}" for k, v in parts.items())
            log(f"distill step {i + 1}/{len(steps)} {text}")
    return student.eval()


def split_classes(n_classes: int, n_unseen: int, seed: int) -> tuple[list[int], list[int]]:
    """(seen, unseen) class indices: a seeded random choice of ``n_unseen`` held-out classes."""
    if not 1 <= n_unseen < n_classes:
        raise SpklipError(f"n_unseen must be in [1, {n_classes - 1}], got {n_unseen}")
    order = np.random.default_rng([seed, 12]).permutation(n_classes)
    unseen = sorted(int(c) for c in order[:n_unseen])
    return [c for c in range(n_classes) if c not in unseen], unseen


def render_glyphs(
    classes: Sequence[int], per_class: int, *, seed: int, spec: GlyphSpec, first_index: int = 0
) -> GlyphSet:
    """`make_glyph_set` of ``classes`` (indices into GLYPH_CLASSES) with every label replaced
    by its class's position in ``classes``, i.e. its row of ``glyph_prompts(classes)``."""
    data = make_glyph_set(classes, per_class, seed=seed, first_index=first_index, spec=spec)
    local = {c: i for i, c in enumerate(classes)}
    return replace(data, labels=np.array([local[int(c)] for c in data.labels]))


@dataclass(frozen=True)
class ExperimentConfig:
    """One seed of the whole study. ``train_per_class`` samples of each class train the
    teacher (images) and, for seen classes, the students (events / spikes); samples
    ``train_per_class ..`` (``test_per_class`` of them) of the unseen classes are the test
    set; few-shot support is drawn from the unseen classes' training samples (never
    distilled on). ``validation``: for choosing hyperparameters without the test classes:
    the classes are the SEEN classes of the split drawn with ``validation_split_seed`` (a seed
    the demo does not report), and ``n_unseen`` of them, drawn with the run's ``seed``, are
    held out as pseudo-unseen classes; the real held-out classes are never touched, and one
    teacher (trained on those seen classes) serves every validation seed. Run it with a
    ``data_seed`` other than the demo's so that no test scene is rendered either.
    ``alpha`` / ``kl_weight``: the weights α of L_zs and λ of L_kl in every loss that has
    them, ``kl_temperature`` L_kl's temperature (`ablation_weights`); ``ablations``: keys of
    `ABLATIONS` to train and score."""

    n_unseen: int = 8
    train_per_class: int = 40
    test_per_class: int = 40
    spec: GlyphSpec = field(default_factory=GlyphSpec)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: DistillConfig = field(default_factory=DistillConfig)
    ablations: tuple[str, ...] = PAPER_ABLATIONS
    # Defaults: the full loss's best weighting on validation classes (scripts/demo_events.py
    # --validation weights, 5 seeds; every weighting was within noise of L_ct there, see
    # docs/eventclip/README.md). The paper's are α 0.1, λ 1.
    alpha: float = 2.0
    kl_weight: float = 1.0
    kl_temperature: float = KL_TEMPERATURE
    spikes: bool = True
    shots: tuple[int, ...] = (1, 2, 4, 8)
    validation: bool = False
    validation_split_seed: int = 100

    def __post_init__(self) -> None:
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown:
            raise SpklipError(f"unknown loss {unknown[0]!r}; choose from: {', '.join(ABLATIONS)}")
        self.weights(FULL)  # checks alpha, kl_weight and kl_temperature

    def weights(self, name: str) -> LossWeights | None:
        """The loss weights of ablation ``name`` in this experiment."""
        return ablation_weights(
            name,
            alpha=self.alpha,
            kl_weight=self.kl_weight,
            kl_temperature=self.kl_temperature,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = {k: v for k, v in d["spec"].items() if not k.startswith("_")}
        return d


def _evaluate(
    encoder, data: GlyphSet, modality: str, teacher, unseen, support: GlyphSet, shots, seed
):
    feats = encode_frames(encoder, data.modality(modality))
    out = zero_shot(feats, data.labels, teacher.class_text.numpy(), unseen)
    sup = encode_frames(encoder, support.modality(modality))
    out["few_shot_top1"] = few_shot(sup, support.labels, feats, data.labels, shots, seed=seed)
    return out, feats


def run_experiment(
    config: ExperimentConfig = ExperimentConfig(),
    *,
    seed: int = 0,
    data_seed: int | None = None,
    shared: dict | None = None,
    keep: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Everything for one seed; returns a JSON-able dict (see the module docstring).

    ``seed`` draws the held-out classes and seeds every student. ``data_seed`` (default:
    ``seed``) renders the glyphs and seeds the teacher; the teacher sees all classes, so it
    does not depend on the split, and ``shared`` (a dict the caller keeps across calls) lets
    seeds with one ``data_seed`` reuse its data and teacher. ``keep``: if given, receives the
    trained "teacher" and the last "student"."""
    t_start = time.perf_counter()
    say = log or (lambda s: None)
    data_seed = seed if data_seed is None else data_seed
    shared = {} if shared is None else shared
    all_classes = list(range(len(GLYPH_CLASSES)))
    seen, unseen = split_classes(len(all_classes), config.n_unseen, seed)
    if config.validation:  # pseudo-unseen classes carved from the seen ones; test classes unused
        seen_all, _ = split_classes(len(all_classes), config.n_unseen, config.validation_split_seed)
        seen, unseen = split_classes(len(seen_all), config.n_unseen, seed)
        seen, unseen = [seen_all[i] for i in seen], [seen_all[i] for i in unseen]
        all_classes = seen_all
    key = (
        data_seed,
        tuple(all_classes),
        repr(config.spec),
        repr(config.teacher),
        config.train_per_class,
        config.test_per_class,
    )
    if key not in shared:
        t0 = time.perf_counter()
        train = render_glyphs(all_classes, config.train_per_class, seed=data_seed, spec=config.spec)
        test = render_glyphs(
            all_classes,
            config.test_per_class,
            seed=data_seed,
            first_index=config.train_per_class,
            spec=config.spec,
        )
        say(
            f"data: {len(train)} train, {len(test)} test samples ({time.perf_counter() - t0:.0f} s)"
        )
        local = {c: i for i, c in enumerate(all_classes)}  # class index -> row of prompts
        t0 = time.perf_counter()
        teacher = train_teacher(
            train.images,
            train.labels,
            glyph_prompts(all_classes),
            config.teacher,
            seed=data_seed,
            log=log,
        )
        shared[key] = (local, train, test, teacher, time.perf_counter() - t0)
    local, train_l, test_all, teacher, t_teacher = shared[key]
    seen_l, unseen_l = [local[c] for c in seen], [local[c] for c in unseen]
    test_l = test_all.subset(np.isin(test_all.labels, unseen_l))
    is_seen = np.isin(train_l.labels, seen_l)
    seen_train, support = train_l.subset(is_seen), train_l.subset(~is_seen)
    result: dict[str, Any] = {
        "seed": seed,
        "data_seed": data_seed,
        "seen_classes": [GLYPH_CLASSES[c][0] for c in seen],
        "unseen_classes": [GLYPH_CLASSES[c][0] for c in unseen],
        "text_tower": text_config(config.teacher.text).encoder,
        "teacher_seconds": t_teacher,
        "train_samples": {"teacher_images": len(train_l), "student_seen": len(seen_train)},
        "test_samples": len(test_l),
    }
    if keep is not None:
        keep["teacher"] = teacher
    img_feats = encode_frames(teacher.image_encoder, test_l.images)
    result["teacher_images"] = zero_shot(
        img_feats, test_l.labels, teacher.class_text.numpy(), unseen_l
    )
    result["events"] = {}
    encoders = {}
    for name in config.ablations:
        weights = config.weights(name)
        t0 = time.perf_counter()
        if weights is None:
            enc = teacher.image_encoder
        else:
            enc = distill(
                teacher,
                seen_train.events,
                seen_train.images,
                seen_train.labels,
                seen_l,
                weights,
                config.student,
                seed=seed,
                log=log,
            )
        res, feats = _evaluate(
            enc, test_l, "events", teacher, unseen_l, support, config.shots, seed
        )
        res["seconds"] = time.perf_counter() - t0
        result["events"][name] = res
        encoders[name] = (enc, feats)
        if keep is not None and weights is not None:
            keep["student"] = enc
        say(f"events / {name}: unseen top1 {res['unseen_top1']:.3f} all top1 {res['all_top1']:.3f}")
    if config.spikes:
        t0 = time.perf_counter()
        f_s = distill(
            teacher,
            seen_train.spikes,
            seen_train.images,
            seen_train.labels,
            seen_l,
            config.weights(FULL),
            config.student,
            seed=seed,
            log=log,
        )
        res, spk_feats = _evaluate(
            f_s, test_l, "spikes", teacher, unseen_l, support, config.shots, seed
        )
        direct, _ = _evaluate(
            teacher.image_encoder, test_l, "spikes", teacher, unseen_l, support, config.shots, seed
        )
        res["seconds"] = time.perf_counter() - t0
        result["spikes"] = {"f_I on spikes (no training)": direct, "full": res}
        if keep is not None:
            keep["student"] = f_s
        say(f"spikes / full: unseen top1 {res['unseen_top1']:.3f}")
        if FULL in encoders:
            result["retrieval"] = retrieval(
                encoders[FULL][1], img_feats, spk_feats, teacher.class_text.numpy(), test_l.labels
            )
    result["seconds"] = time.perf_counter() - t_start
    return result
