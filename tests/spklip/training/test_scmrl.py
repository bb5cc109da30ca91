"""S-CMRL: every fusion mode gives the right shapes; the neurons are the specified LIF; CCSSA's
softmax-free attention equals an einsum reference and combines its branches by the product of
their firing rates; L_SA equals a loop over the formula; no state leaks between batches; on a
synthetic set whose class is carried by the sound for some samples and by the picture for
others, S-CMRL learns, a shuffled-label run stays at chance and a one-modality baseline is
clearly worse; the measurements and the experiment runner work end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spklip.av_data import (
    audio_to_steps,
    make_synthetic_av,
    split_train_val,
    synthetic_audio_at_snr,
    time_major,
    vision_to_steps,
)
from spklip.errors import SpklipError
from spklip.evaluation.av import (
    binary_activation_share,
    estimate_av_energy,
    evaluate_av,
    noise_robustness,
    results_markdown,
)
from spklip.evaluation.figures import plot_noise_curve
from spklip.scmrl import (
    FUSIONS,
    SCMRL,
    create_scmrl,
    get_scmrl_config,
    list_scmrl_configs,
    spatial_attention,
    temporal_attention,
)
from spklip.scmrl_loss import SCMRLLossConfig, scmrl_loss, semantic_alignment_loss
from spklip.training.av import AVTrainConfig, run_av_experiment, train_av

# Small enough for a fast test: 16x16 frames, 8 bands x 8 frames per step, one stage to 4x4.
MINI = dict(
    num_classes=4,
    steps=4,
    vision_channels=1,
    vision_size=(16, 16),
    audio_size=(8, 8),
    dim=16,
    stages=1,
    token_grid=(4, 4),
    heads=2,
    mlp_ratio=2.0,
)


def mini(**overrides) -> SCMRL:
    return create_scmrl("scmrl-tiny", **{**MINI, **overrides})


def spikes(shape, rate=0.2, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < rate).float()


def batch_for(model: SCMRL, b: int = 3, seed: int = 0):
    c = model.config
    v = spikes((c.steps, b, c.vision_channels, *c.vision_size), seed=seed)
    a = spikes((c.steps, b, 1, *c.audio_size), seed=seed + 1)
    return v, a


@pytest.mark.parametrize("fusion", FUSIONS)
def test_each_fusion_gives_logits_and_rates_of_the_right_shape(fusion):
    torch.manual_seed(0)
    model = mini(fusion=fusion)
    v, a = batch_for(model)
    out = model(v, a)
    assert out.logits.shape == (3, 4)
    if fusion == "scmrl":
        assert out.audio_rates.shape == out.vision_rates.shape == (3, 16)
        assert ((out.audio_rates >= 0) & (out.audio_rates <= 1)).all()
    else:
        assert out.audio_rates is None and out.vision_rates is None
    out.logits.sum().backward()  # differentiable through the surrogate
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    if fusion in ("audio", "vision"):  # a unimodal model needs only its own stream
        other = {"audio": (None, a), "vision": (v, None)}[fusion]
        assert model(*other).logits.shape == (3, 4)


@pytest.mark.parametrize("name", ["scmrl-tiny", "scmrl-paper"])
def test_named_configs_build_and_run_a_forward_pass(name):
    assert name in list_scmrl_configs()
    model = create_scmrl(name)
    v, a = batch_for(model, b=1)
    with torch.no_grad():
        out = model(v, a)
    assert out.logits.shape == (1, model.config.num_classes)
    assert torch.isfinite(out.logits).all()


def test_paper_config_has_the_paper_sizes():
    c = get_scmrl_config("scmrl-paper")
    assert (c.steps, c.dim, c.heads, c.mlp_ratio, c.alpha, c.fusion) == (
        4,
        256,
        16,
        4.0,
        1.5,
        "scmrl",
    )


def test_lif_neurons_are_as_specified():
    from spikingjelly.activation_based import neuron, surrogate

    model = mini()
    lifs = [m for m in model.modules() if isinstance(m, neuron.BaseNode)]
    assert len(lifs) > 20
    for m in lifs:
        assert isinstance(m, neuron.LIFNode)
        assert m.tau == 2.0 and m.v_threshold == 1.0 and m.v_reset == 0.0  # hard reset
        assert m.step_mode == "m"
        assert isinstance(m.surrogate_function, surrogate.Sigmoid)
        assert m.surrogate_function.alpha == 4.0
    assert len({id(m.surrogate_function) for m in lifs}) == len(lifs)  # none shared


def test_bad_inputs_and_configs_raise_one_line_errors():
    model = mini()
    v, a = batch_for(model)
    with pytest.raises(SpklipError, match="audio spikes have shape"):
        model(v, a[:3])  # wrong T
    with pytest.raises(SpklipError, match="vision spikes have shape"):
        model(v.transpose(0, 1), a)
    with pytest.raises(SpklipError, match="fusion"):
        get_scmrl_config("scmrl-tiny", fusion="late")
    with pytest.raises(SpklipError, match="token_grid"):
        get_scmrl_config("scmrl-tiny", token_grid=(16, 16))
    with pytest.raises(SpklipError, match="unknown S-CMRL setting"):
        get_scmrl_config("scmrl-tiny", width=3)
    with pytest.raises(SpklipError, match="unknown S-CMRL config"):
        create_scmrl("scmrl-huge")


def _naive_spatial(q, k, v, heads, scale):
    t, b, n, d = q.shape
    dh = d // heads
    out = torch.zeros(t, b, n, d, dtype=torch.float64)
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        scores = torch.einsum("tbnc,tbmc->tbnm", q[..., sl].double(), k[..., sl].double())
        out[..., sl] = torch.einsum("tbnm,tbme->tbne", scores, v[..., sl].double()) * scale
    return out


def _naive_temporal(q, k, v, heads, scale):
    t, b, n, d = q.shape
    dh = d // heads
    out = torch.zeros(t, b, n, d, dtype=torch.float64)
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        scores = torch.einsum("tbnc,sbnc->bnts", q[..., sl].double(), k[..., sl].double())
        out[..., sl] = torch.einsum("bnts,sbne->tbne", scores, v[..., sl].double()) * scale
    return out


@pytest.mark.parametrize("heads", [1, 4])
def test_softmax_free_attention_equals_einsum_reference(heads):
    q, k, v = (spikes((3, 2, 5, 8), 0.4, seed=s) for s in range(3))
    got = spatial_attention(q, k, v, heads, 0.25)
    torch.testing.assert_close(got.double(), _naive_spatial(q, k, v, heads, 0.25))
    got = temporal_attention(q, k, v, heads, 0.25)
    torch.testing.assert_close(got.double(), _naive_temporal(q, k, v, heads, 0.25))
    # no softmax: the output is linear in V (a softmax would not be in Q)
    torch.testing.assert_close(
        spatial_attention(q, k, 3 * v, heads, 1.0), 3 * spatial_attention(q, k, v, heads, 1.0)
    )
    torch.testing.assert_close(
        temporal_attention(2 * q, k, v, heads, 1.0), 2 * temporal_attention(q, k, v, heads, 1.0)
    )


def test_ccssa_is_the_product_of_the_branch_firing_rates():
    model = mini()
    ccssa = model.audio_cross.attention
    seen = {}
    ccssa.spatial.register_forward_hook(lambda m, i, o: seen.__setitem__("spatial", o))
    ccssa.temporal.register_forward_hook(lambda m, i, o: seen.__setitem__("temporal", o))
    ccssa.register_forward_hook(lambda m, i, o: seen.__setitem__("out", o))
    model.train()
    model(*batch_for(model))
    s, t = seen["spatial"], seen["temporal"]
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0} and set(torch.unique(t).tolist()) <= {
        0.0,
        1.0,
    }
    assert s.sum() > 0 and t.sum() > 0  # the test means something
    expected = s.mean(dim=2, keepdim=True) * t.mean(dim=0, keepdim=True)
    torch.testing.assert_close(seen["out"], expected)


def _naive_sa(a, v, y, tau):
    b = len(y)
    total = 0.0
    for i in range(b):
        logits = [float(a[i] @ v[j]) / tau for j in range(b)]
        m = max(logits)
        log_z = m + math.log(sum(math.exp(x - m) for x in logits))
        total += sum(-(logits[j] - log_z) for j in range(b) if y[i] == y[j]) / b
    return total / b


@pytest.mark.parametrize("normalize", [False, True])
def test_semantic_alignment_loss_equals_the_formula(normalize):
    g = torch.Generator().manual_seed(3)
    a, v = (
        torch.rand(6, 5, generator=g, dtype=torch.float64),
        torch.rand(6, 5, generator=g, dtype=torch.float64),
    )
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    got = semantic_alignment_loss(a, v, y, temperature=0.07, normalize=normalize)
    if normalize:
        a, v = a / a.norm(dim=1, keepdim=True), v / v.norm(dim=1, keepdim=True)
    assert float(got) == pytest.approx(_naive_sa(a, v, y.tolist(), 0.07), rel=1e-9)


def test_loss_parts_and_ablation_switch():
    model = mini()
    out = model(*batch_for(model))
    y = torch.tensor([0, 1, 0])
    parts = scmrl_loss(out, y)
    assert float(parts["sa"].detach()) > 0
    torch.testing.assert_close(parts["loss"], parts["ce"] + parts["sa"])
    no_sa = scmrl_loss(out, y, SCMRLLossConfig(sa_weight=0.0))
    assert float(no_sa["sa"]) == 0 and torch.equal(no_sa["loss"], no_sa["ce"])
    with pytest.raises(SpklipError):
        semantic_alignment_loss(out.audio_rates, out.vision_rates[:2], y)


def test_residual_switch_changes_the_output():
    torch.manual_seed(0)
    with_res = mini()
    torch.manual_seed(0)
    without = mini(residual=False)
    without.load_state_dict(with_res.state_dict())  # same weights, only the switch differs
    v, a = batch_for(with_res)
    with torch.no_grad():  # train mode: batch statistics, so the untrained branches fire
        res_out, plain_out = with_res(v, a), without(v, a)
    assert res_out.audio_rates.sum() > 0
    torch.testing.assert_close(res_out.audio_rates, plain_out.audio_rates)  # same x_res
    assert not torch.allclose(res_out.logits, plain_out.logits)


def test_state_is_reset_between_batches():
    from spikingjelly.activation_based import neuron

    model = mini().eval()
    first, second = batch_for(model, seed=0), batch_for(model, seed=5)
    with torch.no_grad():
        alone = model(*second).logits
        model(*first)
        after = model(*second).logits
    torch.testing.assert_close(alone, after, rtol=0, atol=0)
    for m in model.modules():
        if isinstance(m, neuron.BaseNode):
            assert not isinstance(m.v, torch.Tensor) or not m.v.any()


@pytest.fixture(scope="module")
def av_data():
    """scmrl-tiny's input sizes with T = 2: 360 train, 120 validation, 160 test samples."""
    full = make_synthetic_av(480, steps=2, seed=0)
    train, val = split_train_val(full, 0.25, seed=0)
    test = make_synthetic_av(160, steps=2, seed=1)
    return train, val, test


