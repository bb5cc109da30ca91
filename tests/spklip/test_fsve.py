"""FSVE: LIF neurons and the rectangular surrogate agree with a hand-written reference; the
encoder reads the clip as a few time steps, is spiking throughout, learns through its
surrogates, tells a clip from its reverse, and says how to install SpikingJelly when absent."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from spklip import fsve
from spklip.errors import SpklipError
from spklip.evaluation.energy import binary_activation_fraction, estimate_energy
from spklip.factory import create_model, get_model_config, list_models
from spklip.fsve import FSVEConfig, is_spiking_neuron, lif_layer
from spklip.model import SPKLIP

from .naive_snn import (
    calibrate_batchnorm,
    lif_autograd_reference,
    lif_reference,
    rect_surrogate_grad,
    spike_driven_attention_reference,
    threshold_spike_reference,
)

TINY = "spklip-fsve-tiny"


def brightening_clip(batch: int = 2, frames: int = 250, size=(48, 64), seed: int = 0):
    """A scene that brightens over time and from left to right: firing rates rise over the
    clip, so the clip and its reverse really differ."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.02, 0.6, frames).view(-1, 1, 1)
    x = torch.linspace(0.2, 1.0, size[1]).view(1, 1, -1)
    rate = (t * x).expand(frames, *size)
    return torch.rand(batch, *rate.shape, generator=g) < rate


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    return brightening_clip()


@pytest.fixture(scope="module")
def tiny(clip: torch.Tensor) -> SPKLIP:
    """spklip-fsve-tiny with the BatchNorm statistics of the clip (as after training)."""
    model = create_model(TINY, seed=0)
    calibrate_batchnorm(model, torch.cat([clip, clip.flip(1)]))
    return model.eval()


