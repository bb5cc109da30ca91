"""The event-CLIP system: a frozen image-text teacher and an event (or spike) encoder distilled
from it, with the losses of "Expanding Event Modality Applications through a Robust CLIP-Based
Encoder" (re-derived from the paper's description).

- `GlyphCNN`: a small ResNet-like image encoder, one grey channel (H, W) -> (D,). The teacher's
  f_I and the student's f_E (events: the single grey frame E = sum_p sum_t E / (max + 1); spikes:
  a spike-rate frame) share it, and f_E starts as an exact copy of f_I.
- `ImageTextTeacher`: f_I, a text tower f_T (``spklip.text.build_text_encoder``: MiniLM or the
  from-scratch byte transformer) and a logit scale; frozen once trained.
- Losses on L2-normalised features (B, D), each returning a scalar tensor:
  `contrastive_loss` (L_ct, student -> teacher image, one direction, temperature 0.02),
  `similarity_kl_loss` (L_kl, the student-vs-image similarity distribution against a
  Sinkhorn-balanced image-vs-image target), `zero_shot_distill_loss` (L_zs, the teacher's
  image-vs-prompt logits distilled into the student's, temperature 2), `prediction_loss`
  (L_pred = 1 - cos(f_E(E), f_T(true class))). `distill_loss` sums them with `LossWeights`.
- `log_sinkhorn`: Sinkhorn-Knopp in the log domain: exp(s / 0.01) overflows float32 once
  s > 0.89, so the plain form cannot run at the paper's temperature.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SpklipError

__all__ = [
    "MAX_LOGIT_SCALE",
    "GlyphCNN",
    "ImageTextTeacher",
    "LossWeights",
    "check_logit_scale",
    "contrastive_loss",
    "distill_loss",
    "log_sinkhorn",
    "prediction_loss",
    "similarity_kl_loss",
    "student_from_teacher",
    "zero_shot_distill_loss",
]


# CLIP clips its learned logit scale at 100.
MAX_LOGIT_SCALE = 100.0


def check_logit_scale(value: float | None, what: str = "fixed logit scale") -> None:
    """A fixed logit scale must be in (0, MAX_LOGIT_SCALE]; None (learned) passes. ``what``
    names it in the one-line SpklipError."""
    if value is not None and not 0 < value <= MAX_LOGIT_SCALE:
        raise SpklipError(
            f"{what} must be in (0, {MAX_LOGIT_SCALE:g}] or None (learned), got {value}"
        )


class _Block(nn.Module):
    """Basic residual block: two 3x3 convs with GroupNorm (no batch statistics, so train and
    eval modes compute the same function and a copied encoder is the same function)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(8, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(8, cout)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.GroupNorm(8, cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


class GlyphCNN(nn.Module):
    """float (B, H, W) or (B, 1, H, W) in [0, 1] -> float32 (B, embed_dim) (not normalised).

    Each input is standardised to zero mean, unit variance first (images, event frames and
    spike-rate frames have different levels; the shape of the pattern is what matters).
    Stem 3x3 conv, three stages of one residual block each (width, 2 width stride 2, 4 width
    stride 2), global average pool, linear projection.
    """

    def __init__(self, embed_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        if embed_dim < 1 or width < 8 or width % 8:
            raise SpklipError(
                f"GlyphCNN needs embed_dim >= 1 and width a multiple of 8, got {embed_dim}, {width}"
            )
        self.embed_dim, self.width = embed_dim, width
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.GroupNorm(8, width), nn.ReLU()
        )
        self.stages = nn.Sequential(
            _Block(width, width, 1), _Block(width, 2 * width, 2), _Block(2 * width, 4 * width, 2)
        )
        self.head = nn.Linear(4 * width, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x[:, None]
        if x.dim() != 4 or x.shape[1] != 1:
            raise SpklipError(
                f"GlyphCNN input must be (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}"
            )
        x = x.float()
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        x = (x - mean) / (std + 1e-3)
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


class ImageTextTeacher(nn.Module):
    """f_I (`GlyphCNN`), f_T (a text tower (B, L) ids -> (B, D)) and the logit scale
    exp(log_scale). Text features are centred before normalising: f_T(t) - text_center, the
    centre being the mean raw f_T output over the class prompts (during training, over the
    prompts of the step). A pretrained sentence tower gives every short prompt nearly the same
    direction (cosine 0.85-0.95 between classes here); removing the shared part lets the
    classes differ from the first step. ``class_text`` (C, D) float32 buffer: per-class text
    embedding (mean of the normalised template embeddings, renormalised), filled by
    `set_class_text`."""

    def __init__(
        self, image_encoder: GlyphCNN, text_encoder: nn.Module, tokenizer, context_length: int
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.context_length = context_length
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's start
        self.register_buffer("class_text", torch.zeros(0, image_encoder.embed_dim))
        self.register_buffer("text_center", torch.zeros(image_encoder.embed_dim))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def set_logit_scale(self, value: float | None) -> None:
        """``value`` None: the scale is learned from CLIP's start 1/0.07 (capped at 100, as in
        CLIP); a number in (0, 100]: the scale is fixed at it (no gradient)."""
        check_logit_scale(value)
        with torch.no_grad():
            self.log_scale.fill_(math.log(1 / 0.07 if value is None else value))
        self.log_scale.requires_grad_(value is None)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W) -> L2-normalised (B, D)."""
        return F.normalize(self.image_encoder(x), dim=-1)

    def raw_text(self, texts: list[str]) -> torch.Tensor:
        """Strings -> f_T output (len(texts), D), not centred, not normalised."""
        device = self.log_scale.device
        tokens = self.tokenizer.encode_batch(texts, self.context_length).to(device)
        return self.text_encoder(tokens)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Strings -> centred, L2-normalised (len(texts), D)."""
        return F.normalize(self.raw_text(texts) - self.text_center, dim=-1)

    @torch.no_grad()
    def set_class_text(self, prompts: list[list[str]]) -> torch.Tensor:
        """prompts[c][j]: template j of class c -> sets text_center (the mean raw feature of
        all these prompts) and class_text (C, D); returns class_text."""
        if not prompts or not all(prompts):
            raise SpklipError("set_class_text needs at least one prompt for every class")
        self.text_center = self.raw_text([t for p in prompts for t in p]).mean(dim=0)
        rows = [self.encode_text(p).mean(dim=0) for p in prompts]
        self.class_text = F.normalize(torch.stack(rows), dim=-1)
        return self.class_text

    def freeze(self) -> ImageTextTeacher:
        """No parameter of the teacher gets a gradient from now on; eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()


def student_from_teacher(teacher: ImageTextTeacher) -> GlyphCNN:
    """f_E: a trainable deep copy of f_I (same architecture, same weights)."""
    student = copy.deepcopy(teacher.image_encoder)
    for p in student.parameters():
        p.requires_grad_(True)
    return student.train()


def _check_pair(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise SpklipError(
            f"{what}: features must be two (B, D) tensors of one shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )


def log_sinkhorn(scores: torch.Tensor, temperature: float, iters: int = 50) -> torch.Tensor:
    """Sinkhorn-Knopp balancing of exp(scores / temperature), computed on logs.

    scores (N, M) float -> log P (N, M) where P has every row summing to 1 and every column
    to N / M (the balanced transport plan scaled by N, so each row is a distribution).
    Alternating logsumexp row and column normalisations never exponentiate a large number.
    """
    if scores.dim() != 2 or min(scores.shape) < 1:
        raise SpklipError(
            f"log_sinkhorn needs a non-empty (N, M) score matrix, got {tuple(scores.shape)}"
        )
    if not temperature > 0:
        raise SpklipError(f"log_sinkhorn temperature must be > 0, got {temperature}")
    n, m = scores.shape
    log_p = scores.double() / temperature
    log_col = torch.log(torch.tensor(n / m, dtype=log_p.dtype, device=log_p.device))
    for _ in range(iters):
        log_p = log_p - torch.logsumexp(log_p, dim=0, keepdim=True) + log_col
        log_p = log_p - torch.logsumexp(log_p, dim=1, keepdim=True)
    return log_p.to(scores.dtype)


def contrastive_loss(
    student: torch.Tensor, image: torch.Tensor, temperature: float = 0.02
) -> torch.Tensor:
    """L_ct: cross-entropy of student sample i against all teacher images of the batch,
    target image i (one direction: only student features get a gradient)."""
    _check_pair(student, image, "contrastive_loss")
    logits = student @ image.detach().t() / temperature
    return F.cross_entropy(logits, torch.arange(len(student), device=student.device))


def similarity_kl_loss(
    student: torch.Tensor, image: torch.Tensor, temperature: float = 0.01, iters: int = 50
) -> torch.Tensor:
    """L_kl: KL(Q || P) averaged over rows, where P_i = softmax_j(s_i . v_j / T) (student vs
    teacher images) and Q = `log_sinkhorn`(v v^T, T) (the teacher's image-image similarity,
    balanced so that no image is everybody's nearest neighbour)."""
    _check_pair(student, image, "similarity_kl_loss")
    image = image.detach()
    log_q = log_sinkhorn(image @ image.t(), temperature, iters)
    log_p = F.log_softmax(student @ image.t() / temperature, dim=1)
    return (log_q.exp() * (log_q - log_p)).sum(dim=1).mean()


def zero_shot_distill_loss(
    student: torch.Tensor,
    image: torch.Tensor,
    class_text: torch.Tensor,
    logit_scale: torch.Tensor | float,
    temperature: float = 2.0,
) -> torch.Tensor:
    """L_zs: KL(softmax(z_I / T) || softmax(z_E / T)) * T^2 averaged over samples, with
    z_I = scale * image @ class_text^T (teacher) and z_E = scale * student @ class_text^T."""
    _check_pair(student, image, "zero_shot_distill_loss")
    if class_text.dim() != 2 or class_text.shape[1] != student.shape[1]:
        raise SpklipError(
            f"class_text must be (C, {student.shape[1]}), got {tuple(class_text.shape)}"
        )
    text = class_text.detach()
    scale = torch.as_tensor(logit_scale, dtype=student.dtype, device=student.device).detach()
    log_t = F.log_softmax(scale * image.detach() @ text.t() / temperature, dim=1)
    log_s = F.log_softmax(scale * student @ text.t() / temperature, dim=1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=1).mean() * temperature**2


def prediction_loss(
    student: torch.Tensor, class_text: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """L_pred: mean of 1 - cos(student_i, class_text[labels_i]); labels index class_text rows."""
    if labels.dim() != 1 or len(labels) != len(student):
        raise SpklipError(f"labels must be ({len(student)},), got {tuple(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_text)):
        raise SpklipError(f"labels must index the {len(class_text)} class_text rows")
    target = class_text.detach()[labels]
    return (1 - F.cosine_similarity(student, target, dim=1)).mean()


@dataclass(frozen=True)
class LossWeights:
    """Weights and temperatures of L = ct * L_ct + kl * L_kl + zs * L_zs + pred * L_pred.
    The paper's training: ct 1, kl 1, zs 0.1 (alpha), pred 0; fine-tuning adds pred 1."""

    ct: float = 1.0
    kl: float = 1.0
    zs: float = 0.1
    pred: float = 0.0
    ct_temperature: float = 0.02
    kl_temperature: float = 0.01
    zs_temperature: float = 2.0
    sinkhorn_iters: int = 50

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value >= 0 or (name.endswith("temperature") and not value > 0):
                raise SpklipError(f"loss setting {name} = {value} must be >= 0 (temperatures > 0)")
        if not (self.ct or self.kl or self.zs or self.pred):
            raise SpklipError("every loss weight is 0; give at least one of ct, kl, zs, pred")


def distill_loss(
    student: torch.Tensor,
    image: torch.Tensor,
    class_text: torch.Tensor,
    labels: torch.Tensor,
    logit_scale: torch.Tensor | float,
    weights: LossWeights,
    zs_class_text: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Normalised student (B, D), teacher image (B, D) features, class_text (C, D) of the
    training classes, labels (B,) rows of class_text -> {"loss", and each weighted-in part
    "ct", "kl", "zs", "pred" (unweighted values, detached)}. ``zs_class_text`` (C', D): the
    prompts L_zs scores against (default ``class_text``); giving every class the teacher
    knows, held-out ones included, lets L_zs carry the teacher's image-vs-unseen-class
    similarities (text only: no sample of those classes is used)."""
    parts: dict[str, torch.Tensor] = {}
    total = student.new_zeros(())
    if weights.ct:
        parts["ct"] = contrastive_loss(student, image, weights.ct_temperature)
        total = total + weights.ct * parts["ct"]
    if weights.kl:
        parts["kl"] = similarity_kl_loss(
            student, image, weights.kl_temperature, weights.sinkhorn_iters
        )
        total = total + weights.kl * parts["kl"]
    if weights.zs:
        zs_text = class_text if zs_class_text is None else zs_class_text
        parts["zs"] = zero_shot_distill_loss(
            student, image, zs_text, logit_scale, weights.zs_temperature
        )
        total = total + weights.zs * parts["zs"]
    if weights.pred:
        parts["pred"] = prediction_loss(student, class_text, labels)
        total = total + weights.pred * parts["pred"]
    out = {k: v.detach() for k, v in parts.items()}
    out["loss"] = total
    return out