def tiny(**overrides) -> SCMRL:
    return create_scmrl("scmrl-tiny", steps=2, **overrides)


def test_synthetic_set_is_seeded_and_has_disjoint_degraded_shares():
    a = make_synthetic_av(60, vision_size=(16, 16), audio_size=(8, 8), seed=4)
    b = make_synthetic_av(60, vision_size=(16, 16), audio_size=(8, 8), seed=4)
    assert torch.equal(a.vision, b.vision) and torch.equal(a.audio, b.audio)
    assert a.vision.dtype == torch.uint8 and a.audio.shape == (60, 4, 1, 8, 8)
    assert np.bincount(a.labels.numpy()).tolist() == [15] * 4
    n1 = synthetic_audio_at_snr(a.audio_power, 0.0, seed=1)
    assert np.array_equal(n1, synthetic_audio_at_snr(a.audio_power, 0.0, seed=1))
    assert n1.mean() > synthetic_audio_at_snr(a.audio_power, 30.0, seed=1).mean()  # noise fires


def _train(model, train, val, shuffle_labels=False):
    if shuffle_labels:
        perm = np.random.default_rng(0).permutation(len(train))
        train = train.__class__(train.vision, train.audio, train.labels[perm], train.classes)
    cfg = AVTrainConfig(epochs=5, batch_size=32, lr=3e-3)
    return train_av(model, train, val_set=val, config=cfg)


