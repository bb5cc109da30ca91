"""The event-CLIP losses against slow references, log-domain Sinkhorn, and the frozen teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spklip.errors import SpklipError
from spklip.eventclip import (
    GlyphCNN,
    ImageTextTeacher,
    LossWeights,
    contrastive_loss,
    distill_loss,
    log_sinkhorn,
    prediction_loss,
    similarity_kl_loss,
    student_from_teacher,
    zero_shot_distill_loss,
)
from spklip.text import TextConfig, build_text_encoder, default_tokenizer

from . import naive_eventclip as naive


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def test_log_sinkhorn_equals_plain_at_a_safe_temperature() -> None:
    s = _unit(7, 5, 0) @ _unit(7, 5, 1).T
    got = log_sinkhorn(s, 0.5, iters=30).exp().numpy()
    want = naive.plain_sinkhorn(s.numpy(), 0.5, 30)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    rect = log_sinkhorn(s[:, :4], 0.3, iters=200).exp().numpy()
    np.testing.assert_allclose(rect.sum(axis=0), 7 / 4, atol=1e-6)


def test_log_sinkhorn_stays_finite_where_the_plain_form_overflows() -> None:
    v = _unit(16, 8, 2).float()
    s = v @ v.T  # diagonal 1.0: exp(1 / 0.01) = e^100 overflows float32
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.exp(s.numpy() / np.float32(0.01))).all()
    p = log_sinkhorn(s, 0.01, iters=50)
    assert p.dtype == torch.float32 and torch.isfinite(p).all()
    np.testing.assert_allclose(p.exp().sum(dim=1).numpy(), 1.0, atol=1e-5)
    loss = similarity_kl_loss(_unit(16, 8, 3).float(), v, temperature=0.01)
    assert torch.isfinite(loss)
    with pytest.raises(SpklipError, match="temperature"):
        log_sinkhorn(s, 0.0)


def test_each_loss_equals_its_slow_reference() -> None:
    s, v, text = _unit(6, 8, 4), _unit(6, 8, 5), _unit(4, 8, 6)
    labels = torch.tensor([0, 1, 2, 3, 1, 0])
    assert contrastive_loss(s, v, 0.02).item() == pytest.approx(
        naive.contrastive(s.numpy(), v.numpy(), 0.02), rel=1e-9
    )
    assert similarity_kl_loss(s, v, 0.1, iters=40).item() == pytest.approx(
        naive.similarity_kl(s.numpy(), v.numpy(), 0.1, 40), rel=1e-7
    )
    assert zero_shot_distill_loss(s, v, text, 14.0, 2.0).item() == pytest.approx(
        naive.zero_shot_kl(s.numpy(), v.numpy(), text.numpy(), 14.0, 2.0), rel=1e-9
    )
    assert prediction_loss(s, text, labels).item() == pytest.approx(
        naive.prediction(s.numpy(), text.numpy(), labels.numpy()), rel=1e-9
    )
    w = LossWeights(ct=1.0, kl=0.5, zs=0.1, pred=2.0, kl_temperature=0.1, sinkhorn_iters=40)
    parts = distill_loss(s, v, text, labels, 14.0, w)
    want = parts["ct"] + 0.5 * parts["kl"] + 0.1 * parts["zs"] + 2.0 * parts["pred"]
    assert parts["loss"].item() == pytest.approx(want.item(), rel=1e-12)
    # L_zs against other prompts (e.g. the held-out classes' too) scores those, L_pred not.
    more = _unit(7, 8, 7)
    wider = distill_loss(s, v, text, labels, 14.0, w, zs_class_text=more)
    assert wider["zs"].item() == pytest.approx(
        naive.zero_shot_kl(s.numpy(), v.numpy(), more.numpy(), 14.0, 2.0), rel=1e-9
    )
    assert wider["pred"].item() == parts["pred"].item() and wider["zs"] != parts["zs"]
    # A student equal to the teacher's images: L_zs vanishes.
    assert zero_shot_distill_loss(v, v, text, 14.0).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(SpklipError, match="every loss weight is 0"):
        LossWeights(ct=0, kl=0, zs=0, pred=0)


def _teacher() -> ImageTextTeacher:
    cfg = TextConfig(context_length=32, width=32, heads=2, layers=1)
    torch.manual_seed(0)
    return ImageTextTeacher(
        GlyphCNN(16, 8), build_text_encoder(cfg, 16), default_tokenizer(cfg), 32
    )


def test_student_starts_equal_to_teacher_and_teacher_gets_no_gradient() -> None:
    teacher = _teacher()
    teacher.set_class_text([["a b"], ["c d"], ["e f"]])
    teacher.freeze()
    student = student_from_teacher(teacher)
    x = torch.rand(5, 32, 32)
    assert torch.equal(student(x), teacher.image_encoder(x))
    assert all(p.requires_grad for p in student.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    s = F.normalize(student(x), dim=1)
    v = teacher.encode_image(torch.rand(5, 32, 32))
    parts = distill_loss(
        s,
        v,
        teacher.class_text,
        torch.tensor([0, 1, 2, 0, 1]),
        teacher.logit_scale,
        LossWeights(pred=1.0),
    )
    parts["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.parameters())
    with pytest.raises(SpklipError, match="GlyphCNN input"):
        student(torch.rand(2, 3, 8, 8))


def test_teacher_logit_scale_fixed_or_learned() -> None:
    teacher = _teacher()
    assert teacher.logit_scale.item() == pytest.approx(1 / 0.07) and teacher.log_scale.requires_grad
    teacher.set_logit_scale(50.0)
    assert teacher.logit_scale.item() == pytest.approx(50.0)
    assert not teacher.log_scale.requires_grad
    teacher.set_logit_scale(None)
    assert teacher.logit_scale.item() == pytest.approx(1 / 0.07) and teacher.log_scale.requires_grad
    for bad in (0.0, -1.0, 101.0, float("nan")):
        with pytest.raises(SpklipError, match=r"^fixed logit scale must be in \(0, 100\]") as e:
            teacher.set_logit_scale(bad)
        assert "\n" not in str(e.value)
