"""FSVE, the full-spiking visual encoder, on SpikingJelly (the only spklip module that imports it).

    spikes (B, T, H, W) -> S time steps of L frames  (S, B, L, H, W)  binary
      -> stem: conv3x3 (stride 2) + tdBN                    membrane-level map
      -> MS-ResNet stages of blocks  u + tdBN(conv(LIF(tdBN(conv(LIF(u))))))
      -> spatial readout: LIF, depthwise conv over the whole grid + tdBN, LIF, linear + tdBN
      -> + temporal position embedding -> spike-driven self-attention blocks over the S steps
      -> LIF, linear readout at each step, mean over steps   (B, embed_dim)

Time. The SNN runs ``steps`` time steps. Step s is fed ``frames_per_step`` consecutive input
frames (a window of steps x frames_per_step frames centred in the clip) as the input channels
of the stem convolution, so the first layer reads the spike stream itself, 0/1 values only.
Neuron layers are SpikingJelly LIF nodes in multi-step mode ('m', input (S, B, ...));
stateless layers (convolutions, linear layers, tdBN) fold time into the batch. The membrane
state is reset (``functional.reset_net``) before and after every forward, so batches never
leak into each other.

MS-ResNet style. Every convolution and linear layer reads spikes: a LIF neuron sits right
before it. The residual stream between blocks carries membrane-level (real) values, and a
block adds its output to that stream ("membrane shortcut"), not to spikes. Batch norm is
threshold-dependent (tdBN): normalised over batch and time together, its scale initialised to
alpha x V_th (alpha = 1, and 1/sqrt(2) on the two branches that are summed in a residual add).
Spikes use a Heaviside forward and a rectangular surrogate gradient of width ``surrogate_width``
(height 1/width).

Temporal part (``fsve.temporal``). ``"spiking"`` (the fully spiking encoder, the paper's
67.29 % variant): spike-driven self-attention blocks across the S steps, in one of two forms
(``fsve.attention``):

- ``"eq9-11"``, the paper's (A.7, Eq. 9-11): Q, K, V are the spikes of neurons whose
  threshold is alpha * mean(|input|) with a learnable alpha (:class:`ThresholdSpike`) on the
  projections of the block's input spikes; the score map Q K^T, scaled by 1/sqrt(d_head), is
  itself turned into spikes by such a neuron (no softmax, no causal mask) and multiplies V.
  A V (integer counts) goes through one more such neuron before the output projection, so
  that layer reads spikes too (Eq. 11 stops at A V).
- ``"legacy"`` (ours, spklip-fsve-tiny): Q, K, V are LIF spikes after tdBN; the scores count
  coincident spikes, an optional causal mask keeps step s to steps <= s, and (Q K^T) V is
  normalised to the firing threshold by tdBN before a LIF neuron turns it into spikes.

``"ann"`` (the hybrid, the paper's 74.14 % variant, spklip-fsve-hybrid): the spiking
convolutional stem and stages, then an ordinary (ANN) pre-norm Transformer over the S step
tokens, softmax attention and GELU MLPs on real values, and the linear head on their mean.
Matrix products of spikes go through :class:`SpikeMatmul` so the energy counter sees them.

Readout. By default (``readout: "spikes"``) a LIF layer feeds the final projection at every
step and the projections are averaged over the steps: every layer reads 0/1 spikes. With
``readout: "membrane"`` the projection reads the time-averaged membrane-level tokens, one
real-valued linear layer per clip, the only layer whose input is not 0/1
(``spklip.evaluation.energy.binary_activation_fraction`` lists it).
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from torch import nn

from .errors import SpklipError

__all__ = [
    "FSVE",
    "INSTALL_HINT",
    "READOUTS",
    "FSVEConfig",
    "SpikeMatmul",
    "ThresholdSpike",
    "is_spiking_neuron",
    "lif_layer",
    "spikingjelly",
    "threshold_spike",
]

INSTALL_HINT = (
    "pip install spikingjelly --no-deps loguru (CPU machines: keeps your torch), "
    "or pip install 'spikesim[fsve]'"
)
READOUTS = ("spikes", "membrane")
POOL_INITS = ("random", "mean")
ATTENTIONS = ("eq9-11", "legacy")
TEMPORALS = ("spiking", "ann")
_SJ: SimpleNamespace | None = None


def spikingjelly() -> SimpleNamespace:
    """SpikingJelly's ``neuron``, ``surrogate``, ``functional`` and ``layer`` modules, imported
    on first use; a one-line SpklipError saying how to install it when it is missing."""
    global _SJ
    if _SJ is None:
        try:
            from spikingjelly.activation_based import functional, layer, neuron, surrogate
        except ImportError as e:
            raise SpklipError(
                f"the FSVE encoder needs SpikingJelly, which cannot be imported ({e}); "
                f"install it with: {INSTALL_HINT}"
            ) from e
        # SpikingJelly registers Triton kernels on the first neuron call; on a machine without
        # Triton torch logs a warning each time, which is noise on CPU.
        logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
        _SJ = SimpleNamespace(
            neuron=neuron, surrogate=surrogate, functional=functional, layer=layer
        )
    return _SJ


def is_spiking_neuron(module: nn.Module) -> bool:
    """Whether ``module`` is a spiking neuron: a SpikingJelly neuron (False when SpikingJelly is
    not loaded) or FSVE's :class:`ThresholdSpike`."""
    if isinstance(module, ThresholdSpike):
        return True
    neuron = sys.modules.get("spikingjelly.activation_based.neuron")
    return neuron is not None and isinstance(module, neuron.BaseNode)


