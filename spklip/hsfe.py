"""HSFE, the hierarchical spike feature extractor (paper section 3.1).

A clip of T spike frames is cut into ``n_blocks`` sub-blocks of 2r+1 frames whose centres are
``step`` frames apart (overlapping when step < 2r+1), all centred in the clip. Each sub-block
goes through

- MTF (multi-scale temporal filtering): ``n_branches`` parallel branches read nested, centred
  windows of the sub-block. Branch i reads 2*i*``channel_step`` frames fewer than branch 0
  (photon conservation: the spikes a pixel fires over a window count its light, so a shorter
  window is a shorter exposure). Each branch scales its frames by a learnable temporal mask
  (initialised to 1), then the frames, as the input channels of 3x3 convolutions, give a map.
- SA (spatial attention): a small convolutional gate looks at all branch maps and gives a
  per-pixel weight W^i to each branch (sigmoid per branch, or softmax across branches). With
  ``sa_output: "stack"`` (the paper's Fig. 2, spklip-paper) the gated maps W^i * H^i are
  stacked, [W^1 * H^1, ..., W^m * H^m] (m x branch_channels channels), and the fusion
  convolution reads all of them; with ``"sum"`` (ours, spklip-tiny) they are summed into one
  branch_channels map first. The fused map is refined by residual 3x3 convolutions at full
  resolution.

Optionally (``motion: "flow"``, not in the paper) a motion stage reads the whole sub-block
too: per pixel, the gradient-based (Lucas-Kanade) estimate of the local velocity (u, v) over
the block and its circulation and divergence in a Gaussian window (:class:`MotionFlow`);
the four maps join the fused MTF map before the fusion convolution. The MTF convolutions
hold one free weight per frame, so a detector of local motion direction has to be learned
anew for every frame position; trained from scratch on a few hundred clips they learn
global changes (growth, travel across the frame) but not the sense of a rotation, which is
only visible as local motion curling round the object; the circulation map holds it at the
object's centre (docs/model.md).

Every sub-block shares the same weights: the blocks are folded into the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .errors import SpklipError

__all__ = ["HSFE", "HSFEConfig", "MTFBranch", "MotionFlow", "ResidualBlock", "SpatialGate"]

FUSIONS = ("attention", "mean")
MOTIONS = ("none", "flow")
MOTION_MAPS = 4  # u, v, circulation, divergence
GATES = ("softmax", "sigmoid")
SA_OUTPUTS = ("stack", "sum")


@dataclass(frozen=True)
class HSFEConfig:
    """HSFE settings; the defaults are the paper's (spklip-paper) except ``gate`` and
    ``sa_output``, which keep the values older checkpoints were trained with (spklip-paper's
    JSON sets the paper's sigmoid gates and stacked output)."""

    n_blocks: int = 5  # sub-blocks per clip; the paper's ablation tries 3, 5, 7
    radius: int = 30  # r: a sub-block holds 2r+1 frames
    step: int | None = 45  # frames between neighbouring block centres; None spreads the blocks
    # over the whole input (step = (frames - (2r+1)) // (n_blocks - 1))
    n_branches: int = 4  # MTF branches, i.e. temporal scales
    channel_step: int = 1  # branch i reads 2*i*channel_step frames fewer than the full window
    channel_slicing: bool = True  # False: every branch reads the full window (ablation)
    branch_width: int = 16  # channels of each branch's hidden 3x3 convolution
    branch_channels: int = 16  # channels of each branch's output map (the map SA weighs)
    fusion: str = "attention"  # "attention": SA gate (MTF+SA); "mean": plain average (MTF only)
    gate: str = "softmax"  # how SA normalises its per-pixel weights: "softmax" (across
    # branches) or "sigmoid" (each branch on its own, the paper's)
    sa_output: str = "sum"  # "stack": the gated branch maps stacked (m x branch_channels
    # channels into the fusion conv, the paper's); "sum": summed into one map (ours)
    gate_width: int = 16  # hidden channels of the SA gate
    features: int = 64  # channels of the output feature map of a sub-block
    res_blocks: int = 6  # residual blocks after the fusion, at full resolution
    res_convs: int = 3  # 3x3 convolutions in each residual block
    motion: str = "none"  # "flow": add local-motion maps per sub-block (MotionFlow); "none": paper
    motion_sigma: float = 4.0  # pixels: the window of the flow's circulation and divergence

    def __post_init__(self) -> None:
        positive = (
            "n_blocks",
            "n_branches",
            "branch_width",
            "branch_channels",
            "gate_width",
            "features",
            "res_convs",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise SpklipError(f"hsfe.{name} = {getattr(self, name)} must be at least 1")
        if self.radius < 0 or self.channel_step < 0 or self.res_blocks < 0:
            raise SpklipError("hsfe.radius, hsfe.channel_step and hsfe.res_blocks must be >= 0")
        if self.motion not in MOTIONS:
            raise SpklipError(f"hsfe.motion = {self.motion!r}; choose one of {', '.join(MOTIONS)}")
        if self.motion_sigma <= 0:
            raise SpklipError(f"hsfe.motion_sigma = {self.motion_sigma} must be > 0 (pixels)")
        if self.motion == "flow" and self.block_length < 2:
            raise SpklipError("hsfe.motion = 'flow' needs sub-blocks of 2 frames or more")
        if self.step is not None and self.step < 1:
            raise SpklipError(f"hsfe.step = {self.step} must be at least 1, or null (spread)")
        if self.fusion not in FUSIONS:
            raise SpklipError(f"hsfe.fusion = {self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.sa_output not in SA_OUTPUTS:
            raise SpklipError(
                f"hsfe.sa_output = {self.sa_output!r}; choose one of {', '.join(SA_OUTPUTS)}"
            )
        if self.gate not in GATES:
            raise SpklipError(f"hsfe.gate = {self.gate!r}; choose one of {', '.join(GATES)}")
        shortest = self.window_lengths()[-1]
        if shortest < 1:
            raise SpklipError(
                f"hsfe: branch {self.n_branches - 1} would read {shortest} frames "
                f"(2r+1 = {self.block_length}, channel_step = {self.channel_step}); "
                "lower hsfe.n_branches or hsfe.channel_step, or raise hsfe.radius"
            )

    @property
    def block_length(self) -> int:
        """Frames in one sub-block, 2r+1."""
        return 2 * self.radius + 1

    def window_lengths(self) -> list[int]:
        """Frames read by each MTF branch, longest first."""
        cut = self.channel_step if self.channel_slicing else 0
        return [self.block_length - 2 * i * cut for i in range(self.n_branches)]

    def resolved_step(self, frames: int) -> int:
        """The block step for an input of ``frames`` frames (``step`` or the even spread)."""
        if self.step is not None:
            return self.step
        if self.n_blocks == 1:
            return 1
        return max(1, (frames - self.block_length) // (self.n_blocks - 1))

    def span(self, frames: int) -> int:
        """Frames covered by all sub-blocks together: 2r+1 + (n_blocks-1)*step."""
        return self.block_length + (self.n_blocks - 1) * self.resolved_step(frames)

    def check_frames(self, frames: int) -> None:
        """Raise unless ``frames`` input frames hold every sub-block."""
        if self.span(frames) > frames:
            raise SpklipError(
                f"hsfe: {self.n_blocks} blocks of 2r+1 = {self.block_length} frames, "
                f"{self.resolved_step(frames)} apart, span {self.span(frames)} frames but the "
                f"input has {frames}; raise frames, or lower hsfe.step / hsfe.radius / "
                "hsfe.n_blocks (hsfe.step=null spreads the blocks over the input)"
            )


def conv3x3(in_channels: int, out_channels: int, *, bias: bool = True) -> nn.Conv2d:
    """A 3x3 convolution that keeps the spatial size, He-initialised for a following ReLU
    (PyTorch's default init shrinks the signal at every layer; HSFE has no normalisation)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


class MTFBranch(nn.Module):
    """One temporal scale: frames [start, start+length) of a sub-block -> a feature map.

    Input (N, 2r+1, H, W) float; output (N, out_channels, H, W).
    """

    def __init__(self, start: int, length: int, width: int, out_channels: int) -> None:
        super().__init__()
        self.start = start
        self.length = length
        # One learnable weight per frame, initialised to 1 (the branch starts as a plain count).
        self.temporal_mask = nn.Parameter(torch.ones(length))
        self.conv1 = conv3x3(length, width)
        self.conv2 = conv3x3(width, out_channels)

    def forward(self, block: torch.Tensor) -> torch.Tensor:
        x = block.narrow(1, self.start, self.length)
        x = x * self.temporal_mask.view(1, -1, 1, 1)
        return self.conv2(F.relu(self.conv1(x)))


class MotionFlow(nn.Module):
    """Local motion of a sub-block: (N, L, H, W) -> (N, 4, H, W): the velocity (u, v) in
    pixels per frame, and its circulation and divergence around each pixel.

    (u, v) is the brightness-constancy estimate (Lucas & Kanade) from spatial and temporal
    differences of the count frames: u = <-I_t I_x> / (<I_x^2 + I_y^2> + c), v likewise,
    where <.> averages over the L-1 frame pairs and a 3x3 neighbourhood and c (one count
    squared) keeps flat, noisy areas near 0. An edge moving right gives u > 0 whatever its
    contrast. Circulation sum_d g(d) (d_x v - d_y u) and divergence sum_d g(d) (d_x u + d_y v)
    over a Gaussian window g of ``sigma`` pixels around each pixel are large at the centre of
    an object that turns (sign: its sense; > 0 clockwise on screen, y pointing down) or
    grows. No learned weights: the layers after it learn what the maps mean.
    """

    def __init__(self, sigma: float = 4.0, damping: float = 1.0) -> None:
        super().__init__()
        self.damping = damping
        r = max(1, round(2.5 * sigma))
        d = torch.arange(-r, r + 1, dtype=torch.float32)
        g = torch.exp(-(d**2) / (2 * sigma**2))
        g = g / g.sum()
        # The 2-D windows are separable: g(dx) g(dy) times dx or dy. Rows: g, d*g.
        self.register_buffer("taps", torch.stack([g, d * g]), persistent=False)
        self.reach = r

    def window(self, maps: torch.Tensor, tap_x: int, tap_y: int) -> torch.Tensor:
        """sum_d taps[tap_x](d_x) taps[tap_y](d_y) maps(p + d), per channel (zero outside)."""
        n, c, h, w = maps.shape
        taps = self.taps.to(maps.dtype)
        x = maps.reshape(n * c, 1, h, w)
        x = F.conv2d(x, taps[tap_x].view(1, 1, 1, -1), padding=(0, self.reach))
        x = F.conv2d(x, taps[tap_y].view(1, 1, -1, 1), padding=(self.reach, 0))
        return x.view(n, c, h, w)

    def forward(self, block: torch.Tensor) -> torch.Tensor:
        smooth = F.avg_pool2d(block, 3, stride=1, padding=1, count_include_pad=False)
        it = smooth[:, 1:] - smooth[:, :-1]  # (N, L-1, H, W)
        mid = F.pad(0.5 * (smooth[:, 1:] + smooth[:, :-1]), (1, 1, 1, 1), mode="replicate")
        ix = 0.5 * (mid[..., 1:-1, 2:] - mid[..., 1:-1, :-2])
        iy = 0.5 * (mid[..., 2:, 1:-1] - mid[..., :-2, 1:-1])
        terms = torch.stack(
            [(-it * ix).mean(1), (-it * iy).mean(1), (ix * ix + iy * iy).mean(1)], dim=1
        )
        terms = F.avg_pool2d(terms, 3, stride=1, padding=1, count_include_pad=False)
        flow = terms[:, :2] / (terms[:, 2:] + self.damping)
        across = self.window(flow, 1, 0)  # sum g(dy) dx g(dx) (u, v)(p + d)
        along = self.window(flow, 0, 1)  # sum dy g(dy) g(dx) (u, v)(p + d)
        circulation = across[:, 1:] - along[:, :1]  # sum g (dx v - dy u)
        divergence = across[:, :1] + along[:, 1:]  # sum g (dx u + dy v)
        return torch.cat([flow, circulation, divergence], dim=1)


class SpatialGate(nn.Module):
    """SA: per-pixel weights of the branches from their concatenated maps.

    Input (N, n_branches*C, H, W); output (N, n_branches, H, W), normalised over branches
    by softmax (weights sum to 1) or sigmoid (each weight in (0, 1) on its own).
    """

    def __init__(self, in_channels: int, n_branches: int, width: int, gate: str) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, width)
        self.conv2 = conv3x3(width, n_branches)
        self.gate = gate

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        logits = self.conv2(F.relu(self.conv1(maps)))
        if self.gate == "softmax":
            return logits.softmax(dim=1)
        return logits.sigmoid()


class ResidualBlock(nn.Module):
    """``n_convs`` 3x3 convolutions with ReLUs between, added to the input, then ReLU."""

    def __init__(self, channels: int, n_convs: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(conv3x3(channels, channels) for _ in range(n_convs))
        # Start as the identity: a deep full-resolution stack without normalisation stays
        # at the scale of its input instead of doubling its variance at every block.
        nn.init.zeros_(self.convs[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for i, conv in enumerate(self.convs):
            out = conv(out if i == 0 else F.relu(out))
        return F.relu(x + out)


class HSFE(nn.Module):
    """Spike clip (B, T, H, W) -> per-sub-block feature maps (B, n_blocks, features, H, W).

    ``frames`` is the number of input frames the model is built for; the sub-blocks are
    centred in it. Spikes may be bool, uint8 0/1 or float; they are cast to the weights' dtype.
    """

    def __init__(self, config: HSFEConfig, frames: int) -> None:
        super().__init__()
        config.check_frames(frames)
        self.config = config
        self.frames = frames
        self.step = config.resolved_step(frames)
        self.offset = (frames - config.span(frames)) // 2  # centre the blocks in the clip
        full = config.block_length
        self.branches = nn.ModuleList(
            MTFBranch((full - length) // 2, length, config.branch_width, config.branch_channels)
            for length in config.window_lengths()
        )
        self.gate = (
            SpatialGate(
                config.n_branches * config.branch_channels,
                config.n_branches,
                config.gate_width,
                config.gate,
            )
            if config.fusion == "attention"
            else None
        )
        self.motion = (
            nn.Sequential(MotionFlow(config.motion_sigma), nn.BatchNorm2d(MOTION_MAPS))
            if config.motion == "flow"
            else None
        )  # BatchNorm: the maps enter at the scale of the MTF maps, whatever the data
        extra = MOTION_MAPS if self.motion is not None else 0
        self.fuse = conv3x3(self.fused_channels + extra, config.features)
        self.body = nn.Sequential(
            *(ResidualBlock(config.features, config.res_convs) for _ in range(config.res_blocks))
        )
        self.grad_checkpointing = False  # recompute the full-resolution blocks in backward

    def _run_body(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.grad_checkpointing and torch.is_grad_enabled()):
            return self.body(x)
        for block in self.body:
            x = checkpoint(block, x, use_reentrant=False)
        return x

    @property
    def fused_channels(self) -> int:
        """Channels of the MTF+SA map the fusion convolution reads (before motion maps)."""
        cfg = self.config
        stacked = cfg.fusion == "attention" and cfg.sa_output == "stack"
        return cfg.branch_channels * (cfg.n_branches if stacked else 1)

    @property
    def block_starts(self) -> list[int]:
        """First input frame of each sub-block."""
        return [self.offset + k * self.step for k in range(self.config.n_blocks)]

    def split_blocks(self, spikes: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) -> (B*n_blocks, 2r+1, H, W) in the weights' dtype (blocks overlap)."""
        if spikes.ndim != 4:
            raise SpklipError(
                f"spikes have shape {tuple(spikes.shape)}; expected (batch, frames, H, W)"
            )
        b, t, h, w = spikes.shape
        if t != self.frames:
            raise SpklipError(
                f"the clip has {t} frames but the model takes {self.frames}; crop or pad the "
                f"clips to {self.frames} frames, or build the model with frames={t}"
            )
        cfg = self.config
        span = cfg.span(self.frames)
        # Views on the compact input dtype; the cast then makes the one (float) copy.
        windows = spikes.narrow(1, self.offset, span).unfold(1, cfg.block_length, self.step)
        # unfold -> (B, n_blocks, H, W, 2r+1): frames back to the channel axis.
        windows = windows.permute(0, 1, 4, 2, 3).to(self.fuse.weight.dtype)
        return windows.reshape(b * cfg.n_blocks, cfg.block_length, h, w)

    def forward(
        self, spikes: torch.Tensor, *, return_gates: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Features (B, n_blocks, features, H, W) float; with ``return_gates`` also the SA
        weights (B, n_blocks, n_branches, H, W) (None when fusion is "mean")."""
        b = spikes.shape[0]
        blocks = self.split_blocks(spikes)
        maps = [branch(blocks) for branch in self.branches]
        if self.gate is None:
            weights = None
            fused = torch.stack(maps).mean(dim=0)
        else:
            weights = self.gate(torch.cat(maps, dim=1))
            gated = [m * weights[:, i : i + 1] for i, m in enumerate(maps)]
            if self.config.sa_output == "stack":
                fused = torch.cat(gated, dim=1)  # [W^1 H^1, ..., W^m H^m]
            else:
                fused = gated[0]
                for g in gated[1:]:
                    fused = fused + g
        if self.motion is not None:
            fused = torch.cat([fused, self.motion(blocks)], dim=1)
        x = F.relu(self.fuse(fused))
        if len(self.body):
            x = x + self._run_body(x)  # long skip: the residual stack refines the fused map
        x = x.view(b, self.config.n_blocks, *x.shape[1:])
        if not return_gates:
            return x
        if weights is not None:
            weights = weights.view(b, self.config.n_blocks, *weights.shape[1:])
        return x, weights
