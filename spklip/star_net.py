"""STAR-Net: a spatial network on each sub-block, then a temporal Transformer across blocks.

Spatial part (the same weights for every sub-block): a ResNet with attention pooling
("MAPResNet") - a stem of three 3x3 convolutions (the first with stride 2) and a 2x2 average
pool, four stages of bottleneck blocks (stride by average pooling before the last 1x1
convolution, so down-sampling does not drop pixels), and multi-head attention pooling whose
query is the mean token and whose learnable positional embeddings are sized to the real token
grid of the configured input (not a fixed 7x7).

Temporal part: the n_blocks pooled tokens of a clip get learnable temporal position
embeddings, go through a small Transformer encoder, and are averaged into the video
embedding. Without the position embeddings a Transformer followed by a mean is blind to the
order of its tokens, so a clip and its reverse would only differ through HSFE's own filters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SpklipError

__all__ = [
    "AttentionPool2d",
    "Bottleneck",
    "MAPResNet",
    "STARNet",
    "STARNetConfig",
    "TemporalTransformer",
    "token_grid",
]


@dataclass(frozen=True)
class STARNetConfig:
    """STAR-Net settings; the defaults are spklip-paper's: the paper's numbers where it gives
    them, and ``temporal_pos`` (on), which is ours (docs/model.md, "Departures from the
    paper")."""

    layers: tuple[int, ...] = (2, 2, 2, 2)  # bottleneck blocks in each stage
    width: int = 64  # stem width; stage s has width*2**s planes and 4x that many outputs,
    # so four stages end at width*32 channels (2048 for width 64): the pooling dim
    stage_strides: tuple[int, ...] = (1, 2, 2, 2)  # spatial stride of each stage
    heads: int = 8  # heads of the attention pooling
    temporal_layers: int = 2  # Transformer layers over the sub-block tokens (0: mean only)
    temporal_heads: int = 8  # heads of the temporal Transformer (must divide embed_dim)
    temporal_pos: bool = True  # learnable temporal position embeddings (order-aware; ours,
    # the paper states none)
    mlp_ratio: float = 4.0  # hidden size of the temporal Transformer's MLP / embed_dim
    dropout: float = 0.0  # dropout in the temporal Transformer
    pool_grid: tuple[int, int] | None = None  # ours: also a linear map of the last feature
    # map averaged to this (rows, cols) grid, added to the attention pooling's output
    # (zero-initialised): keeps where things are; None: attention pooling only

    def __post_init__(self) -> None:
        if self.pool_grid is not None and min(self.pool_grid) < 1:
            raise SpklipError(f"star.pool_grid = {list(self.pool_grid)} needs two sizes >= 1")
        if not self.layers or any(n < 1 for n in self.layers):
            raise SpklipError(f"star.layers = {list(self.layers)} needs >= 1 block per stage")
        if len(self.stage_strides) != len(self.layers) or any(s < 1 for s in self.stage_strides):
            raise SpklipError(
                f"star.stage_strides = {list(self.stage_strides)} needs one stride >= 1 for "
                f"each of the {len(self.layers)} stages in star.layers"
            )
        if self.width < 2 or self.width % 2:
            raise SpklipError(f"star.width = {self.width} must be an even number >= 2")
        if self.pool_dim % self.heads:
            raise SpklipError(
                f"star.heads = {self.heads} does not divide the pooling dim {self.pool_dim}"
            )
        if self.temporal_layers < 0 or self.temporal_heads < 1:
            raise SpklipError("star.temporal_layers must be >= 0 and star.temporal_heads >= 1")
        if not 0.0 <= self.dropout < 1.0 or self.mlp_ratio <= 0:
            raise SpklipError("star.dropout must be in [0, 1) and star.mlp_ratio > 0")

    @property
    def pool_dim(self) -> int:
        """Channels after the last stage (the attention pooling's width)."""
        return self.width * 2 ** (len(self.layers) - 1) * Bottleneck.expansion


def token_grid(image_size: tuple[int, int], stage_strides: tuple[int, ...]) -> tuple[int, int]:
    """Spatial size (h, w) of the last stage's map for an (H, W) input.

    The stem convolution (3x3, stride 2, padding 1) gives ceil(n/2), the stem pool floor(n/2),
    and each stage with stride s floor(n/s) (average pooling).
    """
    out = []
    for n in image_size:
        n = (n + 1) // 2
        n //= 2
        for s in stage_strides:
            n //= s
        out.append(n)
    return out[0], out[1]


def conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """Convolution (He init, no bias) + BatchNorm."""
    conv = nn.Conv2d(
        in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False
    )
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, (avg-pool stride), 1x1 expand x4; shortcut pools then projects."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.reduce = conv_bn(in_channels, planes, 1)
        self.conv = conv_bn(planes, planes, 3)
        self.pool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.expand = conv_bn(planes, out_channels, 1)
        # Start each residual branch at zero so a deep stack trains from scratch like a shallow one.
        nn.init.zeros_(self.expand[1].weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride > 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.AvgPool2d(stride) if stride > 1 else nn.Identity(),
                conv_bn(in_channels, out_channels, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.reduce(x))
        out = self.pool(F.relu(self.conv(out)))
        return F.relu(self.expand(out) + self.shortcut(x))


class AttentionPool2d(nn.Module):
    """Multi-head attention pooling of a (N, C, h, w) map into (N, out_dim).

    The query is the mean of the h*w tokens; keys and values are the mean token and the h*w
    tokens, each with a learnable positional embedding (1 + h*w of them, for the given grid).
    """

    def __init__(self, grid: tuple[int, int], dim: int, heads: int, out_dim: int) -> None:
        super().__init__()
        self.grid = grid
        self.heads = heads
        self.positional_embedding = nn.Parameter(
            torch.randn(1 + grid[0] * grid[1], dim) / math.sqrt(dim)
        )
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, out_dim)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.normal_(proj.weight, std=dim**-0.5)
            nn.init.zeros_(proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if (h, w) != self.grid:
            raise SpklipError(
                f"attention pooling built for a {self.grid[0]}x{self.grid[1]} token grid got "
                f"{h}x{w}; the input size differs from the model's image_size"
            )
        tokens = x.flatten(2).transpose(1, 2)  # (N, h*w, C)
        tokens = torch.cat([tokens.mean(dim=1, keepdim=True), tokens], dim=1)
        tokens = tokens + self.positional_embedding.to(tokens.dtype)
        head_dim = c // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:  # (N, L, C) -> (N, heads, L, head_dim)
            return t.view(n, -1, self.heads, head_dim).transpose(1, 2)

        q = split(self.q_proj(tokens[:, :1]))
        k = split(self.k_proj(tokens))
        v = split(self.v_proj(tokens))
        pooled = F.scaled_dot_product_attention(q, k, v)  # (N, heads, 1, head_dim)
        return self.out_proj(pooled.transpose(1, 2).reshape(n, c))


class MAPResNet(nn.Module):
    """ResNet with attention pooling: (N, in_channels, H, W) -> (N, out_dim).

    ``image_size`` (H, W) fixes the token grid of the attention pooling.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        out_dim: int,
        *,
        layers: tuple[int, ...] = (2, 2, 2, 2),
        width: int = 64,
        stage_strides: tuple[int, ...] = (1, 2, 2, 2),
        heads: int = 8,
        pool_grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.image_size = tuple(image_size)
        self.grid = token_grid(self.image_size, tuple(stage_strides))
        if min(self.grid) < 1:
            raise SpklipError(
                f"image size {image_size[0]}x{image_size[1]} leaves no tokens after STAR-Net's "
                f"down-sampling (stage strides {list(stage_strides)}); use a larger image_size "
                "or smaller star.stage_strides"
            )
        half = width // 2
        self.stem = nn.Sequential(
            conv_bn(in_channels, half, 3, stride=2),
            nn.ReLU(inplace=True),
            conv_bn(half, half, 3),
            nn.ReLU(inplace=True),
            conv_bn(half, width, 3),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(2),
        )
        stages = []
        channels = width
        for s, (blocks, stride) in enumerate(zip(layers, stage_strides, strict=True)):
            planes = width * 2**s
            stage = [Bottleneck(channels, planes, stride)]
            channels = planes * Bottleneck.expansion
            stage += [Bottleneck(channels, planes) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool_dim = channels
        self.attnpool = AttentionPool2d(self.grid, channels, heads, out_dim)
        self.pool_grid = tuple(pool_grid) if pool_grid is not None else None
        self.grid_proj = None
        if self.pool_grid is not None:  # starts as attention pooling alone
            with torch.random.fork_rng(devices=[]):  # the other weights as without it
                self.grid_proj = nn.Linear(
                    channels * self.pool_grid[0] * self.pool_grid[1], out_dim
                )
            nn.init.zeros_(self.grid_proj.weight)
            nn.init.zeros_(self.grid_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.stages(self.stem(x))
        out = self.attnpool(fmap)
        if self.grid_proj is not None:
            cells = F.adaptive_avg_pool2d(fmap, self.pool_grid).flatten(1)
            out = out + self.grid_proj(cells)
        return out


class TemporalTransformer(nn.Module):
    """(B, n_tokens, dim) -> (B, dim): position embeddings, Transformer layers, mean over time.

    With ``layers == 0`` it is the plain mean (the public code's behaviour; order-blind).
    """

    def __init__(
        self,
        dim: int,
        n_tokens: int,
        *,
        layers: int = 2,
        heads: int = 8,
        position: bool = True,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_tokens = n_tokens
        # A position embedding before a mean alone would only add a constant: none without layers.
        self.positional_embedding = (
            nn.Parameter(torch.randn(n_tokens, dim) * 0.02) if position and layers else None
        )
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                dim,
                heads,
                dim_feedforward=round(dim * mlp_ratio),
                dropout=dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim) if layers else nn.Identity()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens
        if self.positional_embedding is not None:
            x = x + self.positional_embedding.to(x.dtype)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).mean(dim=1)


class STARNet(nn.Module):
    """Sub-block feature maps (B, n_blocks, C, H, W) -> video embedding (B, out_dim)."""

    def __init__(
        self,
        config: STARNetConfig,
        in_channels: int,
        image_size: tuple[int, int],
        n_blocks: int,
        out_dim: int,
    ) -> None:
        super().__init__()
        if out_dim % config.temporal_heads:
            raise SpklipError(
                f"star.temporal_heads = {config.temporal_heads} does not divide embed_dim {out_dim}"
            )
        self.config = config
        self.spatial = MAPResNet(
            in_channels,
            image_size,
            out_dim,
            layers=tuple(config.layers),
            width=config.width,
            stage_strides=tuple(config.stage_strides),
            heads=config.heads,
            pool_grid=config.pool_grid,
        )
        self.temporal = TemporalTransformer(
            out_dim,
            n_blocks,
            layers=config.temporal_layers,
            heads=config.temporal_heads,
            position=config.temporal_pos,
            mlp_ratio=config.mlp_ratio,
            dropout=config.dropout,
        )

    def block_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_blocks, C, H, W) -> one token per sub-block (B, n_blocks, out_dim)."""
        b, n = features.shape[:2]
        return self.spatial(features.flatten(0, 1)).view(b, n, -1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.block_tokens(features))