def test_scmrl_learns_fusion_and_beats_one_modality_shuffled_labels_stay_at_chance(av_data):
    train, val, test = av_data
    torch.manual_seed(0)
    fused = tiny()
    rows = _train(fused, train, val)
    assert sum(r.get("best", False) for r in rows) == 1 and rows[-1]["sa"] > 0
    fused_top1 = evaluate_av(fused, test)["top1"]
    torch.manual_seed(0)
    audio_only = tiny(fusion="audio")
    _train(audio_only, train, val)
    audio_top1 = evaluate_av(audio_only, test)["top1"]
    torch.manual_seed(0)
    shuffled = tiny()
    _train(shuffled, train, None, shuffle_labels=True)
    shuffled_top1 = evaluate_av(shuffled, test)["top1"]
    assert fused_top1 >= 0.8, (fused_top1, audio_top1, shuffled_top1)
    assert audio_top1 <= fused_top1 - 0.1  # a third of the sounds carry no class
    assert shuffled_top1 <= 0.4  # chance is 0.25


def test_measurements_reuse_the_energy_counter():
    torch.manual_seed(0)
    model = mini()
    batch = batch_for(model, b=4)
    share = binary_activation_share(model, batch)
    assert 0.5 < share["inter_layer_binary_fraction"] <= 1.0
    assert share["binary_layers"] <= share["layers"]
    energy = estimate_av_energy(model, batch)
    assert energy["spiking"] and energy["clips"] == 4 and energy["time_steps"] == 4
    assert energy["sops"] > 0 and energy["neuron_updates"] > 0 and energy["total_J"] > 0
    assert energy["firing_rate"] is not None and 0 < energy["firing_rate"] < 1


