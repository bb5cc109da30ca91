"""Modality dropout (``spklip.training.av.drop_modality``, ``AVTrainConfig.modality_dropout``):
a dropped sample has exactly one stream zeroed and the other untouched, none at p = 0, the
draws are seeded and the shares follow p; train_av applies it to models that read both
streams (their weights change) and ignores it for a one-modality model (identical run); a
bad probability is a one-line SpklipError; the CLI option is shared by av-train and
av-experiment."""

from __future__ import annotations

import pytest
import torch

from spklip.av_data import make_synthetic_av
from spklip.errors import SpklipError
from spklip.scmrl import create_scmrl
from spklip.training.av import (
    DROPPED_AUDIO,
    DROPPED_NONE,
    DROPPED_VISION,
    AVTrainConfig,
    drop_modality,
    train_av,
)
from tests.spklip.training.test_scmrl import MINI


def _batch(b: int = 400, dtype=torch.uint8):
    # every sample has spikes in both streams, so a zeroed stream is visible
    g = torch.Generator().manual_seed(3)
    vision = (torch.rand((b, 4, 1, 16, 16), generator=g) < 0.3).to(dtype)
    audio = (torch.rand((b, 4, 3, 8, 8), generator=g) < 0.3).to(dtype)
    return vision, audio


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_a_dropped_sample_loses_exactly_one_stream(dtype):
    vision, audio = _batch(dtype=dtype)
    v0, a0 = vision.clone(), audio.clone()
    v, a, dropped = drop_modality(vision, audio, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(vision, v0) and torch.equal(audio, a0)  # inputs unchanged
    assert v.dtype == dtype and a.shape == audio.shape and dropped.shape == (len(vision),)
    v_zero = v.flatten(1).sum(1) == 0
    a_zero = a.flatten(1).sum(1) == 0
    v_same = (v == vision).flatten(1).all(1)
    a_same = (a == audio).flatten(1).all(1)
    none, dv, da = (dropped == k for k in (DROPPED_NONE, DROPPED_VISION, DROPPED_AUDIO))
    assert torch.all(none | dv | da)
    assert torch.all(v_zero == dv) and torch.all(a_zero == da)  # never both, never spurious
    assert torch.all(v_same[~dv]) and torch.all(a_same[~da])  # the kept stream untouched
    assert 0.4 < float((~none).float().mean()) < 0.6  # about p of the samples
    assert 0.35 < float(dv.sum()) / float((~none).sum()) < 0.65  # vision or audio, evenly


def test_no_drop_at_p_zero_and_draws_are_seeded():
    vision, audio = _batch()
    v, a, dropped = drop_modality(vision, audio, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(v, vision) and torch.equal(a, audio)
    assert torch.all(dropped == DROPPED_NONE)
    runs = [drop_modality(vision, audio, 0.3, torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(runs[0][2], runs[1][2]) and torch.equal(runs[0][0], runs[1][0])
    assert not torch.equal(runs[0][2], runs[2][2])
    share = float((runs[0][2] != DROPPED_NONE).float().mean())
    assert 0.2 < share < 0.4


def test_bad_probability_or_batches_are_one_line_errors():
    vision, audio = _batch(8)
    g = torch.Generator().manual_seed(0)
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(SpklipError, match="probability") as err:
            drop_modality(vision, audio, p, g)
        assert "\n" not in str(err.value)
        with pytest.raises(SpklipError, match="modality_dropout"):
            AVTrainConfig(modality_dropout=p)
    with pytest.raises(SpklipError, match="samples"):
        drop_modality(vision, audio[:4], 0.2, g)


def _trained(fusion: str, p: float) -> dict[str, torch.Tensor]:
    data = make_synthetic_av(48, vision_size=(16, 16), audio_size=(8, 8), seed=0)
    torch.manual_seed(0)
    model = create_scmrl("scmrl-tiny", **MINI, audio_channels=1, fusion=fusion)
    cfg = AVTrainConfig(epochs=1, batch_size=16, lr=3e-3, modality_dropout=p, select_best=False)
    history = train_av(model, data, config=cfg)
    assert len(history) == 1
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("fusion", ["scmrl", "add"])
def test_train_av_applies_it_to_fused_models_only(fusion):
    base = _trained(fusion, 0.0)
    assert _same(base, _trained(fusion, 0.0))  # a run is seeded
    assert not _same(base, _trained(fusion, 0.5))  # the dropped streams change the training
    audio_only = _trained("audio", 0.0)
    assert _same(audio_only, _trained("audio", 0.5))  # one stream: nothing to drop


def test_cli_option_is_shared_by_av_train_and_av_experiment():
    from cli.commands_av import av_experiment, av_train

    for command in (av_experiment, av_train):
        option = next(p for p in command.params if p.name == "modality_dropout")
        assert option.default == 0.0 and "--modality-dropout" in option.opts
