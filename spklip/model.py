"""SPKLIP: a CLIP-style model that aligns spike clips (B, T, H, W) with text.

    spikes (B, T, H, W) -> bin -> HSFE -> (B, n_blocks, C, H, W) -> STAR-Net -> (B, embed_dim)
    tokens (B, L)       -> TextEncoder (from scratch) or MiniLM (pretrained) -> (B, embed_dim)

``bin``: with ``temporal_bin`` = K > 1 every run of K raw spike frames is summed into one
count frame (a TFP-like exposure of K steps), so the encoder sees T / K frames. From raw 0/1
frames a small model trained on a few hundred clips memorises the firing phase of single
pixels; counts generalise (docs/training.md, "Temporal binning").

With ``visual: "fsve"`` the video side is the full-spiking encoder of ``spklip.fsve`` instead
(same input and output; it needs the optional SpikingJelly).

Both embeddings are L2-normalised; ``forward`` also returns the contrastive temperature
``logit_scale`` = exp(clamp(parameter, max=ln 100)). The whole model is described by one
frozen :class:`SPKLIPConfig` (sub-configs per part), built by name in ``spklip.factory``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from spikesim import parse_size

from .errors import SpklipError
from .fsve import FSVE, FSVEConfig
from .hsfe import HSFE, HSFEConfig
from .star_net import STARNet, STARNetConfig, token_grid
from .text import TextConfig, build_text_encoder, default_tokenizer
from .tokenizer import SpikeTokenizer

__all__ = ["ENCODERS", "SPKLIP", "VISUALS", "SPKLIPConfig", "SpikeVideoEncoder", "VisualEncoder"]


@dataclass(frozen=True)
class SPKLIPConfig:
    """The whole model; the defaults are the spklip-paper config (the paper's numbers where it
    gives them; the text encoder's sizes are our choice, docs/text.md), except HSFE's SA gate
    and output (see :class:`~spklip.hsfe.HSFEConfig`)."""

    frames: int = 250  # T: raw spike frames per input clip (the sub-blocks are centred in it)
    temporal_bin: int = 1  # K: raw frames summed into each frame HSFE / FSVE sees (T / K)
    image_size: tuple[int, int] = (240, 320)  # (H, W) of the input spikes
    embed_dim: int = 1024  # joint video/text embedding size
    hsfe: HSFEConfig = field(default_factory=HSFEConfig)  # sub-blocks, MTF branches, SA
    star: STARNetConfig = field(default_factory=STARNetConfig)  # MAPResNet + temporal Transformer
    text: TextConfig = field(default_factory=TextConfig)  # text tower and tokenizer
    visual: str = "ann"  # "ann": HSFE + STAR-Net; "fsve": the full-spiking encoder (fsve.*)
    fsve: FSVEConfig = field(default_factory=FSVEConfig)  # used only when visual is "fsve"
    logit_scale_init: float = math.log(1 / 0.07)  # initial log temperature multiplier (CLIP)
    logit_scale_max: float = math.log(100)  # the log scale is clamped here in forward

    def __post_init__(self) -> None:
        if self.frames < 1 or self.embed_dim < 1:
            raise SpklipError("frames and embed_dim must be at least 1")
        if self.temporal_bin < 1 or self.frames % self.temporal_bin:
            raise SpklipError(
                f"frames = {self.frames} must be a multiple of temporal_bin = "
                f"{self.temporal_bin} (>= 1): the encoder sums each run of temporal_bin frames"
            )
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise SpklipError(f"image_size = {list(self.image_size)} must be two positive ints")
        if self.logit_scale_init > self.logit_scale_max:
            raise SpklipError("logit_scale_init must not exceed logit_scale_max")
        if self.visual not in ENCODERS:
            raise SpklipError(f"visual = {self.visual!r}; choose one of {', '.join(VISUALS)}")
        ENCODERS[self.visual].check(self)  # only the chosen encoder's section is used

    @property
    def binned_frames(self) -> int:
        """Frames HSFE / FSVE see: ``frames // temporal_bin`` count frames."""
        return self.frames // self.temporal_bin

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), ready for JSON."""
        return _jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SPKLIPConfig:
        """Build from a nested dict (a model_configs JSON, a checkpoint). Missing keys take
        the defaults; unknown keys and wrong types are a SpklipError."""
        return _dataclass_from_dict(cls, data, "")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _dataclass_from_dict(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise SpklipError(f"config {where.rstrip('.') or 'root'} must be a mapping of keys")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise SpklipError(
            f"unknown config key {where}{unknown[0]}; valid keys here: "
            + ", ".join(where + n for n in names)
        )
    kwargs = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = _dataclass_from_dict(kind, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, kind, where + name)
    return cls(**kwargs)


def _coerce(value: Any, kind: Any, key: str) -> Any:
    """Check ``value`` against a simple annotation (int, float, bool, str, X | None, tuples)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = (a for a in args if a is not type(None))
        return _coerce(value, inner, key)
    if origin is tuple:
        if key.endswith("image_size") and isinstance(value, str):
            value = parse_size(value)  # "60x80", as sizes are written on the command line
        if not isinstance(value, list | tuple):
            raise SpklipError(f"config {key} = {value!r} must be a list")
        if len(args) != 2 or args[1] is not Ellipsis:
            if len(value) != len(args):
                raise SpklipError(f"config {key} = {list(value)} must have {len(args)} items")
        return tuple(_coerce(v, args[0], key) for v in value)
    ok = {
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        str: isinstance(value, str),
    }[kind]
    if not ok:
        raise SpklipError(f"config {key} = {value!r} must be of type {kind.__name__}")
    return float(value) if kind is float else value