def test_noise_curve_and_experiment_runner(tmp_path, av_data):
    train, val, test = av_data
    small_test = test.subset(range(24))
    torch.manual_seed(0)
    model = tiny()
    curve = noise_robustness(
        model, small_test, lambda s: synthetic_audio_at_snr(small_test.audio_power, s), (0, 30)
    )
    assert [p["snr_db"] for p in curve] == [0.0, 30.0]
    with pytest.raises(SpklipError, match="audio_at_snr"):
        noise_robustness(model, small_test, lambda s: np.zeros((3, 2, 1, 16, 16)), (0,))
    res = run_av_experiment(
        train.subset(range(32)),
        val.subset(range(8)),
        small_test,
        models=["scmrl", "audio-only"],
        seeds=(0, 1),
        epochs=1,
        audio_at_snr=lambda s: synthetic_audio_at_snr(small_test.audio_power, s),
        snrs=(0, 30),
    )
    assert set(res["variants"]) == {"scmrl", "audio-only"}
    e = res["variants"]["scmrl"]
    assert len(e["runs"]) == 2 and len(e["noise"]) == 2 and "energy" in e and "binary" in e
    assert "| scmrl |" in results_markdown(res)
    path = plot_noise_curve(res, tmp_path / "noise.png")
    assert path.stat().st_size > 1000 and not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(SpklipError, match="unknown variant"):
        run_av_experiment(train, val, test, models=["late-fusion"])


def test_time_major_and_split():
    data = make_synthetic_av(40, vision_size=(16, 16), audio_size=(8, 8), seed=2)
    train, val = split_train_val(data, 0.3, seed=0)
    assert len(train) + len(val) == 40 and len(val) == 12  # 3 of each class's 10
    assert time_major(train.vision[:5]).shape == (4, 5, 1, 16, 16)