def run_lif(config: FSVEConfig, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and the final membrane potential of a fresh FSVE neuron layer on x (T, N)."""
    node = lif_layer(config)
    spikes = node(x)
    return spikes, node.v


# --- the neuron -----------------------------------------------------------------------------


def test_lif_charges_fires_and_resets() -> None:
    # tau 2, no input decay: H = V - V/2 + 0.6 -> 0.6, 0.9, 1.05 (fires, back to 0), 0.6 ...
    config = FSVEConfig(tau=2.0, decay_input=False, v_threshold=1.0)
    spikes, v = run_lif(config, torch.full((7, 1), 0.6, dtype=torch.float64))
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert v.item() == pytest.approx(0.6)
    # with input decay the same current charges half as fast: H = V + (0.6 - V)/2 never fires
    spikes, v = run_lif(
        FSVEConfig(tau=2.0, decay_input=True), torch.full((7, 1), 0.6, dtype=torch.float64)
    )
    assert spikes.sum() == 0 and v.item() == pytest.approx(0.6 * (1 - 0.5**7))


@pytest.mark.parametrize("tau", [2.0, 4.0])
def test_lif_membrane_decays_with_tau(tau: float) -> None:
    x = torch.zeros(6, 1, dtype=torch.float64)
    x[0] = 0.8  # below threshold: no spike, then leak only
    spikes, v = run_lif(FSVEConfig(tau=tau), x)
    assert spikes.sum() == 0
    assert v.item() == pytest.approx(0.8 * (1 - 1 / tau) ** 5)


@pytest.mark.parametrize(
    ("tau", "decay_input", "v_threshold"),
    [(2.0, False, 1.0), (2.0, True, 1.0), (3.5, False, 0.5), (1.5, True, 0.7)],
)
def test_lif_matches_the_reference_on_random_input(tau, decay_input, v_threshold) -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.5, 2.0, size=(9, 300))
    config = FSVEConfig(tau=tau, decay_input=decay_input, v_threshold=v_threshold)
    node = lif_layer(config)
    spikes = node(torch.from_numpy(x)).numpy()
    want_spikes, want_v = lif_reference(
        x, tau=tau, v_threshold=v_threshold, decay_input=decay_input
    )
    assert 0.05 < spikes.mean() < 0.95  # the test sees firing and silence
    np.testing.assert_array_equal(spikes, want_spikes)
    np.testing.assert_allclose(node.v.numpy(), want_v[-1], atol=1e-12)


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_rect_surrogate_gradient_value_and_width(width: float) -> None:
    # one step from rest without input decay: H = x, so d spike / d x is the surrogate at x - V_th
    offsets = np.linspace(-1.0, 1.0, 81)
    offsets = offsets[~np.isclose(np.abs(offsets), width / 2)]  # not on the window's edge
    x = torch.tensor(1.0 + offsets).view(1, -1).requires_grad_(True)
    node = lif_layer(FSVEConfig(surrogate_width=width, decay_input=False, v_threshold=1.0))
    spikes = node(x)
    spikes.sum().backward()
    np.testing.assert_array_equal(spikes.detach().numpy()[0], (offsets >= 0).astype(float))
    np.testing.assert_allclose(x.grad.numpy()[0], rect_surrogate_grad(offsets, width))
    assert x.grad.max().item() == pytest.approx(1 / width)  # height 1/width: area 1
    assert (x.grad > 0).sum().item() == np.sum(np.abs(offsets) < width / 2)


@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("decay_input", [True, False])
def test_bptt_gradients_match_the_reference(detach_reset: bool, decay_input: bool) -> None:
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(6, 64, generator=g, dtype=torch.float64) * 2.5 - 0.5).requires_grad_(True)
    weights = torch.randn(6, 64, generator=g, dtype=torch.float64)
    config = FSVEConfig(
        tau=2.0, surrogate_width=0.8, decay_input=decay_input, detach_reset=detach_reset
    )
    (lif_layer(config)(x) * weights).sum().backward()
    got = x.grad.clone()
    x.grad = None
    want = lif_autograd_reference(
        x, tau=2.0, width=0.8, decay_input=decay_input, detach_reset=detach_reset
    )
    (want * weights).sum().backward()
    assert got.abs().sum() > 0
    torch.testing.assert_close(got, x.grad, rtol=1e-10, atol=1e-12)


# --- the encoder ----------------------------------------------------------------------------


def test_fsve_configs_are_registered_and_round_trip() -> None:
    assert {TINY, "spklip-fsve"} <= set(list_models())
    config = get_model_config(TINY)
    assert config.visual == "fsve" and config.fsve.steps == 5
    assert type(config).from_dict(config.to_dict()) == config
    assert get_model_config(TINY, **{"fsve.steps": 10}).fsve.resolved_frames_per_step(250) == 25
    assert get_model_config("spklip-tiny").visual == "ann"  # the default encoder is unchanged
    # defaults: the full size; the full encoder uses the paper's Eq. 9-11 attention (no mask)
    assert get_model_config("spklip-fsve").fsve == FSVEConfig(
        attention="eq9-11", temporal_causal=False
    )


def test_fsve_tiny_embeds_clips_as_unit_vectors(tiny: SPKLIP, clip: torch.Tensor) -> None:
    with torch.no_grad():
        video = tiny.encode_video(clip)
        again = tiny.encode_video(clip.to(torch.uint8))
    assert video.shape == (2, 128) and torch.isfinite(video).all()
    assert torch.allclose(video.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(again, video, atol=1e-6)  # bool and uint8 spikes alike
    assert not hasattr(tiny.visual, "hsfe")  # the FSVE replaces HSFE + STAR-Net
    neurons = [m for m in tiny.visual.modules() if is_spiking_neuron(m)]
    cfg = tiny.config.fsve
    # 2 per MS block, 2 in the spatial readout, 5 + 2 per attention + MLP block, 1 at the head
    assert cfg.readout == "spikes"  # (the membrane readout has none at the head)
    assert len(neurons) == 2 * sum(cfg.blocks) + 2 + 7 * cfg.temporal_layers + 1
    assert all(isinstance(n.v, float) for n in neurons)  # state reset after the forward


def test_init_gain_sets_the_initial_weight_scale() -> None:
    small = create_model(TINY, seed=0).visual.fsve
    unit = create_model(TINY, seed=0, **{"fsve.init_gain": 1.0}).visual.fsve
    for layer in (small.stem[0], small.stages[1][0].conv1, small.token):
        fan_in = layer.weight[0].numel()
        assert layer.weight.std().item() == pytest.approx(0.1 / fan_in**0.5, rel=0.2)
    assert unit.stages[1][0].conv1.weight.std().item() == pytest.approx(
        10 * small.stages[1][0].conv1.weight.std().item(), rel=0.2
    )


def test_mean_pool_init_starts_as_an_average_of_the_grid() -> None:
    model = create_model(TINY, seed=0, **{"fsve.pool_init": "mean"})
    encoder = model.visual.fsve
    assert torch.equal(encoder.pool.weight, torch.full_like(encoder.pool.weight, 1 / 12))
    assert encoder.grid == (3, 4)
    # a spike map's pooled value is its mean over the grid, wherever the spikes are
    spikes = torch.zeros(1, 1, 128, 3, 4)
    spikes[..., 0, 0] = 1
    moved = torch.zeros_like(spikes)
    moved[..., 2, 3] = 1
    assert torch.equal(encoder.pool(spikes), encoder.pool(moved))


def test_head_norm_centres_the_embeddings_of_a_batch(clip: torch.Tensor) -> None:
    model = create_model(TINY, seed=0, **{"fsve.head_norm": True}).train()
    both = torch.cat([clip, clip.flip(1)])
    out = model.visual(both)  # unnormalised embedding, BatchNorm in training mode
    assert out.shape == (4, 128)
    torch.testing.assert_close(out.mean(dim=0), torch.zeros(128), atol=1e-5, rtol=0)


def test_time_steps_are_groups_of_frames_centred_in_the_clip(clip: torch.Tensor) -> None:
    model = create_model(TINY, seed=0, **{"fsve.frames_per_step": 40})
    encoder = model.visual.fsve
    steps = encoder.to_steps(clip)
    assert steps.shape == (5, 2, 40, 48, 64) and steps.dtype == torch.float32
    assert encoder.offset == 25  # 200 of 250 frames, centred
    for s in range(5):
        start = 25 + 40 * s
        assert torch.equal(steps[s], clip[:, start : start + 40].float())


def test_batches_do_not_leak_state(tiny: SPKLIP, clip: torch.Tensor) -> None:
    with torch.no_grad():
        pair = tiny.encode_video(clip)
        first = tiny.encode_video(clip[:1])
        first_again = tiny.encode_video(clip[:1])
    assert torch.equal(first, first_again)
    assert torch.allclose(first[0], pair[0], atol=1e-5)


def test_a_clip_and_its_reverse_get_different_embeddings(tiny: SPKLIP, clip) -> None:
    with torch.no_grad():
        forward = tiny.encode_video(clip)
        backward = tiny.encode_video(clip.flip(1))
    assert (forward - backward).norm(dim=1).min() > 1e-2


def test_gradients_flow_through_the_surrogates(clip: torch.Tensor) -> None:
    model = create_model(TINY, seed=0).train()
    target = torch.randn(2, 128, generator=torch.Generator().manual_seed(0))
    (model.encode_video(clip) * target).sum().backward()
    visual = model.visual.fsve
    for name, p in visual.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # the stem sits behind every LIF layer of the network: only surrogates carry this gradient
    assert visual.stem[0].weight.grad.abs().sum() > 0
    assert visual.positional_embedding.grad.abs().sum() > 0


def test_interlayer_activations_are_spikes(tiny: SPKLIP, clip: torch.Tensor) -> None:
    found = binary_activation_fraction(tiny, clip)
    assert found["binary_activation_fraction"] == 1.0
    assert found["binary_layers"] == found["layers"] > 20
    assert found["real_valued_inputs"] == []
    # the membrane readout feeds real values into the final projection, and says so
    model = create_model(TINY, seed=0, **{"fsve.readout": "membrane"})
    calibrate_batchnorm(model, clip)
    found = binary_activation_fraction(model.eval(), clip)
    assert found["real_valued_inputs"] == ["fsve.head"]
    assert found["binary_layers"] == found["layers"] - 1
    assert 0.999 < found["binary_activation_fraction"] < 1.0


def test_spiking_layers_fire_at_moderate_rates(tiny: SPKLIP, clip: torch.Tensor) -> None:
    result = estimate_energy(tiny, clip)
    rates = {c["name"]: c["input_rate"] for c in result["per_layer"]}
    assert all(c["binary_input"] for c in result["per_layer"])
    assert rates["fsve.stem.0"] == pytest.approx(clip.float().mean().item(), rel=1e-6)
    assert all(0.0 < r < 0.6 for r in rates.values()), rates  # no dead or saturated layer


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"fsve.steps": 6, "fsve.frames_per_step": 50}, "6 steps of 50 frames need 300"),
        ({"fsve.readout": "mean"}, "spikes, membrane"),
        ({"fsve.tau": 1.0}, "must be > 1"),
        ({"fsve.init_gain": 0.0}, "fsve.init_gain must be > 0"),
        ({"fsve.pool_init": "max"}, "random, mean"),
        ({"fsve.temporal_heads": 3}, "does not divide fsve.dim 128"),
        ({"fsve.blocks": [1, 1]}, "one entry per stage"),
        ({"visual": "snn"}, "ann, fsve"),
    ],
)
def test_config_errors_are_one_line(overrides, match: str) -> None:
    with pytest.raises(SpklipError, match=match) as info:
        get_model_config(TINY, **overrides)
    assert "\n" not in str(info.value)


def test_without_spikingjelly_fsve_says_how_to_install_it(monkeypatch, clip) -> None:
    # None in sys.modules makes every import of that name fail, as if it were not installed
    for name in [n for n in sys.modules if n.split(".")[0] == "spikingjelly"] + ["spikingjelly"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(fsve, "_SJ", None)
    with pytest.raises(SpklipError) as info:
        create_model(TINY, seed=0)
    message = str(info.value)
    assert "\n" not in message
    assert "pip install spikingjelly --no-deps loguru" in message
    assert "pip install 'spikesim[fsve]'" in message
    # everything else works: the config, the ANN model, its energy estimate
    assert get_model_config(TINY).visual == "fsve"
    # (built for the clip's 250 raw frames, whatever spklip-tiny's default binning)
    ann = create_model("spklip-tiny", seed=0, frames=250, temporal_bin=1).eval()
    assert not any(is_spiking_neuron(m) for m in ann.modules())
    with torch.no_grad():
        assert ann.encode_video(clip).shape == (2, 128)
    assert estimate_energy(ann, clip[:1], include_layers=False)["sops"] == 0


# --- the paper's spike-driven attention (A.7, Eq. 9-11) and the hybrid (A.5) ----------------


def test_threshold_spike_matches_the_reference_and_moves_with_alpha() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 6, generator=g, dtype=torch.float64)
    for alpha in (0.5, 1.0, 1.7):
        got = fsve.threshold_spike(x, torch.tensor(alpha, dtype=torch.float64), batch_dim=1)
        assert np.array_equal(got.numpy(), threshold_spike_reference(x.numpy(), alpha, 1))
    # a silent input stays silent (0 > 0 is false), whatever alpha
    assert fsve.threshold_spike(torch.zeros(2, 3), torch.tensor(1.0), 0).sum() == 0
    # the surrogate reaches alpha: raising the threshold lowers the (surrogate) spike count
    alpha = torch.tensor(0.2, requires_grad=True)
    fsve.threshold_spike(torch.rand(5, 2, 8, generator=g), alpha, 1).sum().backward()
    assert alpha.grad is not None and alpha.grad < 0


def test_spike_driven_attention_equals_a_slow_reference_of_eq_9_to_11() -> None:
    cfg = FSVEConfig(
        dim=8, temporal_heads=2, attention="eq9-11", temporal_causal=False, init_gain=1.0
    )
    block = fsve.SpikeDrivenAttention(cfg).double().eval()
    g = torch.Generator().manual_seed(3)
    alphas = {"q": 0.8, "k": 1.1, "v": 0.9, "score": 0.7, "attn": 1.2}
    with torch.no_grad():
        for name, alpha in alphas.items():
            getattr(block, f"{name}_sn").alpha.fill_(alpha)
        bn = block.out_bn
        bn.weight.copy_(torch.rand(8, generator=g, dtype=torch.float64) + 0.5)
        bn.bias.copy_(torch.randn(8, generator=g, dtype=torch.float64))
        bn.running_mean.copy_(torch.randn(8, generator=g, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(8, generator=g, dtype=torch.float64) + 0.5)
    u = torch.randn(5, 3, 8, generator=g, dtype=torch.float64) * 2  # (S, B, dim)
    fsve.spikingjelly().functional.reset_net(block)
    seen = {}
    block.score_sn.register_forward_hook(lambda m, i, o: seen.setdefault("a", o))
    with torch.no_grad():
        got = block(u)
    expected = spike_driven_attention_reference(
        u.numpy(),
        wq=block.q.weight.detach().numpy(),
        wk=block.k.weight.detach().numpy(),
        wv=block.v.weight.detach().numpy(),
        wo=block.out.weight.detach().numpy(),
        alphas=alphas,
        heads=2,
        tau=cfg.tau,
        bn=(
            bn.weight.detach().numpy(),
            bn.bias.detach().numpy(),
            bn.running_mean.numpy(),
            bn.running_var.numpy(),
            bn.eps,
        ),
    )
    assert np.allclose(got.numpy(), expected, atol=1e-10)
    assert 0 < seen["a"].mean() < 1  # a non-trivial case: the spike map is neither empty nor full


def test_eq9_11_attention_has_no_causal_mask_and_says_so() -> None:
    with pytest.raises(SpklipError, match="no causal mask"):
        FSVEConfig(attention="eq9-11", temporal_causal=True)
    with pytest.raises(SpklipError, match="eq9-11, legacy"):
        FSVEConfig(attention="softmax")
    with pytest.raises(SpklipError, match="spiking, ann"):
        FSVEConfig(temporal="rnn")


def test_fully_spiking_eq9_11_encoder_learns_through_its_thresholds(clip) -> None:
    model = create_model(
        TINY, seed=0, **{"fsve.attention": "eq9-11", "fsve.temporal_causal": False}
    )
    blocks = [m for m in model.visual.fsve.temporal if isinstance(m, fsve.SpikeDrivenAttention)]
    assert len(blocks) == model.config.fsve.temporal_layers
    out = model.encode_video(clip)
    assert out.shape == (2, 128)
    (out @ torch.randn(128, 1, generator=torch.Generator().manual_seed(0))).sum().backward()
    assert model.visual.fsve.stem[0].weight.grad.abs().sum() > 0
    assert all(b.q_sn.alpha.grad is not None for b in blocks)
    calibrate_batchnorm(model, clip)
    found = binary_activation_fraction(model.eval(), clip)
    assert found["real_valued_inputs"] == []  # every layer still reads spikes


def test_hybrid_is_a_spiking_cnn_with_an_ann_transformer(clip) -> None:
    assert "spklip-fsve-hybrid" in list_models()
    full = get_model_config("spklip-fsve-hybrid").fsve
    assert full.temporal == "ann" and full.widths == FSVEConfig().widths
    model = create_model("spklip-fsve-hybrid-tiny", seed=0)
    visual = model.visual.fsve
    assert all(isinstance(m, torch.nn.TransformerEncoderLayer) for m in visual.temporal)
    assert any(is_spiking_neuron(m) for m in visual.stages.modules())
    assert not any(is_spiking_neuron(m) for m in visual.temporal.modules())
    out = model.encode_video(clip)
    assert out.shape == (2, 128) and torch.isfinite(out).all()
    (out @ torch.randn(128, 1, generator=torch.Generator().manual_seed(0))).sum().backward()
    assert visual.stem[0].weight.grad.abs().sum() > 0
    assert visual.temporal[0].linear1.weight.grad.abs().sum() > 0
    assert model.visual.fewshot_layers()[-1] == "visual.fsve.head"
    calibrate_batchnorm(model, torch.cat([clip, clip.flip(1)]))
    found = binary_activation_fraction(model.eval(), clip)
    # the convolutions read spikes, the Transformer's MLP and the head real values
    assert {"fsve.temporal.0.linear1", "fsve.temporal.0.linear2", "fsve.head"} <= set(
        found["real_valued_inputs"]
    )
    assert "fsve.stem.0" not in found["real_valued_inputs"]
    assert 0.9 < found["binary_activation_fraction"] < 1.0