@dataclass(frozen=True)
class FSVEConfig:
    """FSVE settings; the defaults are the full-size encoder (spklip-fsve)."""

    steps: int = 5  # S: SNN time steps per clip
    frames_per_step: int | None = None  # L: input frames per step (None: frames // steps);
    # the S*L frames read are centred in the clip
    widths: tuple[int, ...] = (64, 128, 256, 512)  # channels of each stage
    blocks: tuple[int, ...] = (2, 2, 2, 2)  # MS-ResNet blocks in each stage
    stem_stride: int = 2  # stride of the stem convolution
    stage_strides: tuple[int, ...] = (2, 2, 2, 2)  # stride of each stage's first block
    dim: int = 512  # width of the temporal tokens
    temporal: str = "spiking"  # "spiking": spike-driven attention (fully spiking encoder);
    # "ann": an ANN Transformer over the step tokens (the paper's hybrid)
    attention: str = "legacy"  # spiking attention: "eq9-11" (the paper's A.7) or "legacy"
    # (ours: LIF Q/K/V after tdBN, optional causal mask)
    threshold_alpha: float = 1.0  # initial alpha of the eq9-11 neurons' threshold
    # alpha * mean(|x|)
    temporal_layers: int = 2  # attention blocks over the steps (0: none)
    temporal_heads: int = 8  # attention heads (must divide dim)
    temporal_causal: bool = True  # step s attends to steps <= s only ("legacy" and "ann";
    # the paper's eq9-11 attention has no mask)
    temporal_pos: bool = True  # learnable temporal position embedding added to the tokens
    mlp_ratio: float = 4.0  # hidden size of the spiking MLP / dim
    tau: float = 2.0  # LIF membrane time constant, in time steps (> 1)
    decay_input: bool = False  # False: H = V - V/tau + X (an input of V_th fires at once)
    v_threshold: float = 1.0  # V_th of the LIF neurons (tdBN scales to it)
    surrogate_width: float = 1.0  # width of the rectangular surrogate gradient around V_th
    detach_reset: bool = True  # no gradient through the reset (faster, as usual in SNNs)
    readout: str = "spikes"  # "spikes": LIF, projection at each step, mean over steps (every
    # layer reads 0/1 spikes); "membrane": the projection reads the step-averaged
    # membrane-level tokens (real values; fits a batch faster)
    head_norm: bool = False  # BatchNorm1d on the embedding (after the readout): removes the
    # component common to all clips, against the contrastive loss's collapse to one embedding
    pool_init: str = "random"  # init of the grid readout's depthwise kernel: "random" (normal,
    # as the other layers) or "mean" (every tap 1/(h*w): starts as average pooling of spikes)
    init_gain: float = 0.1  # init std of the layers feeding a tdBN, x 1/sqrt(fan_in): the
    # network is scale-invariant in their weights, so a smaller gain is a larger Adam step

    def __post_init__(self) -> None:
        positive = ("steps", "dim", "temporal_heads", "stem_stride")
        for name in positive:
            if getattr(self, name) < 1:
                raise SpklipError(f"fsve.{name} = {getattr(self, name)} must be at least 1")
        if self.frames_per_step is not None and self.frames_per_step < 1:
            raise SpklipError(
                f"fsve.frames_per_step = {self.frames_per_step} must be >= 1, or null"
            )
        n = len(self.widths)
        if n == 0 or len(self.blocks) != n or len(self.stage_strides) != n:
            raise SpklipError(
                "fsve.widths, fsve.blocks and fsve.stage_strides need one entry per stage "
                f"(got {len(self.widths)}, {len(self.blocks)}, {len(self.stage_strides)})"
            )
        if min(self.widths) < 1 or min(self.blocks) < 1 or min(self.stage_strides) < 1:
            raise SpklipError("fsve.widths, fsve.blocks and fsve.stage_strides must be >= 1")
        if self.dim % self.temporal_heads:
            raise SpklipError(
                f"fsve.temporal_heads = {self.temporal_heads} does not divide fsve.dim {self.dim}"
            )
        if self.temporal_layers < 0:
            raise SpklipError("fsve.temporal_layers must be >= 0")
        if not self.tau > 1.0:
            raise SpklipError(f"fsve.tau = {self.tau} must be > 1 (time steps)")
        if min(self.v_threshold, self.surrogate_width, self.mlp_ratio, self.init_gain) <= 0:
            raise SpklipError(
                "fsve.v_threshold, fsve.surrogate_width, fsve.mlp_ratio and fsve.init_gain "
                "must be > 0"
            )
        if self.pool_init not in POOL_INITS:
            raise SpklipError(f"fsve.pool_init = {self.pool_init!r}; choose one of random, mean")
        if self.temporal not in TEMPORALS:
            raise SpklipError(f"fsve.temporal = {self.temporal!r}; choose one of spiking, ann")
        if self.attention not in ATTENTIONS:
            raise SpklipError(
                f"fsve.attention = {self.attention!r}; choose one of {', '.join(ATTENTIONS)}"
            )
        if self.attention == "eq9-11" and self.temporal_causal and self.temporal == "spiking":
            raise SpklipError(
                "fsve.attention = 'eq9-11' has no causal mask; set fsve.temporal_causal = false"
            )
        if self.threshold_alpha <= 0:
            raise SpklipError(f"fsve.threshold_alpha = {self.threshold_alpha} must be > 0")
        if self.readout not in READOUTS:
            raise SpklipError(f"fsve.readout = {self.readout!r}; choose one of spikes, membrane")

    def resolved_frames_per_step(self, frames: int) -> int:
        """L for an input of ``frames`` frames."""
        if self.frames_per_step is not None:
            return self.frames_per_step
        return frames // self.steps

    def check(self, frames: int) -> None:
        """Raise unless ``frames`` input frames hold every time step."""
        per_step = self.resolved_frames_per_step(frames)
        if per_step < 1 or self.steps * per_step > frames:
            raise SpklipError(
                f"fsve: {self.steps} steps of {max(per_step, 1)} frames need "
                f"{self.steps * max(per_step, 1)} frames but the input has {frames}; raise "
                "frames, or lower fsve.steps / fsve.frames_per_step (null: frames // steps)"
            )

    def grid(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """Spatial size (h, w) of the last stage's map: each stride s gives ceil(n / s)."""
        out = []
        for n in image_size:
            for s in (self.stem_stride, *self.stage_strides):
                n = -(-n // s)
            out.append(n)
        return out[0], out[1]


class SpikeMatmul(nn.Module):
    """``a @ b`` as a module, so that forward hooks (the energy counter) see its operands."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


def lif_layer(cfg: FSVEConfig) -> nn.Module:
    """FSVE's neuron: a SpikingJelly LIF layer in multi-step mode (input (S, B, ...) float,
    output 0/1 spikes of the same shape), hard reset to 0, ``cfg``'s tau, threshold, input
    decay and detached reset, and its own rectangular surrogate of width
    ``cfg.surrogate_width``."""
    sj = spikingjelly()
    return sj.neuron.LIFNode(
        tau=float(cfg.tau),
        decay_input=cfg.decay_input,
        v_threshold=float(cfg.v_threshold),
        v_reset=0.0,
        surrogate_function=sj.surrogate.Rect(alpha=1.0 / cfg.surrogate_width),
        detach_reset=cfg.detach_reset,
        step_mode="m",
    )


# Every convolution and linear layer of FSVE but the readout feeds a tdBN, so the network is
# unchanged if their weights are scaled, while Adam moves each weight by about lr per step:
# small initial weights make the same lr a larger effective step (fsve.init_gain). At 1/10 of
# the unit-variance init (the default), spklip-fsve-tiny learns at the ANN's lr (1e-3) as fast
# as at lr 1e-2 with unit init; at unit init and lr 1e-3 its training loss fell from 1.81 to
# only 1.68 in 3 epochs of a 6-class toy task (0.18 with the small init).


def _linear(cfg: FSVEConfig, cin: int, cout: int) -> nn.Linear:
    """A linear layer feeding a tdBN: no bias, normal init of std ``cfg.init_gain /
    sqrt(fan_in)`` (see fsve.init_gain)."""
    linear = nn.Linear(cin, cout, bias=False)
    nn.init.normal_(linear.weight, std=cfg.init_gain / math.sqrt(cin))
    return linear


def _conv(
    cfg: FSVEConfig,
    cin: int,
    cout: int,
    kernel: int | tuple[int, int],
    stride: int = 1,
    groups: int = 1,
) -> nn.Conv2d:
    """Multi-step convolution (time folded into the batch) feeding a tdBN: no bias, small
    normal init (see fsve.init_gain)."""
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    conv = spikingjelly().layer.Conv2d(
        cin,
        cout,
        k,
        stride=stride,
        padding=(k[0] // 2, k[1] // 2) if groups == 1 else 0,  # the grid readout: no padding
        groups=groups,
        bias=False,
        step_mode="m",
    )
    fan_in = (cin // groups) * k[0] * k[1]
    nn.init.normal_(conv.weight, std=cfg.init_gain / math.sqrt(fan_in))
    return conv


def _tdbn2d(cfg: FSVEConfig, channels: int, alpha: float = 1.0) -> nn.Module:
    return spikingjelly().layer.ThresholdDependentBatchNorm2d(
        alpha=alpha, v_th=cfg.v_threshold, num_features=channels
    )


def _tdbn1d(cfg: FSVEConfig, channels: int, alpha: float = 1.0) -> nn.Module:
    return spikingjelly().layer.ThresholdDependentBatchNorm1d(
        alpha=alpha, v_th=cfg.v_threshold, num_features=channels
    )


_RESIDUAL_ALPHA = 1 / math.sqrt(2)  # two summed tdBN branches keep the variance of one
# The temporal blocks' residual branches start at zero (tdBN scale alpha = 0): each block is
# the identity until training opens it. With alpha = 1/sqrt(2) there, a one-batch overfit of
# spklip-fsve-tiny was at loss 0.20 after 60 steps, against 0.003 this way.


def _per_step(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """(S, B, C) -> (S, B, C'): a linear layer on time folded into the batch."""
    s, b = x.shape[:2]
    return linear(x.reshape(s * b, -1)).view(s, b, -1)


class MSBlock(nn.Module):
    """MS-ResNet basic block on a membrane-level map u (S, B, C, H, W):
    u + tdBN(conv3x3(LIF(tdBN(conv3x3(LIF(u)))))); with a stride or a width change the shortcut
    is tdBN(conv1x1(LIF(u))), the same spikes that feed the first convolution."""

    def __init__(self, cfg: FSVEConfig, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.lif1 = lif_layer(cfg)
        self.conv1 = _conv(cfg, cin, cout, 3, stride)
        self.bn1 = _tdbn2d(cfg, cout)
        self.lif2 = lif_layer(cfg)
        self.conv2 = _conv(cfg, cout, cout, 3)
        self.bn2 = _tdbn2d(cfg, cout, _RESIDUAL_ALPHA)
        self.shortcut: nn.Module | None = None
        if stride > 1 or cin != cout:
            self.shortcut = nn.Sequential(
                _conv(cfg, cin, cout, 1, stride), _tdbn2d(cfg, cout, _RESIDUAL_ALPHA)
            )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        s = self.lif1(u)
        out = self.bn2(self.conv2(self.lif2(self.bn1(self.conv1(s)))))
        return out + (u if self.shortcut is None else self.shortcut(s))


class SpikingSelfAttention(nn.Module):
    """Spike-driven self-attention over the S time steps of tokens u (S, B, dim), plus the
    membrane shortcut. No softmax: the scores are counts of coincident Q and K spikes, and
    (Q K^T) V, an integer per channel, is normalised to the firing threshold by tdBN (at
    inference a per-channel scale and offset, i.e. a per-channel threshold) before a LIF
    neuron turns it into spikes."""

    def __init__(self, cfg: FSVEConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.heads = cfg.temporal_heads
        self.causal = cfg.temporal_causal
        self.lif_in = lif_layer(cfg)
        self.q, self.k, self.v = (_linear(cfg, d, d) for _ in range(3))
        self.q_bn, self.k_bn, self.v_bn = (_tdbn1d(cfg, d) for _ in range(3))
        self.q_lif, self.k_lif, self.v_lif = (lif_layer(cfg) for _ in range(3))
        self.scores = SpikeMatmul()
        self.mix = SpikeMatmul()
        self.attn_bn = _tdbn1d(cfg, d)
        self.attn_lif = lif_layer(cfg)
        self.out = _linear(cfg, d, d)
        self.out_bn = _tdbn1d(cfg, d, 0.0)  # starts as the identity (see _RESIDUAL_ALPHA)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        s, b, d = u.shape
        x = self.lif_in(u)
        q = self.q_lif(self.q_bn(_per_step(self.q, x)))
        k = self.k_lif(self.k_bn(_per_step(self.k, x)))
        v = self.v_lif(self.v_bn(_per_step(self.v, x)))

        def heads(t: torch.Tensor) -> torch.Tensor:  # (S, B, d) -> (B, heads, S, d/heads)
            return t.view(s, b, self.heads, d // self.heads).permute(1, 2, 0, 3)

        scores = self.scores(heads(q), heads(k).transpose(-1, -2))  # (B, heads, S, S) counts
        if self.causal:
            scores = scores.tril()
        mixed = self.mix(scores, heads(v))  # (B, heads, S, d/heads) integer counts
        a = self.attn_lif(self.attn_bn(mixed.permute(2, 0, 1, 3).reshape(s, b, d)))
        return u + self.out_bn(_per_step(self.out, a))


class _Spike(torch.autograd.Function):
    """Heaviside step z > 0 -> 1.0 forward; rectangular surrogate backward: the gradient passes
    (scaled by 1/width) where |z| < width/2."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, width: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.width = width
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        window = (z.abs() < ctx.width / 2).to(grad.dtype) / ctx.width
        return grad * window, None


def threshold_spike(
    x: torch.Tensor, alpha: torch.Tensor, batch_dim: int, width: float = 1.0
) -> torch.Tensor:
    """Spikes of x where x > alpha * mean(|x|), the mean taken per sample (over every dim but
    ``batch_dim``); 0/1 floats of x's shape. Rectangular surrogate gradient of ``width`` to x
    and alpha (the threshold moves with both)."""
    dims = [d for d in range(x.ndim) if d != batch_dim % x.ndim]
    threshold = alpha * x.abs().mean(dim=dims, keepdim=True)
    return _Spike.apply(x - threshold, width)


class ThresholdSpike(nn.Module):
    """The neuron of Eq. 9-11: stateless, fires where its input exceeds alpha * mean(|input|)
    (per sample), alpha learnable (initialised to ``cfg.threshold_alpha``). Its threshold
    follows the input's scale, so it needs no normalisation before it."""

    def __init__(self, cfg: FSVEConfig, batch_dim: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(cfg.threshold_alpha)))
        self.batch_dim = batch_dim
        self.width = cfg.surrogate_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return threshold_spike(x, self.alpha.to(x.dtype), self.batch_dim, self.width)

    def extra_repr(self) -> str:
        return f"batch_dim={self.batch_dim}, width={self.width}"


class SpikeDrivenAttention(nn.Module):
    """The paper's spike-driven self-attention (A.7, Eq. 9-11) over the S steps of tokens
    u (S, B, dim), plus the membrane shortcut:

        x = LIF(u);  Q, K, V = SN(x W_q), SN(x W_k), SN(x W_v)           (Eq. 9)
        A = SN(Q K^T / sqrt(d_head))  per head, no mask                   (Eq. 10)
        out = u + tdBN(W_o SN(A V))                                        (Eq. 11)

    where SN is a :class:`ThresholdSpike` (threshold alpha * mean(|input|), learnable alpha).
    """

    def __init__(self, cfg: FSVEConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.heads = cfg.temporal_heads
        self.scale = 1.0 / math.sqrt(d // cfg.temporal_heads)
        self.lif_in = lif_layer(cfg)
        self.q, self.k, self.v = (_linear(cfg, d, d) for _ in range(3))
        self.q_sn, self.k_sn, self.v_sn = (ThresholdSpike(cfg, batch_dim=1) for _ in range(3))
        self.scores = SpikeMatmul()
        self.score_sn = ThresholdSpike(cfg, batch_dim=0)  # on (B, heads, S, S)
        self.mix = SpikeMatmul()
        self.attn_sn = ThresholdSpike(cfg, batch_dim=1)  # on (S, B, dim)
        self.out = _linear(cfg, d, d)
        self.out_bn = _tdbn1d(cfg, d, 0.0)  # starts as the identity (see _RESIDUAL_ALPHA)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        s, b, d = u.shape
        x = self.lif_in(u)
        q = self.q_sn(_per_step(self.q, x))
        k = self.k_sn(_per_step(self.k, x))
        v = self.v_sn(_per_step(self.v, x))

        def heads(t: torch.Tensor) -> torch.Tensor:  # (S, B, d) -> (B, heads, S, d/heads)
            return t.view(s, b, self.heads, d // self.heads).permute(1, 2, 0, 3)

        scores = self.scores(heads(q), heads(k).transpose(-1, -2)) * self.scale
        a = self.score_sn(scores)  # (B, heads, S, S) spikes
        mixed = self.mix(a, heads(v))  # (B, heads, S, d/heads) integer counts
        spikes = self.attn_sn(mixed.permute(2, 0, 1, 3).reshape(s, b, d))
        return u + self.out_bn(_per_step(self.out, spikes))


class SpikingMLP(nn.Module):
    """u + tdBN(W2 LIF(tdBN(W1 LIF(u)))) on tokens (S, B, dim)."""

    def __init__(self, cfg: FSVEConfig) -> None:
        super().__init__()
        hidden = max(1, round(cfg.dim * cfg.mlp_ratio))
        self.lif1 = lif_layer(cfg)
        self.fc1 = _linear(cfg, cfg.dim, hidden)
        self.bn1 = _tdbn1d(cfg, hidden)
        self.lif2 = lif_layer(cfg)
        self.fc2 = _linear(cfg, hidden, cfg.dim)
        self.bn2 = _tdbn1d(cfg, cfg.dim, 0.0)  # starts as the identity

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        h = self.lif2(self.bn1(_per_step(self.fc1, self.lif1(u))))
        return u + self.bn2(_per_step(self.fc2, h))


class FSVE(nn.Module):
    """Spikes (B, frames, H, W) bool/uint8/float -> video embedding (B, out_dim), unnormalised.

    ``frames`` and ``image_size`` are the input the encoder is built for. Needs SpikingJelly
    (a SpklipError with the install command otherwise).
    """

    def __init__(
        self, config: FSVEConfig, frames: int, image_size: tuple[int, int], out_dim: int
    ) -> None:
        super().__init__()
        config.check(frames)
        grid = config.grid(image_size)
        self.config = config
        self.frames = frames
        self.image_size = tuple(image_size)
        self.grid = grid
        self.steps = config.steps
        self.frames_per_step = config.resolved_frames_per_step(frames)
        self.offset = (frames - self.steps * self.frames_per_step) // 2  # centre the window
        cfg = config
        self.stem = nn.Sequential(
            _conv(cfg, self.frames_per_step, cfg.widths[0], 3, cfg.stem_stride),
            _tdbn2d(cfg, cfg.widths[0]),
        )
        stages = []
        cin = cfg.widths[0]
        for width, n, stride in zip(cfg.widths, cfg.blocks, cfg.stage_strides, strict=True):
            stage = [MSBlock(cfg, cin, width, stride)]
            stage += [MSBlock(cfg, width, width, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            cin = width
        self.stages = nn.Sequential(*stages)
        # Spatial readout: a depthwise convolution over the whole grid (a learned weighted sum
        # of each channel's spikes), then a linear map to the token width.
        self.pool_lif = lif_layer(cfg)
        self.pool = _conv(cfg, cin, cin, grid, groups=cin)
        if cfg.pool_init == "mean":  # position-blind at the start, like a global average pool
            nn.init.constant_(self.pool.weight, 1.0 / (grid[0] * grid[1]))
        self.pool_bn = _tdbn2d(cfg, cin)
        self.token_lif = lif_layer(cfg)
        self.token = _linear(cfg, cin, cfg.dim)
        self.token_bn = _tdbn1d(cfg, cfg.dim)
        self.positional_embedding = (
            nn.Parameter(torch.randn(cfg.steps, 1, cfg.dim) * 0.02) if cfg.temporal_pos else None
        )
        self.temporal = nn.ModuleList()
        self.temporal_norm: nn.Module | None = None
        if cfg.temporal == "ann":
            # the hybrid: an ANN Transformer on the real-valued step tokens
            for _ in range(cfg.temporal_layers):
                self.temporal.append(
                    nn.TransformerEncoderLayer(
                        cfg.dim,
                        cfg.temporal_heads,
                        dim_feedforward=max(1, round(cfg.dim * cfg.mlp_ratio)),
                        dropout=0.0,
                        activation="gelu",
                        norm_first=True,
                    )
                )
            self.temporal_norm = nn.LayerNorm(cfg.dim)
        else:
            attention = SpikeDrivenAttention if cfg.attention == "eq9-11" else SpikingSelfAttention
            for _ in range(cfg.temporal_layers):
                self.temporal.append(attention(cfg))
                self.temporal.append(SpikingMLP(cfg))
        # the hybrid's head reads the Transformer's real-valued tokens
        spiking_head = cfg.readout == "spikes" and cfg.temporal == "spiking"
        self.head_lif = lif_layer(cfg) if spiking_head else None
        self.head = nn.Linear(cfg.dim, out_dim)
        self.head_norm = nn.BatchNorm1d(out_dim) if cfg.head_norm else nn.Identity()

    def to_steps(self, spikes: torch.Tensor) -> torch.Tensor:
        """(B, frames, H, W) -> time-major (S, B, L, H, W) 0/1 in the weights' dtype."""
        b, _, h, w = spikes.shape
        window = spikes.narrow(1, self.offset, self.steps * self.frames_per_step)
        window = window.reshape(b, self.steps, self.frames_per_step, h, w).transpose(0, 1)
        return window.to(self.head.weight.dtype)

    def _ann_temporal(self, x: torch.Tensor) -> torch.Tensor:
        """The hybrid's Transformer over the steps: (S, B, dim) -> (S, B, dim), real values."""
        s = x.shape[0]
        mask = None
        if self.config.temporal_causal:  # True above the diagonal: step s sees steps <= s
            mask = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
        for layer in self.temporal:
            x = layer(x, src_mask=mask)
        assert self.temporal_norm is not None
        return self.temporal_norm(x)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        reset_net = spikingjelly().functional.reset_net
        reset_net(self)  # no state from an earlier batch
        try:
            u = self.stages(self.stem(self.to_steps(spikes)))  # (S, B, C, h, w)
            s, b = u.shape[:2]
            pooled = self.pool_bn(self.pool(self.pool_lif(u))).view(s, b, -1)  # (S, B, C)
            x = self.token_bn(_per_step(self.token, self.token_lif(pooled)))  # (S, B, dim)
            if self.positional_embedding is not None:
                x = x + self.positional_embedding.to(x.dtype)
            if self.temporal_norm is not None:
                x = self._ann_temporal(x)
            else:
                for block in self.temporal:
                    x = block(x)
            if self.head_lif is None:
                return self.head_norm(self.head(x.mean(dim=0)))
            return self.head_norm(_per_step(self.head, self.head_lif(x)).mean(dim=0))
        finally:
            reset_net(self)  # drop the last batch's membrane tensors