class _PlainDataset(torch.utils.data.Dataset):
    """Any map-style dataset of (vision, audio, label) items, batched by a DataLoader."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]


def test_a_dataloader_dataset_gives_the_same_evaluation():
    data = make_synthetic_av(24, steps=2, seed=3)
    torch.manual_seed(0)
    model = tiny().eval()
    fast = evaluate_av(model, data, batch_size=8)
    plain = evaluate_av(model, _PlainDataset(data), batch_size=8, classes=data.classes)
    groups = fast.pop("per_group")  # a plain dataset has no groups
    assert fast == plain and fast["n"] == 24
    assert set(groups) == set(data.groups) == {"none", "video", "audio"}


def test_streams_are_binned_into_the_model_layouts():
    stream = np.zeros((10, 4, 6), dtype=np.uint8)  # 10 frames: steps of 3 from frame 0..8
    stream[1, 2, 3] = 1  # in step 0 (frames 0-2)
    stream[8, 0, 0] = 1  # in step 2 (frames 6-8); frame 9 is outside the window
    stream[9, 1, 1] = 1
    v = vision_to_steps(stream, 3)
    assert v.shape == (3, 1, 4, 6) and v.dtype == np.uint8
    assert v[0, 0, 2, 3] == 1 and v[2, 0, 0, 0] == 1 and v.sum() == 2
    assert vision_to_steps(np.zeros((8, 2, 4, 6)), 4).shape == (4, 2, 4, 6)
    framed = vision_to_steps(stream, 3, "frames")  # each step's 3 frames as channels
    assert framed.shape == (3, 3, 4, 6) and framed[0, 1, 2, 3] == 1 and framed[2, 2, 0, 0] == 1
    assert framed.sum() == 2 and set(np.unique(framed)) <= {0, 1}
    stream[2, 2, 3] = 1
    counts = vision_to_steps(stream, 3, "count")
    assert counts.shape == (3, 1, 4, 6) and counts[0, 0, 2, 3] == 2 and counts.sum() == 3
    # or-pair: each step's OR, then the previous step's OR (zeros before step 0)
    paired = vision_to_steps(stream, 3, "or-pair")
    ored = vision_to_steps(stream, 3, "or")
    assert paired.shape == (3, 2, 4, 6) and set(np.unique(paired)) <= {0, 1}
    np.testing.assert_array_equal(paired[:, :1], ored)
    np.testing.assert_array_equal(paired[1:, 1:], ored[:-1])
    assert paired[0, 1].sum() == 0
    events = np.zeros((8, 2, 4, 6), dtype=np.uint8)
    events[5, 1, 0, 0] = 1  # an OFF event in step 2 of 4
    pe = vision_to_steps(events, 4, "or-pair")
    assert pe.shape == (4, 4, 4, 6) and pe[2, 1, 0, 0] == 1 and pe[3, 3, 0, 0] == 1
    assert pe.sum() == 2
    with pytest.raises(SpklipError, match="binning"):
        vision_to_steps(stream, 3, "max")
    spec = np.zeros((9, 5), dtype=np.uint8)  # 9 frames x 5 mel channels
    spec[4, 2] = 1  # frame 4 = step 1, column 1
    a = audio_to_steps(spec, 3)
    assert a.shape == (3, 1, 5, 3) and a[1, 0, 2, 1] == 1 and a.sum() == 1
    kinds = np.zeros((9, 3, 5), dtype=np.uint8)  # 9 frames x (IF, ON, OFF) x 5 channels
    kinds[4, 1, 2] = 2  # two ON events: still one spike
    ak = audio_to_steps(kinds, 3)
    assert ak.shape == (3, 3, 5, 3) and ak[1, 1, 2, 1] == 1 and ak.sum() == 1
    with pytest.raises(SpklipError, match="expected"):
        audio_to_steps(np.zeros((9, 1, 3, 5)), 3)
    with pytest.raises(SpklipError, match="cannot fill"):
        audio_to_steps(spec, 10)