class SpikeVideoEncoder(nn.Module):
    """Spikes (B, frames, H, W) bool/uint8/float -> video embedding (B, embed_dim), unnormalised.

    The raw frames are first summed in runs of ``temporal_bin`` (:meth:`bin`); HSFE + STAR-Net
    (or FSVE) are built for the ``frames // temporal_bin`` frames that leaves.
    """

    def __init__(self, config: SPKLIPConfig) -> None:
        super().__init__()
        self.config = config
        self.kind = ENCODERS[config.visual]
        for name, module in self.kind.build(config).items():
            self.add_module(name, module)  # e.g. visual.hsfe, visual.star: stable weight names

    def check_input(self, spikes: torch.Tensor) -> None:
        """Raise a one-line SpklipError unless ``spikes`` is (B, frames, H, W) of this model."""
        cfg = self.config
        h, w = cfg.image_size
        if spikes.ndim != 4:
            raise SpklipError(
                f"spikes have shape {tuple(spikes.shape)}; expected (batch, frames, H, W) = "
                f"(B, {cfg.frames}, {h}, {w})"
            )
        if tuple(spikes.shape[2:]) != (h, w):
            raise SpklipError(
                f"spikes are {spikes.shape[2]}x{spikes.shape[3]} but the model takes {h}x{w}; "
                f"convert or crop the data to {h}x{w}, or build the model with "
                f"image_size={spikes.shape[2]}x{spikes.shape[3]}"
            )
        if spikes.shape[1] != cfg.frames:
            raise SpklipError(
                f"the clip has {spikes.shape[1]} frames but the model takes {cfg.frames}; crop "
                f"or pad the clips to {cfg.frames} frames, or build the model with "
                f"frames={spikes.shape[1]}"
            )

    def bin(self, spikes: torch.Tensor) -> torch.Tensor:
        """(B, frames, H, W) -> (B, frames // temporal_bin, H, W): each run of
        ``temporal_bin`` raw frames summed into one count frame (the input itself when 1).
        Integer and bool spikes give uint8 counts (at most 255 per frame), float stays float:
        the same numbers as binning in the data loader (``SpikeClips(bin=K)``)."""
        k = self.config.temporal_bin
        if k == 1:
            return spikes
        b, t, h, w = spikes.shape
        dtype = None if spikes.is_floating_point() else (torch.uint8 if k <= 255 else torch.int32)
        return spikes.reshape(b, t // k, k, h, w).sum(dim=2, dtype=dtype)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        self.check_input(spikes)
        return self.kind.forward(self, self.bin(spikes))

    def fewshot_layers(self) -> list[str]:
        """Qualified names (from the model root) of the modules few-shot adaptation trains."""
        return [f"visual.{name}" for name in self.kind.fewshot_layers(self)]


# ---------------------------------------------------------------------------- video encoders


@dataclass(frozen=True)
class VisualEncoder:
    """One kind of video encoder (``SPKLIPConfig.visual``): everything SPKLIP and the rest of
    the library ask of it, in one place. A new encoder is one more entry of :data:`ENCODERS`.

    ``check(config)`` raises a one-line SpklipError for a bad section; ``build(config)`` gives
    the submodules of ``model.visual`` by name; ``forward(encoder, binned)`` maps binned spikes
    (B, frames // temporal_bin, H, W) to (B, embed_dim); ``time_steps(config)`` is how many
    steps the energy estimate counts neuron updates over; ``fewshot_layers(encoder)`` names
    the modules (inside ``model.visual``) that few-shot adaptation trains;
    ``grad_checkpointing(encoder, on)`` trades compute for memory where the encoder can.
    """

    name: str
    report_name: str  # its key in energy tables: "ann" or "snn"
    spiking: bool
    check: Callable[[SPKLIPConfig], None]
    build: Callable[[SPKLIPConfig], dict[str, nn.Module]]
    forward: Callable[[SpikeVideoEncoder, torch.Tensor], torch.Tensor]
    time_steps: Callable[[SPKLIPConfig], int]
    fewshot_layers: Callable[[SpikeVideoEncoder], list[str]]
    grad_checkpointing: Callable[[SpikeVideoEncoder, bool], None]


def _ann_check(config: SPKLIPConfig) -> None:
    config.hsfe.check_frames(config.binned_frames)
    if min(token_grid(config.image_size, config.star.stage_strides)) < 1:
        h, w = config.image_size
        raise SpklipError(
            f"image_size {h}x{w} leaves no tokens after STAR-Net's down-sampling; "
            "use a larger image_size or smaller star.stage_strides"
        )
    if config.embed_dim % config.star.temporal_heads:
        raise SpklipError(
            f"star.temporal_heads = {config.star.temporal_heads} does not divide "
            f"embed_dim {config.embed_dim}"
        )


def _ann_build(config: SPKLIPConfig) -> dict[str, nn.Module]:
    return {
        "hsfe": HSFE(config.hsfe, config.binned_frames),
        "star": STARNet(
            config.star,
            in_channels=config.hsfe.features,
            image_size=config.image_size,
            n_blocks=config.hsfe.n_blocks,
            out_dim=config.embed_dim,
        ),
    }


def _ann_fewshot(encoder: SpikeVideoEncoder) -> list[str]:
    # STAR-Net's last two layers: the temporal Transformer's last MLP and norm, or (with no
    # temporal layers) the attention pool's value and output projections.
    temporal = encoder.star.temporal
    if len(temporal.layers):
        last = f"star.temporal.layers.{len(temporal.layers) - 1}"
        return [f"{last}.linear1", f"{last}.linear2", "star.temporal.norm"]
    return ["star.spatial.attnpool.v_proj", "star.spatial.attnpool.out_proj"]


def _ann_checkpointing(encoder: SpikeVideoEncoder, enable: bool) -> None:
    # HSFE's full-resolution residual blocks hold most activations; STAR-Net is left alone:
    # recomputing its BatchNorms would update their running statistics twice.
    encoder.hsfe.grad_checkpointing = enable


def _fsve_fewshot(encoder: SpikeVideoEncoder) -> list[str]:
    fsve = encoder.fsve
    if len(fsve.temporal):
        last = f"fsve.temporal.{len(fsve.temporal) - 1}"
        if fsve.temporal_norm is not None:  # the hybrid: the ANN Transformer's last MLP
            return [f"{last}.linear1", f"{last}.linear2", "fsve.temporal_norm", "fsve.head"]
        return [f"{last}.fc2", f"{last}.bn2", "fsve.head"]
    return ["fsve.token", "fsve.token_bn", "fsve.head"]


ENCODERS: dict[str, VisualEncoder] = {
    "ann": VisualEncoder(
        name="ann",
        report_name="ann",
        spiking=False,
        check=_ann_check,
        build=_ann_build,
        forward=lambda enc, x: enc.star(enc.hsfe(x)),
        time_steps=lambda config: config.hsfe.n_blocks,
        fewshot_layers=_ann_fewshot,
        grad_checkpointing=_ann_checkpointing,
    ),
    "fsve": VisualEncoder(
        name="fsve",
        report_name="snn",
        spiking=True,
        check=lambda config: config.fsve.check(config.binned_frames),
        build=lambda config: {
            "fsve": FSVE(config.fsve, config.binned_frames, config.image_size, config.embed_dim)
        },
        forward=lambda enc, x: enc.fsve(x),
        time_steps=lambda config: config.fsve.steps,
        fewshot_layers=_fsve_fewshot,
        grad_checkpointing=lambda enc, enable: None,  # no recomputation in the spiking encoder
    ),
}
VISUALS = tuple(ENCODERS)  # "ann": HSFE + STAR-Net; "fsve": the full-spiking encoder


class SPKLIP(nn.Module):
    """The SPKLIP model. Build it with ``spklip.factory.create_model(name, ...)``.

    ``tokenizer`` (a :class:`SpikeTokenizer`) is needed only to encode raw strings; it is
    saved beside the weights in checkpoints. When not given, the model gets the one its
    ``text.tokenizer`` names: the fixed byte tokenizer, MiniLM's WordPiece, or none yet for
    ``"bpe-run"`` (training builds it from the run's captions).
    """

    def __init__(self, config: SPKLIPConfig, tokenizer: SpikeTokenizer | None = None) -> None:
        super().__init__()
        self.config = config
        self.visual = SpikeVideoEncoder(config)
        self.text = build_text_encoder(config.text, config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init)))
        self._tokenizer: SpikeTokenizer | None = None
        self.tokenizer = tokenizer if tokenizer is not None else default_tokenizer(config.text)

    @property
    def tokenizer(self) -> SpikeTokenizer | None:
        return self._tokenizer

    @tokenizer.setter
    def tokenizer(self, tokenizer: SpikeTokenizer | None) -> None:
        if tokenizer is None:
            self._tokenizer = None
            return
        if (tokenizer.kind == "minilm") != (self.config.text.encoder == "minilm"):
            raise SpklipError(
                f"a {tokenizer.kind} tokenizer does not fit the {self.config.text.encoder} text "
                "tower; the minilm tower takes minilm_tokenizer() and only it"
            )
        if tokenizer.vocab_size > self.text.vocab_size:
            raise SpklipError(
                f"the tokenizer has {tokenizer.vocab_size} tokens but the model's text.vocab_size"
                f" is {self.text.vocab_size}; retrain the tokenizer with vocab_size <= "
                f"{self.text.vocab_size} or build the model with a larger text.vocab_size"
            )
        self._tokenizer = tokenizer

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts -> LongTensor (B, text.context_length) on the model's device."""
        if self._tokenizer is None:
            raise SpklipError(
                "the model has no tokenizer (text.tokenizer 'bpe-run' is trained on the run's "
                "captions); set model.tokenizer = SpikeTokenizer.train(captions), load a "
                "checkpoint, or build the model with text.tokenizer=bytes"
            )
        tokens = self._tokenizer.encode_batch(texts, self.config.text.context_length)
        return tokens.to(self.device)

    def encode_video(self, spikes: torch.Tensor) -> torch.Tensor:
        """Spikes (B, frames, H, W) bool/uint8/float -> L2-normalised (B, embed_dim) float."""
        return F.normalize(self.visual(spikes.to(self.device)), dim=-1)

    def encode_text(self, texts: Sequence[str] | torch.Tensor) -> torch.Tensor:
        """Texts (list of str) or token ids LongTensor (B, L) -> L2-normalised (B, embed_dim)."""
        if isinstance(texts, torch.Tensor):
            tokens = texts.to(self.device)
        else:
            tokens = self.tokenize(texts)
        return F.normalize(self.text(tokens), dim=-1)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Trade compute for memory in training: HSFE's full-resolution residual blocks (most
        of the activations) keep none and are recomputed in backward. STAR-Net is left alone:
        recomputing its BatchNorms would update their running statistics twice.
        (No effect on an FSVE encoder.)"""
        self.visual.kind.grad_checkpointing(self.visual, enable)

    def scale(self) -> torch.Tensor:
        """The contrastive multiplier exp(min(logit_scale, logit_scale_max)), a 0-d tensor."""
        return self.logit_scale.clamp(max=self.config.logit_scale_max).exp()

    def forward(
        self, spikes: torch.Tensor, tokens: torch.Tensor | Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """Returns ``video_features`` (B, D), ``text_features`` (B', D), both L2-normalised,
        and ``logit_scale`` (0-d, already exponentiated and clamped at 100)."""
        return {
            "video_features": self.encode_video(spikes),
            "text_features": self.encode_text(tokens),
            "logit_scale": self.scale(),
        }
