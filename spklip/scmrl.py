"""S-CMRL: a spiking audio-visual classifier with cross-modal attention and residual learning.

Re-implemented from the description of "Enhancing Audio-Visual Spiking Neural Networks through
Semantic-Alignment and Cross-Modal Residual Learning" (arXiv 2502.12488):

    vision spikes (T, B, Cv, H, W) -> spiking patch front end -> tokens u_v (T, B, N, D)
    audio spikes  (T, B, Ca, M, F) -> spiking patch front end -> tokens u_a (T, B, N, D)
    audio:  u_a' = u_a + alpha * LIF(BN(Linear(CCSSA(u_a, u_v))))   (audio attends to vision)
    vision: u_v' = u_v + alpha * LIF(BN(Linear(CCSSA(u_v, u_a))))   (vision attends to audio)
    per-modality spiking MLP, sum of the modalities, LIF, linear head, mean over tokens and time

Inputs (time-major, as SpikingJelly's multi-step mode; 0/1 values, any dtype):
- vision ``(T, B, Cv, H, W)``: Cv = 1 for spike-camera frames, 2 for ON/OFF event frames, each
  of the T steps one bin of the stream;
- audio ``(T, B, Ca, M, F)``: at step t, the spikes of the M (mel) spectrogram channels over the
  F spectrogram frames of that step's time bin, an image of M rows and F columns with Ca = 1
  (integrate-and-fire spikes), 2 (cochlea-style ON/OFF events) or 3 (both) channels.
Both front ends pool to the same ``token_grid``, so the two modalities have N = h*w tokens
each and the temporal attention can pair them token by token.

Neurons: SpikingJelly LIF (tau 2, threshold 1, hard reset to 0, sigmoid surrogate of slope 4,
multi-step mode). Stateless layers fold time into the batch. Every convolution and linear
layer but the cross-modal residual's reads 0/1 spikes: a LIF sits right before it, and the
streams between blocks carry membrane-level values (the MS-ResNet "membrane shortcut"), which
each consumer turns into spikes with its own LIF. The residual branch's linear layer reads
CCSSA's output, a product of firing rates (real values in [0, 1]), as the paper describes.

CCSSA (cross-modal complementary spatiotemporal spiking attention) of x attending to y: Q from
x, K and V from y, each LIF(BN(Linear(LIF(u)))). The spatial branch computes, per time step and
head, (Q K^T) V * scale over the tokens; the temporal branch the same over the time steps, per
token and head; no softmax (the scores count coincident spikes). Each branch is normalised by
BN and turned into spikes by a LIF, projected (Linear, BN, LIF), and the two are combined by
the product of their firing rates: the spatial branch's rate over tokens (T, B, 1, D) times the
temporal branch's rate over time (1, B, N, D).

Baselines and ablations are one class with switches (``SCMRLConfig.fusion``: "scmrl",
"add", "concat", "audio", "vision"; ``residual``: False replaces a modality's tokens by its
cross-modal branch, u' = x_res, instead of adding it). The membrane state is reset
(``functional.reset_net``) before and after every forward, so batches never share state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .errors import SpklipError
from .fsve import SpikeMatmul, spikingjelly

__all__ = [
    "CCSSA",
    "FUSIONS",
    "SCMRL",
    "SCMRL_CONFIGS",
    "SCMRLConfig",
    "SCMRLOutput",
    "count_parameters",
    "create_scmrl",
    "get_scmrl_config",
    "list_scmrl_configs",
    "spatial_attention",
    "temporal_attention",
]

FUSIONS = ("scmrl", "add", "concat", "audio", "vision")


@dataclass(frozen=True)
class SCMRLConfig:
    """S-CMRL settings; the defaults are the paper's sizes (``scmrl-paper``)."""

    num_classes: int = 6  # CREMA-D's six emotions
    steps: int = 4  # T: time steps of both input streams
    vision_channels: int = 2  # 1: spike-camera frames, 2: ON/OFF event frames; P x those
    # when each time step stacks its P frames (spklip.av_data.vision_to_steps "frames")
    vision_size: tuple[int, int] = (128, 128)  # (H, W) of the vision frames
    audio_channels: int = 1  # Ca: 1 IF spikes, 2 ON/OFF events, 3 both (av_data audio_mode)
    audio_size: tuple[int, int] = (128, 128)  # (M mel channels, F spectrogram frames per step)
    dim: int = 256  # D: token width
    stages: int = 4  # front-end conv stages (conv3x3, BN, LIF, max-pool stride 2); the
    # widths double up to dim: dim / 2**(stages - 1), ..., dim / 2, dim
    token_grid: tuple[int, int] = (8, 8)  # tokens (h, w) per modality after the front end
    heads: int = 16  # attention heads (must divide dim)
    mlp_ratio: float = 4.0  # hidden width of the spiking MLP / dim
    attn_scale: float = 0.25  # the constant scale of (Q K^T) V
    fusion: str = "scmrl"  # one of FUSIONS
    residual: bool = True  # False: u' = x_res (no identity path), the "w/o residual" ablation
    alpha: float = 1.5  # weight of the cross-modal residual branch
    tau: float = 2.0  # LIF membrane time constant, in time steps
    v_threshold: float = 1.0  # LIF firing threshold (hard reset to 0)
    surrogate_alpha: float = 4.0  # slope of the sigmoid surrogate gradient
    decay_input: bool = True  # SpikingJelly's LIF: H = V + (X - V) / tau

    def __post_init__(self) -> None:
        for name in ("num_classes", "steps", "dim", "stages", "heads"):
            if getattr(self, name) < 1:
                raise SpklipError(f"scmrl.{name} = {getattr(self, name)} must be at least 1")
        if self.audio_channels < 1:
            raise SpklipError(
                f"scmrl.audio_channels = {self.audio_channels}; use 1 (IF spikes), 2 (ON/OFF "
                "events) or 3 (both)"
            )
        if self.vision_channels < 1:
            raise SpklipError(
                f"scmrl.vision_channels = {self.vision_channels}; use 1 (spike frames), 2 "
                "(ON/OFF event frames) or the channels of a vision binning"
            )
        if self.fusion not in FUSIONS:
            raise SpklipError(f"scmrl.fusion = {self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.dim % self.heads:
            raise SpklipError(f"scmrl.heads = {self.heads} does not divide scmrl.dim {self.dim}")
        if self.dim % 2 ** (self.stages - 1):
            raise SpklipError(
                f"scmrl.dim = {self.dim} must be a multiple of 2**(stages - 1) = "
                f"{2 ** (self.stages - 1)} (the front-end widths halve per stage)"
            )
        if not self.tau > 1.0:
            raise SpklipError(f"scmrl.tau = {self.tau} must be > 1 (time steps)")
        if min(self.v_threshold, self.surrogate_alpha, self.mlp_ratio, self.attn_scale) <= 0:
            raise SpklipError(
                "scmrl.v_threshold, surrogate_alpha, mlp_ratio and attn_scale must be > 0"
            )
        if self.alpha < 0:
            raise SpklipError(f"scmrl.alpha = {self.alpha} must be >= 0")
        for name in ("vision_size", "audio_size"):
            size = getattr(self, name)
            grid = self.front_end_grid(size)
            if min(size) < 1 or any(g < t for g, t in zip(grid, self.token_grid, strict=True)):
                raise SpklipError(
                    f"scmrl.{name} = {tuple(size)} gives a {grid[0]}x{grid[1]} map after "
                    f"{self.stages} stride-2 stages, smaller than token_grid "
                    f"{self.token_grid[0]}x{self.token_grid[1]}; enlarge the input or lower "
                    "scmrl.stages / scmrl.token_grid"
                )

    def front_end_grid(self, size: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the last stage's map for an input of ``size``: each max-pool (kernel 3,
        stride 2, padding 1) maps n to ceil(n / 2)."""
        out = []
        for n in size:
            for _ in range(self.stages):
                n = -(-n // 2)
            out.append(n)
        return out[0], out[1]

    @property
    def tokens(self) -> int:
        """N, tokens per modality."""
        return self.token_grid[0] * self.token_grid[1]

    @property
    def modalities(self) -> tuple[str, ...]:
        """The input streams this variant reads."""
        return {"audio": ("audio",), "vision": ("vision",)}.get(self.fusion, ("audio", "vision"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Named sizes. "scmrl-paper": the paper's Spikformer-style sizes (T 4, D 256, 16 heads, MLP
# ratio 4, four stride-2 stages from 128x128 inputs to 8x8 tokens, alpha 1.5).
# "scmrl-tiny": the same network for this CPU and the synthetic set (T 4, 32x32 spike frames,
# 16 mel channels x 16 frames per step, D 32, 4 heads, two stages to 4x4 tokens).
SCMRL_CONFIGS: dict[str, SCMRLConfig] = {
    "scmrl-paper": SCMRLConfig(),
    "scmrl-tiny": SCMRLConfig(
        num_classes=4,
        steps=4,
        vision_channels=1,
        vision_size=(32, 32),
        audio_size=(16, 16),
        dim=32,
        stages=2,
        token_grid=(4, 4),
        heads=4,
        mlp_ratio=2.0,
    ),
}


def list_scmrl_configs() -> list[str]:
    """Names of the built-in S-CMRL sizes."""
    return sorted(SCMRL_CONFIGS)


def get_scmrl_config(name: str | SCMRLConfig, **overrides: Any) -> SCMRLConfig:
    """The named config (or ``name`` itself if it is a config) with ``overrides`` applied
    (keys are SCMRLConfig fields; tuples may be given as lists)."""
    if isinstance(name, SCMRLConfig):
        base = name
    elif name in SCMRL_CONFIGS:
        base = SCMRL_CONFIGS[name]
    else:
        raise SpklipError(
            f"unknown S-CMRL config {name!r}; choose one of {', '.join(list_scmrl_configs())}"
        )
    fields = {f.name for f in dataclasses.fields(SCMRLConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise SpklipError(
            f"unknown S-CMRL setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}"
        )
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return dataclasses.replace(base, **fixed)


def create_scmrl(name: str | SCMRLConfig = "scmrl-tiny", **overrides: Any) -> SCMRL:
    """Build an S-CMRL (or one of its baselines, ``fusion=...``) by config name."""
    return SCMRL(get_scmrl_config(name, **overrides))


def _lif(cfg: SCMRLConfig) -> nn.Module:
    """A multi-step LIF layer: tau, threshold, hard reset to 0, its own sigmoid surrogate."""
    sj = spikingjelly()
    return sj.neuron.LIFNode(
        tau=float(cfg.tau),
        decay_input=cfg.decay_input,
        v_threshold=float(cfg.v_threshold),
        v_reset=0.0,
        surrogate_function=sj.surrogate.Sigmoid(alpha=float(cfg.surrogate_alpha)),
        detach_reset=True,
        step_mode="m",
    )


class _TokenBN(nn.Module):
    """BatchNorm over the channels of tokens (..., D), statistics over every other axis."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x.reshape(-1, x.shape[-1])).view(x.shape)


class SpikingLinear(nn.Module):
    """Spikes (T, B, N, Din) -> LIF(BN(Linear(x))) spikes (T, B, N, Dout)."""

    def __init__(self, cfg: SCMRLConfig, din: int, dout: int) -> None:
        super().__init__()
        self.linear = nn.Linear(din, dout, bias=False)
        self.bn = _TokenBN(dout)
        self.lif = _lif(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.bn(self.linear(x)))


class SpikingPatchEmbed(nn.Module):
    """Spikes (T, B, C, H, W) -> membrane-level tokens (T, B, N, D).

    ``stages`` x [conv3x3 (reads spikes), BN, LIF, max-pool 3x3 stride 2], an adaptive max-pool
    of the spikes to ``token_grid``, then tokens s + BN(conv3x3(s)): the spikes plus a learned
    relative-position term mixing neighbouring tokens."""

    def __init__(self, cfg: SCMRLConfig, in_channels: int) -> None:
        super().__init__()
        widths = [cfg.dim // 2 ** (cfg.stages - 1 - i) for i in range(cfg.stages)]
        layers: list[nn.Module] = []
        cin = in_channels
        for width in widths:
            layers.append(nn.Conv2d(cin, width, 3, padding=1, bias=False))
            layers.append(nn.BatchNorm2d(width))
            layers.append(_Unfold(_lif(cfg)))
            layers.append(nn.MaxPool2d(3, stride=2, padding=1))
            cin = width
        layers.append(nn.AdaptiveMaxPool2d(cfg.token_grid))
        self.stages = nn.ModuleList(layers)
        self.pos = nn.Conv2d(cfg.dim, cfg.dim, 3, padding=1, bias=False)
        self.pos_bn = nn.BatchNorm2d(cfg.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        h = x.flatten(0, 1)  # time folded into the batch for the stateless layers
        for layer in self.stages:
            h = layer(h, t) if isinstance(layer, _Unfold) else layer(h)
        u = h + self.pos_bn(self.pos(h))  # (T*B, D, h, w)
        return u.flatten(2).transpose(1, 2).reshape(t, b, -1, u.shape[1])


class _Unfold(nn.Module):
    """Runs a multi-step neuron on time-folded maps (T*B, ...): unfolds, steps, folds back."""

    def __init__(self, neuron: nn.Module) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        return self.neuron(x.view(steps, -1, *x.shape[1:])).flatten(0, 1)


def spatial_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    scale: float,
    matmuls: tuple[nn.Module, nn.Module] | None = None,
) -> torch.Tensor:
    """Attention over tokens without softmax: per time step and head, (Q K^T) V * scale.

    ``q`` (T, B, Nq, D), ``k`` and ``v`` (T, B, Nk, D), any float dtype (0/1 spikes in the
    model); returns (T, B, Nq, D). ``matmuls`` (two modules computing a @ b) let the energy
    counter see the products."""
    mm1, mm2 = matmuls or (torch.matmul, torch.matmul)
    t, b, nq, d = q.shape

    def split(x: torch.Tensor) -> torch.Tensor:  # (T, B, N, D) -> (T, B, heads, N, D/heads)
        return x.view(t, b, x.shape[2], heads, d // heads).transpose(2, 3)

    scores = mm1(split(q), split(k).transpose(-1, -2))  # (T, B, heads, Nq, Nk) counts
    out = mm2(scores, split(v)) * scale
    return out.transpose(2, 3).reshape(t, b, nq, d)


def temporal_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    heads: int,
    scale: float,
    matmuls: tuple[nn.Module, nn.Module] | None = None,
) -> torch.Tensor:
    """Attention over time steps without softmax: per token and head, (Q K^T) V * scale with
    Q K^T a (T, T) matrix. ``q``, ``k``, ``v`` (T, B, N, D) (the same N); returns (T, B, N, D)."""
    mm1, mm2 = matmuls or (torch.matmul, torch.matmul)
    t, b, n, d = q.shape

    def split(x: torch.Tensor) -> torch.Tensor:  # (T, B, N, D) -> (B, N, heads, T, D/heads)
        return x.view(t, b, n, heads, d // heads).permute(1, 2, 3, 0, 4)

    scores = mm1(split(q), split(k).transpose(-1, -2))  # (B, N, heads, T, T) counts
    out = mm2(scores, split(v)) * scale
    return out.permute(3, 0, 1, 2, 4).reshape(t, b, n, d)


class _AttentionBranch(nn.Module):
    """One CCSSA branch (spatial or temporal): Q from x's spikes, K and V from y's, the
    softmax-free product, BN, LIF, and a spiking projection. Returns spikes (T, B, N, D)."""

    def __init__(self, cfg: SCMRLConfig, over: str) -> None:
        super().__init__()
        d = cfg.dim
        self.heads, self.scale = cfg.heads, cfg.attn_scale
        self.attend = spatial_attention if over == "tokens" else temporal_attention
        self.q, self.k, self.v = (SpikingLinear(cfg, d, d) for _ in range(3))
        self.scores, self.mix = SpikeMatmul(), SpikeMatmul()
        self.attn_bn = _TokenBN(d)  # brings the spike counts to the threshold's scale
        self.attn_lif = _lif(cfg)
        self.proj = SpikingLinear(cfg, d, d)

    def forward(self, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(xs), self.k(ys), self.v(ys)
        mixed = self.attend(q, k, v, self.heads, self.scale, (self.scores, self.mix))
        return self.proj(self.attn_lif(self.attn_bn(mixed)))


class CCSSA(nn.Module):
    """Cross-modal complementary spatiotemporal spiking attention: x (T, B, N, D) attends to
    y (T, B, N, D), both membrane-level tokens. Returns the product of the spatial branch's
    firing rate over tokens and the temporal branch's firing rate over time, (T, B, N, D)
    float in [0, 1]."""

    def __init__(self, cfg: SCMRLConfig) -> None:
        super().__init__()
        self.x_lif, self.y_lif = _lif(cfg), _lif(cfg)
        self.spatial = _AttentionBranch(cfg, "tokens")
        self.temporal = _AttentionBranch(cfg, "time")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xs, ys = self.x_lif(x), self.y_lif(y)
        spatial_rate = self.spatial(xs, ys).mean(dim=2, keepdim=True)  # (T, B, 1, D)
        temporal_rate = self.temporal(xs, ys).mean(dim=0, keepdim=True)  # (1, B, N, D)
        return spatial_rate * temporal_rate


class CrossModalResidual(nn.Module):
    """x_res = LIF(BN(Linear(CCSSA(x, y)))) spikes (T, B, N, D); the block returns
    (x + alpha * x_res, x_res), or (x_res, x_res) without the residual path."""

    def __init__(self, cfg: SCMRLConfig) -> None:
        super().__init__()
        self.attention = CCSSA(cfg)
        self.linear = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.bn = _TokenBN(cfg.dim)
        self.lif = _lif(cfg)
        self.alpha, self.residual = cfg.alpha, cfg.residual

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_res = self.lif(self.bn(self.linear(self.attention(x, y))))
        return (x + self.alpha * x_res if self.residual else x_res), x_res


class SpikingMLP(nn.Module):
    """u + BN(W2 LIF(BN(W1 LIF(u)))) on membrane-level tokens (T, B, N, D)."""

    def __init__(self, cfg: SCMRLConfig) -> None:
        super().__init__()
        hidden = max(1, round(cfg.dim * cfg.mlp_ratio))
        self.lif1 = _lif(cfg)
        self.fc1 = SpikingLinear(cfg, cfg.dim, hidden)
        self.fc2 = nn.Linear(hidden, cfg.dim, bias=False)
        self.bn2 = _TokenBN(cfg.dim)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return u + self.bn2(self.fc2(self.fc1(self.lif1(u))))


@dataclass
class SCMRLOutput:
    """What :class:`SCMRL` returns: ``logits`` (B, classes) float, and for fusion "scmrl" the
    firing rates of the two cross-modal residual branches, ``audio_rates`` and
    ``vision_rates`` (B, D) float in [0, 1] (mean of x_res over time and tokens; None for the
    baselines), which the semantic alignment loss aligns."""

    logits: torch.Tensor
    audio_rates: torch.Tensor | None = None
    vision_rates: torch.Tensor | None = None


class SCMRL(nn.Module):
    """S-CMRL and its baselines: ``forward(vision, audio) -> SCMRLOutput``.

    ``vision`` (T, B, Cv, H, W) and ``audio`` (T, B, Ca, M, F), 0/1 spikes of any dtype, with
    T, Cv, (H, W) and (M, F) as in the config; a unimodal variant ignores (and does not check)
    the other stream, which may then be None.
    """

    def __init__(self, config: SCMRLConfig) -> None:
        super().__init__()
        self.config = cfg = config
        used = cfg.modalities
        self.audio_embed = SpikingPatchEmbed(cfg, cfg.audio_channels) if "audio" in used else None
        self.vision_embed = (
            SpikingPatchEmbed(cfg, cfg.vision_channels) if "vision" in used else None
        )
        self.audio_cross = CrossModalResidual(cfg) if cfg.fusion == "scmrl" else None
        self.vision_cross = CrossModalResidual(cfg) if cfg.fusion == "scmrl" else None
        self.audio_mlp = SpikingMLP(cfg) if "audio" in used else None
        self.vision_mlp = SpikingMLP(cfg) if "vision" in used else None
        n_out = 2 if cfg.fusion == "concat" else 1
        self.out_lif = nn.ModuleList(_lif(cfg) for _ in range(n_out))
        # A linear head is linear: applied to the spikes of every step and token and then
        # averaged, it equals the head of the mean firing rate, but it reads 0/1 values only.
        self.head = nn.Linear(cfg.dim * n_out, cfg.num_classes)

    def _check(self, name: str, x: torch.Tensor | None, channels: int, size: tuple) -> None:
        cfg = self.config
        want = (cfg.steps, channels, *size)
        if x is None or x.ndim != 5 or (x.shape[0], *x.shape[2:]) != want:
            got = None if x is None else tuple(x.shape)
            raise SpklipError(
                f"{name} spikes have shape {got}; expected (T, B, C, rows, cols) = "
                f"({want[0]}, B, {', '.join(map(str, want[1:]))}) for this S-CMRL config"
            )

    def forward(self, vision: torch.Tensor | None, audio: torch.Tensor | None) -> SCMRLOutput:
        cfg = self.config
        dtype = self.head.weight.dtype
        reset_net = spikingjelly().functional.reset_net
        reset_net(self)  # no state from an earlier batch
        try:
            tokens = {}
            if self.audio_embed is not None:
                self._check("audio", audio, cfg.audio_channels, cfg.audio_size)
                tokens["audio"] = self.audio_embed(audio.to(dtype))
            if self.vision_embed is not None:
                self._check("vision", vision, cfg.vision_channels, cfg.vision_size)
                tokens["vision"] = self.vision_embed(vision.to(dtype))
            if "audio" in tokens and "vision" in tokens:
                if tokens["audio"].shape[1] != tokens["vision"].shape[1]:
                    raise SpklipError("audio and vision batches differ in size; pass one batch")
            rates: dict[str, torch.Tensor] = {}
            if cfg.fusion == "scmrl":
                a, v = tokens["audio"], tokens["vision"]
                tokens["audio"], a_res = self.audio_cross(a, v)  # audio attends to vision
                tokens["vision"], v_res = self.vision_cross(v, a)  # vision attends to audio
                rates = {"audio": a_res.mean(dim=(0, 2)), "vision": v_res.mean(dim=(0, 2))}
            if "audio" in tokens:
                tokens["audio"] = self.audio_mlp(tokens["audio"])
            if "vision" in tokens:
                tokens["vision"] = self.vision_mlp(tokens["vision"])
            if cfg.fusion == "concat":
                spikes = torch.cat(
                    [
                        lif(tokens[m])
                        for lif, m in zip(self.out_lif, ("audio", "vision"), strict=True)
                    ],
                    dim=-1,
                )
            else:
                spikes = self.out_lif[0](sum(tokens.values()))
            logits = self.head(spikes).mean(dim=(0, 2))  # mean over time steps and tokens
            return SCMRLOutput(logits, rates.get("audio"), rates.get("vision"))
        finally:
            reset_net(self)  # drop the last batch's membrane tensors


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
