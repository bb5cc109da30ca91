"""The text encoder: token ids (B, L) -> text embedding (B, embed_dim).

Two towers (``text.encoder``):

- ``"transformer"``, trained from scratch: learned token + position embeddings, a pre-norm
  Transformer encoder, a final LayerNorm, one feature per text, a linear projection into the
  joint space.
- ``"minilm"``: the pretrained all-MiniLM-L6-v2 BERT from the ``[text]`` extra, frozen by
  default, with a trainable projection (``spklip.minilm``).

Choices of the from-scratch tower:
- ``causal=False`` (spklip-paper, as the paper's BERT-style encoder): every token attends to
  every non-padding token, both ways; padding is masked out.
- ``causal=True`` (CLIP's text tower; the tiny configs): each token attends only to itself and
  earlier tokens. The EOS token then summarises the whole text, and padding (always after
  EOS) is never seen by a real token, so no padding mask is needed.
- ``pool="mean"``: the mean over the non-padding tokens. ``pool="cls"``: the feature at the
  first token (BOS, which plays BERT's [CLS]; meaningful only when bidirectional). ``pool=
  "eos"``: the feature at the EOS token, the last non-padding position (PAD is id 0; a text
  cut to the context length still ends with EOS).

The paper gives no sizes for its text encoder: the defaults (12 layers, width 512, 8 heads,
context 128 byte tokens) are our choice, of the size of CLIP's text tower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spikesim import check_memory

from .errors import SpklipError
from .tokenizer import PAD_ID, TOKENIZER_KINDS, SpikeTokenizer, check_tokens, trim_padding

__all__ = [
    "ENCODERS",
    "POOLS",
    "TextConfig",
    "TextEncoder",
    "build_text_encoder",
    "check_tokens",
    "default_tokenizer",
    "trim_padding",
]

POOLS = ("eos", "mean", "cls")
ENCODERS = ("transformer", "minilm")


@dataclass(frozen=True)
class TextConfig:
    """Text encoder settings; the defaults are the spklip-paper config's (sizes: our choice,
    the paper gives none; bidirectional with mean pooling as its BERT-style encoder)."""

    vocab_size: int = 259  # rows of the token table: 259 for bytes, the BPE size for bpe-run
    context_length: int = 128  # maximum tokens per text, BOS and EOS included
    width: int = 512  # Transformer width
    heads: int = 8  # attention heads
    layers: int = 12  # Transformer layers
    mlp_ratio: float = 4.0  # MLP hidden size / width
    causal: bool = False  # causal attention mask (see the module docstring)
    pool: str = "mean"  # "mean", "cls" or "eos": which feature represents the text
    dropout: float = 0.0  # dropout inside the Transformer
    encoder: str = "transformer"  # "transformer" (from scratch) or "minilm" (pretrained)
    tokenizer: str = "bytes"  # "bytes" (fixed), "bpe-run" (trained per run) or "minilm"
    adapter: int = 0  # minilm: bottleneck width of a residual adapter after pooling; 0: none
    unfreeze_layers: int = 0  # minilm: train its last N layers (0: the tower stays frozen)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise SpklipError(
                f"text.encoder = {self.encoder!r}; choose one of {', '.join(ENCODERS)}"
            )
        if self.tokenizer not in TOKENIZER_KINDS:
            raise SpklipError(
                f"text.tokenizer = {self.tokenizer!r}; choose one of {', '.join(TOKENIZER_KINDS)}"
            )
        if (self.encoder == "minilm") != (self.tokenizer == "minilm"):
            raise SpklipError(
                "text.encoder 'minilm' and text.tokenizer 'minilm' go together (the pretrained "
                "tower reads its own WordPiece ids); set both or neither"
            )
        if self.tokenizer == "bpe-run" and self.vocab_size <= 259:
            raise SpklipError(
                f"text.tokenizer 'bpe-run' with text.vocab_size {self.vocab_size} leaves no room"
                " for merges beyond the 259 byte and special ids; set text.vocab_size=2048"
            )
        if self.adapter < 0 or self.unfreeze_layers < 0:
            raise SpklipError("text.adapter and text.unfreeze_layers must be >= 0")
        if self.encoder == "transformer" and (self.adapter or self.unfreeze_layers):
            raise SpklipError(
                "text.adapter and text.unfreeze_layers apply to the minilm tower only; "
                "set text.encoder to minilm or leave them at 0"
            )
        for name in ("vocab_size", "width", "heads", "layers"):
            if getattr(self, name) < 1:
                raise SpklipError(f"text.{name} = {getattr(self, name)} must be at least 1")
        if self.context_length < 2:
            raise SpklipError(f"text.context_length = {self.context_length} must be at least 2")
        if self.width % self.heads:
            raise SpklipError(f"text.heads = {self.heads} does not divide text.width {self.width}")
        if self.pool not in POOLS:
            raise SpklipError(f"text.pool = {self.pool!r}; choose one of {', '.join(POOLS)}")
        if self.pool == "cls" and self.causal and self.encoder == "transformer":
            raise SpklipError(
                "text.pool = 'cls' with text.causal = true: the first token sees only itself;"
                " use pool 'eos' or 'mean', or causal false"
            )
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

    @property
    def vocab_size(self) -> int:
        return self.config.vocab_size

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise a SpklipError unless ``tokens`` is a valid (B, L) id batch for this encoder."""
        check_tokens(tokens, self.config.context_length, self.config.vocab_size)

    def token_features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L', width): every token's feature after the final LayerNorm, L'
        the longest text in the batch (the padding columns after it are dropped)."""
        self.check_tokens(tokens)
        tokens = trim_padding(tokens.long())
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
        return self.norm(x)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_features(tokens)
        tokens = trim_padding(tokens.long())
        real = tokens != PAD_ID  # (B, L)
        if self.config.pool == "eos":
            last = (real.sum(dim=1) - 1).clamp(min=0)  # right padding: EOS is the last real token
            feature = x[torch.arange(x.shape[0], device=x.device), last]
        elif self.config.pool == "cls":
            feature = x[:, 0]  # BOS, BERT's [CLS]
        else:
            weights = real.to(x.dtype).unsqueeze(-1)
            feature = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return self.projection(feature)


def build_text_encoder(config: TextConfig, out_dim: int) -> nn.Module:
    """The tower ``config.encoder`` names: (B, L) ids -> (B, out_dim). The minilm tower needs
    the ``[text]`` extra (a one-line SpklipError says so when it is missing)."""
    if config.encoder == "minilm":
        from .minilm import MiniLMTextEncoder

        return MiniLMTextEncoder(config, out_dim)
    return TextEncoder(config, out_dim)


def default_tokenizer(config: TextConfig) -> SpikeTokenizer | None:
    """The tokenizer a fresh model gets: the fixed byte tokenizer, MiniLM's WordPiece, or
    None for ``"bpe-run"`` (trained on the run's captions when training starts)."""
    if config.tokenizer == "bytes":
        return SpikeTokenizer.bytes()
    if config.tokenizer == "minilm":
        from .minilm import minilm_tokenizer

        return minilm_tokenizer()
    return None
