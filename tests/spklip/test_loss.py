"""The contrastive loss against a slow, element-by-element recomputation of the full matrix."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spklip.errors import SpklipError
from spklip.loss import (
    LOSSES,
    ContrastiveLoss,
    contrastive_loss,
    contrastive_positives,
    contrastive_targets,
    loss_options,
    prompt_caption_loss,
    uses_caption_targets,
)


def slow_loss(video, text, scale, labels=None):
    """Symmetric InfoNCE, one scalar at a time: video i's positives are the texts j with the
    same label (only j == i without labels), weighted equally; and the same for texts."""
    n = video.shape[0]
    sim = [[scale * float(video[i] @ text[j]) for j in range(n)] for i in range(n)]

    def positives(i):
        if labels is None:
            return [i]
        return [j for j in range(n) if int(labels[j]) == int(labels[i])]

    def direction(score):
        total = 0.0
        for i in range(n):
            log_norm = math.log(sum(math.exp(score(i, k)) for k in range(n)))
            pos = positives(i)
            total += -sum(score(i, j) - log_norm for j in pos) / len(pos)
        return total / n

    v2t = direction(lambda i, j: sim[i][j])
    t2v = direction(lambda i, j: sim[j][i])
    return (v2t + t2v) / 2, v2t, t2v


def features(n=7, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    t = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    return v, t


@pytest.mark.parametrize("labels", [None, [0, 1, 0, 2, 1, 0, 3], [5, 5, 5, 5, 5, 5, 5]])
def test_matches_slow_full_matrix_recomputation(labels) -> None:
    v, t = features()
    lab = None if labels is None else torch.tensor(labels)
    out = contrastive_loss(v, t, 14.3, lab)
    loss, v2t, t2v = slow_loss(v, t, 14.3, lab)
    assert out["loss"].item() == pytest.approx(loss, rel=1e-9)
    assert out["loss_v2t"].item() == pytest.approx(v2t, rel=1e-9)
    assert out["loss_t2v"].item() == pytest.approx(t2v, rel=1e-9)
    assert out["logit_scale"].item() == pytest.approx(14.3)


def test_label_aware_off_is_plain_clip_loss() -> None:
    v, t = features()
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    plain = contrastive_loss(v, t, 10.0, labels, label_aware=False)
    assert plain["loss"].item() == pytest.approx(slow_loss(v, t, 10.0)[0], rel=1e-9)
    # distinct labels make label-aware targets the identity too
    distinct = contrastive_loss(v, t, 10.0, torch.arange(7))
    assert distinct["loss"].item() == pytest.approx(plain["loss"].item(), rel=1e-9)
    assert ContrastiveLoss(label_aware=False)(v, t, 10.0, labels)["loss"] == plain["loss"]


def test_targets_are_uniform_over_same_label_pairs() -> None:
    targets = contrastive_targets(torch.tensor([3, 1, 3, 3]), 4)
    third = 1 / 3
    expected = torch.tensor(
        [[third, 0, third, third], [0, 1, 0, 0], [third, 0, third, third], [third, 0, third, third]]
    )
    assert torch.allclose(targets, expected)
    assert torch.equal(contrastive_targets(None, 3), torch.eye(3))


def test_same_class_captions_are_not_negatives() -> None:
    # Videos 0 and 1 share a class and their captions are one embedding: perfect alignment
    # costs only the entropy of the targets, ln 2 on each of the class's rows.
    e = torch.eye(3, dtype=torch.float64)
    v = torch.stack([e[0], e[0], e[1], e[2]])
    labels = torch.tensor([0, 0, 1, 2])
    aware = contrastive_loss(v, v.clone(), 1e4, labels)
    assert aware["loss"].item() == pytest.approx(2 * math.log(2) / 4, abs=1e-6)


def test_captions_of_one_class_are_interchangeable() -> None:
    # Swapping which caption of a class goes with which clip changes nothing label-aware,
    # while CLIP's identity targets treat the other caption as a negative.
    v, t = features()
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    swapped = t[[2, 1, 0, 3, 4, 5, 6]]  # clips 0 and 2 exchange their class-0 captions
    assert contrastive_loss(v, swapped, 10.0, labels)["loss"].item() == pytest.approx(
        contrastive_loss(v, t, 10.0, labels)["loss"].item(), rel=1e-12
    )
    naive = contrastive_loss(v, t, 10.0, labels, label_aware=False)["loss"].item()
    naive_swapped = contrastive_loss(v, swapped, 10.0, labels, label_aware=False)["loss"]
    assert naive_swapped.item() != pytest.approx(naive, rel=1e-6)


def test_gradient_reaches_features_and_scale() -> None:
    v, t = features()
    v.requires_grad_(True)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    contrastive_loss(v, t, scale.exp(), torch.tensor([0, 1, 0, 2, 1, 0, 3]))["loss"].backward()
    assert v.grad is not None and scale.grad is not None and scale.grad.abs() > 0


def test_bad_shapes_are_user_errors() -> None:
    v, t = features()
    with pytest.raises(SpklipError, match="same shape"):
        contrastive_loss(v, t[:3], 1.0)
    with pytest.raises(SpklipError, match="labels"):
        contrastive_loss(v, t, 1.0, torch.zeros(3, dtype=torch.long))


def slow_eq6(video, text, scale):
    """The paper's Eq. 6 term by term: -1/B sum_i log softmax_j(s_ij)[i] over the texts plus the
    same over the videos (identity positives, the two directions added)."""
    n = video.shape[0]
    sim = [[scale * float(video[i] @ text[j]) for j in range(n)] for i in range(n)]
    v2t = -sum(sim[i][i] - math.log(sum(math.exp(sim[i][k]) for k in range(n))) for i in range(n))
    t2v = -sum(sim[i][i] - math.log(sum(math.exp(sim[k][i]) for k in range(n))) for i in range(n))
    return v2t / n + t2v / n


@pytest.mark.parametrize("labels", [None, [0, 1, 0, 2, 1, 0, 3]])
def test_eq6_is_the_sum_of_both_directions_with_identity_positives(labels) -> None:
    v, t = features(seed=3)
    lab = None if labels is None else torch.tensor(labels)
    out = contrastive_loss(v, t, 9.1, lab, **loss_options("eq6"))
    # labels are ignored by Eq. 6: a shared class does not make a second positive
    assert out["loss"].item() == pytest.approx(slow_eq6(v, t, 9.1), rel=1e-9)
    assert out["loss"].item() == pytest.approx((out["loss_v2t"] + out["loss_t2v"]).item())
    module = ContrastiveLoss(**LOSSES["eq6"])
    assert module(v, t, 9.1, lab)["loss"].item() == pytest.approx(slow_eq6(v, t, 9.1), rel=1e-9)
    assert "reduction='sum'" in repr(module)


def test_label_aware_loss_is_the_mean_with_label_targets() -> None:
    v, t = features(seed=4)
    lab = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    out = contrastive_loss(v, t, 9.1, lab, **loss_options("label-aware"))
    assert out["loss"].item() == pytest.approx(slow_loss(v, t, 9.1, lab)[0], rel=1e-9)


def test_unknown_loss_or_reduction_is_a_user_error() -> None:
    v, t = features()
    with pytest.raises(SpklipError, match="reduction"):
        contrastive_loss(v, t, 1.0, reduction="max")
    with pytest.raises(SpklipError, match="unknown loss"):
        loss_options("triplet")
    with pytest.raises(SpklipError, match="reduction"):
        ContrastiveLoss(reduction="none")


def slow_caption_aware(video, text, scale, labels, captions):
    """The caption-aware loss one scalar at a time: for video i, text j is right when j == i
    or when j is a class prompt (not a caption) of i's class; for text j, video i is right
    under the same rule. Each direction averages over its right answers, then over the batch;
    the two directions are averaged."""
    n = video.shape[0]
    sim = [[scale * float(video[i] @ text[j]) for j in range(n)] for i in range(n)]

    def right(i, j):  # video i, text j
        return i == j or (int(labels[i]) == int(labels[j]) and not bool(captions[j]))

    v2t = t2v = 0.0
    for i in range(n):
        norm = math.log(sum(math.exp(sim[i][k]) for k in range(n)))
        pos = [j for j in range(n) if right(i, j)]
        v2t += -sum(sim[i][j] - norm for j in pos) / len(pos)
    for j in range(n):
        norm = math.log(sum(math.exp(sim[k][j]) for k in range(n)))
        pos = [i for i in range(n) if right(i, j)]
        t2v += -sum(sim[i][j] - norm for i in pos) / len(pos)
    return (v2t / n + t2v / n) / 2


def test_caption_aware_loss_makes_a_caption_right_for_its_clip_alone() -> None:
    v, t = features(seed=5)
    lab = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    caps = torch.tensor([True, False, False, True, True, False, False])
    opts = loss_options("caption-aware")
    assert uses_caption_targets("caption-aware") and not uses_caption_targets("label-aware")
    out = contrastive_loss(v, t, 9.1, lab, **opts, instance=caps)
    assert out["loss"].item() == pytest.approx(slow_caption_aware(v, t, 9.1, lab, caps), rel=1e-9)
    # no captions: label-aware; all captions: CLIP's identity targets, averaged
    none = contrastive_loss(v, t, 9.1, lab, **opts, instance=torch.zeros(7, dtype=torch.bool))
    assert none["loss"].item() == pytest.approx(slow_loss(v, t, 9.1, lab)[0], rel=1e-9)
    every = contrastive_loss(v, t, 9.1, lab, **opts, instance=torch.ones(7, dtype=torch.bool))
    assert every["loss"].item() == pytest.approx(slow_eq6(v, t, 9.1) / 2, rel=1e-9)
    # Another clip's caption of the same class is a negative: swapping the captions of
    # clips 0 and 2 (both class 0, both texts flagged as captions) changes the loss.
    caps0 = torch.tensor([True, False, True, False, False, False, False])
    swapped = t[[2, 1, 0, 3, 4, 5, 6]]
    a = contrastive_loss(v, t, 9.1, lab, **opts, instance=caps0)["loss"].item()
    b = contrastive_loss(v, swapped, 9.1, lab, **opts, instance=caps0)["loss"].item()
    assert a != pytest.approx(b, rel=1e-6)
    pos = contrastive_positives(lab, caps0)
    assert pos[0, 2] == 0 and pos[2, 0] == 0 and pos[0, 1] == 0 and pos.diagonal().all()
    with pytest.raises(SpklipError, match="instance flags"):
        contrastive_positives(lab, caps[:3])


def test_prompt_caption_loss_adds_a_weighted_identity_term_over_captions() -> None:
    v, prompts = features(seed=6)
    _, caps = features(seed=7)
    lab = torch.tensor([0, 1, 0, 2, 1, 0, 3])
    for w in (0.0, 1.0, 2.5):
        out = prompt_caption_loss(v, prompts, caps, 9.1, lab, caption_weight=w)
        want = slow_loss(v, prompts, 9.1, lab)[0] + w * slow_eq6(v, caps, 9.1) / 2
        assert out["loss"].item() == pytest.approx(want, rel=1e-9)
        assert out["loss_caption"].item() == pytest.approx(slow_eq6(v, caps, 9.1) / 2, rel=1e-9)
    # Captions of one class are not interchangeable (unlike prompts): swapping two changes it.
    swapped = caps[[2, 1, 0, 3, 4, 5, 6]]
    a = prompt_caption_loss(v, prompts, caps, 9.1, lab)["loss"].item()
    assert prompt_caption_loss(v, prompts, swapped, 9.1, lab)["loss"].item() != pytest.approx(a)
    with pytest.raises(SpklipError, match="caption_weight"):
        prompt_caption_loss(v, prompts, caps, 9.1, lab, caption_weight=-1.0)
