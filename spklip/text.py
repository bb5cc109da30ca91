"""The text encoder: token ids (B, L) -> text embedding (B, embed_dim).

Token embedding + learnable positional embedding, a pre-norm Transformer encoder, a final
LayerNorm, then one feature per text and a linear projection into the joint space.

Choices (configurable, defaults as CLIP):
- ``causal=True``: each token attends only to itself and earlier tokens. The EOS token then
  summarises the whole text, and padding (always after EOS) is never seen by a real token, so
  no padding mask is needed. ``causal=False`` attends both ways and masks the padding.
- ``pool="eos"``: the feature at the EOS token, i.e. the last non-padding position (PAD is id
  0; a text cut to the context length still ends with EOS). ``pool="mean"``: the mean over
  the non-padding tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikesim import check_memory

from .errors import SpklipError
from .tokenizer import PAD_ID

__all__ = ["POOLS", "TextConfig", "TextEncoder"]

POOLS = ("eos", "mean")


@dataclass(frozen=True)
class TextConfig:
    """Text encoder settings; the defaults are the paper's (CLIP's text tower for embed 1024)."""

    vocab_size: int = 8192  # rows of the token table; the tokenizer may use fewer (CLIP: 49408)
    context_length: int = 77  # maximum tokens per text, BOS and EOS included
    width: int = 512  # Transformer width
    heads: int = 8  # attention heads
    layers: int = 12  # Transformer layers
    mlp_ratio: float = 4.0  # MLP hidden size / width
    causal: bool = True  # causal attention mask (see the module docstring)
    pool: str = "eos"  # "eos" or "mean": which feature represents the text
    dropout: float = 0.0  # dropout inside the Transformer

    def __post_init__(self) -> None:
        for name in ("vocab_size", "width", "heads", "layers"):
            if getattr(self, name) < 1:
                raise SpklipError(f"text.{name} = {getattr(self, name)} must be at least 1")
        if self.context_length < 2:
            raise SpklipError(f"text.context_length = {self.context_length} must be at least 2")
        if self.width % self.heads:
            raise SpklipError(f"text.heads = {self.heads} does not divide text.width {self.width}")
        if self.pool not in POOLS:
            raise SpklipError(f"text.pool = {self.pool!r}; choose one of {', '.join(POOLS)}")
        if not 0.0 <= self.dropout < 1.0 or self.mlp_ratio <= 0:
            raise SpklipError("text.dropout must be in [0, 1) and text.mlp_ratio > 0")


class TextEncoder(nn.Module):
    """Token ids LongTensor (B, L), L <= context_length, right-padded with 0 -> (B, out_dim)."""

    def __init__(self, config: TextConfig, out_dim: int) -> None:
        super().__init__()
        self.config = config
        # A damaged or hostile config (vocab_size 1e11 in a checkpoint) is refused before the
        # token table is allocated: float32 tables plus each layer's ~(4 + 2 mlp_ratio) w^2.
        w = config.width
        weights = (config.vocab_size + config.context_length) * w + config.layers * (
            4 + 2 * config.mlp_ratio
        ) * w * w
        check_memory(4 * weights, "the text encoder's weights", error=SpklipError)
        self.token_embedding = nn.Embedding(config.vocab_size, config.width)
        self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(
                config.width,
                config.heads,
                dim_feedforward=round(config.width * config.mlp_ratio),
                dropout=config.dropout,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.width)
        self.projection = nn.Linear(config.width, out_dim, bias=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.projection.weight, std=config.width**-0.5)
        mask = torch.full((config.context_length, config.context_length), float("-inf"))
        self.register_buffer("causal_mask", mask.triu(1), persistent=False)

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise a SpklipError unless ``tokens`` is a valid (B, L) id batch for this encoder."""
        cfg = self.config
        if tokens.ndim != 2 or tokens.dtype not in (torch.long, torch.int32, torch.int64):
            raise SpklipError(
                f"tokens must be an integer tensor (batch, length), got {tuple(tokens.shape)} "
                f"{tokens.dtype}; use SpikeTokenizer.encode_batch"
            )
        if tokens.shape[1] > cfg.context_length:
            raise SpklipError(
                f"tokens have length {tokens.shape[1]} > text.context_length "
                f"{cfg.context_length}; encode with context_length={cfg.context_length}"
            )
        if tokens.numel() and (int(tokens.max()) >= cfg.vocab_size or int(tokens.min()) < 0):
            raise SpklipError(
                f"token id {int(tokens.max())} is outside the model's vocabulary of "
                f"{cfg.vocab_size}; the tokenizer is larger than text.vocab_size - retrain it "
                "with a smaller vocab_size or build the model with a larger text.vocab_size"
            )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.check_tokens(tokens)
        tokens = tokens.long()
        length = tokens.shape[1]
        real = tokens != PAD_ID  # (B, L)
        x = self.token_embedding(tokens) + self.positional_embedding[:length]
        if self.config.causal:
            mask = self.causal_mask[:length, :length].to(x.dtype)
            for layer in self.layers:
                x = layer(x, src_mask=mask, is_causal=True)
        else:
            padding = ~real
            padding[:, 0] = False  # an all-padding row would leave attention nothing to look at
            for layer in self.layers:
                x = layer(x, src_key_padding_mask=padding)
        x = self.norm(x)
        if self.config.pool == "eos":
            last = (real.sum(dim=1) - 1).clamp(min=0)  # right padding: EOS is the last real token
            feature = x[torch.arange(x.shape[0], device=x.device), last]
        else:
            weights = real.to(x.dtype).unsqueeze(-1)
            feature = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return self.projection(feature)
