"""Offline tokenizers: text -> token ids, saved with each checkpoint.

Three kinds (``text.tokenizer`` in a model config):

- ``"bytes"`` (the default): one token per UTF-8 byte, ids ``3 + byte`` after PAD=0, BOS=1,
  EOS=2 (259 ids). Fixed and versioned with the package (:data:`BYTES_VERSION`), so a fresh
  model encodes any text before training.
- ``"bpe-run"``: byte-level BPE whose merges are learned from the run's captions and
  prompts (:meth:`SpikeTokenizer.train`); shorter sequences, but it exists only after
  training starts. Checkpoints written before the byte tokenizer existed hold one.
- ``"minilm"``: the WordPiece vocabulary of all-MiniLM-L6-v2 (``spklip.minilm``), PAD=0,
  BOS=[CLS]=101, EOS=[SEP]=102, for the pretrained text tower.

Byte-level kinds see every text as known pieces (an unseen class name, a typo, a non-ASCII
word): nothing maps to "unknown". Text is NFKC-normalised and lower-cased first (captions and
prompts are case-insensitive).

A batch is ``[BOS] pieces... [EOS] [PAD]...`` cut or padded to the context length; a text
too long keeps its first pieces and still ends with EOS (the text encoder pools there).
Every kind pads with id 0, which the text encoders use to find the end of a text.

:meth:`SpikeTokenizer.to_json` records the kind, its version and the SHA-256 of the
tokenizer's canonical JSON; a checkpoint's ``config.json`` repeats them (``spklip.checkpoint``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from spikesim import write_atomic

from .errors import SpklipError

__all__ = [
    "BOS_ID",
    "BYTES_VERSION",
    "EOS_ID",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "SpikeTokenizer",
]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # fixed: the text encoder finds the end of a text by PAD_ID
TOKENIZER_KINDS = ("bytes", "bpe-run", "minilm")
BYTES_VERSION = "1"  # bump whenever SpikeTokenizer.bytes() would give other ids for some text
FORMAT = "spklip-tokenizer/2"  # adds kind, version and sha256 to format 1 (BPE only)
OLD_FORMAT = "spklip-tokenizer/1"
_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # every byte plus the special tokens


def _byte_symbols() -> list[str]:
    """The printable character standing for each byte 0..255 in byte-level pieces.

    Printable Latin-1 bytes stand for themselves; the others (controls, space, ...) take the
    characters from U+0100 on, in byte order - the table byte-level BPE uses, so the pieces
    of the byte tokenizer and of a run-trained BPE look alike ("Ġ" is the space).
    """
    printable = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    out, extra = [], 0
    for b in range(256):
        if b in printable:
            out.append(chr(b))
        else:
            out.append(chr(0x100 + extra))
            extra += 1
    return out


def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(body: dict) -> str:
    return hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest()


class SpikeTokenizer:
    """A ``tokenizers.Tokenizer`` with a kind, a version and PAD/BOS/EOS ids (PAD is always 0).

    Build it with :meth:`bytes` (the default kind), :meth:`train` (``"bpe-run"``),
    ``spklip.minilm.minilm_tokenizer()`` (``"minilm"``) or :meth:`from_json`.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        kind: str = "bpe-run",
        version: str = "1",
        specials: Sequence[str] = SPECIAL_TOKENS,
    ) -> None:
        if kind not in TOKENIZER_KINDS:
            raise SpklipError(
                f"tokenizer kind {kind!r} is unknown; choose one of {', '.join(TOKENIZER_KINDS)}"
            )
        if len(specials) != 3:
            raise SpklipError("specials must name the PAD, BOS and EOS tokens, in that order")
        ids = [tokenizer.token_to_id(t) for t in specials]
        if None in ids or ids[0] != PAD_ID:
            raise SpklipError(
                f"tokenizer lacks {specials[ids.index(None)] if None in ids else specials[0]}"
                f" or its PAD is not id {PAD_ID}; build it with SpikeTokenizer.bytes or .train"
            )
        # Ids come out raw: BOS/EOS are added by encode_batch, padding and cutting too.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        # A caption that happens to contain "<eos>" is text, not an end marker.
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer
        self.kind, self.version, self.specials = kind, str(version), tuple(specials)
        self.pad_id, self.bos_id, self.eos_id = ids
        self._body = json.loads(tokenizer.to_str())
        self.sha256 = _sha256(self._body)

    @classmethod
    def bytes(cls) -> SpikeTokenizer:
        """The fixed byte tokenizer (kind ``"bytes"``, version :data:`BYTES_VERSION`): ids
        0-2 are PAD/BOS/EOS, id ``3 + b`` is byte ``b`` of the NFKC-normalised, lower-cased
        UTF-8 text (with one leading space, as BPE pieces have). 259 ids, no training."""
        vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        vocab.update({sym: len(SPECIAL_TOKENS) + b for b, sym in enumerate(_byte_symbols())})
        tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens(list(SPECIAL_TOKENS))
        return cls(tok, kind="bytes", version=BYTES_VERSION)

    def describe(self) -> dict[str, str | int]:
        """``{"kind", "version", "sha256", "vocab_size"}``: what a checkpoint records."""
        return {
            "kind": self.kind,
            "version": self.version,
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
        }

    @classmethod
    def train(
        cls, texts: Iterable[str], *, vocab_size: int = 2048, min_frequency: int = 2
    ) -> SpikeTokenizer:
        """Learn merges from ``texts`` (captions and prompt templates), deterministically.

        ``vocab_size`` is an upper bound: a small corpus stops with fewer tokens. Pieces
        seen fewer than ``min_frequency`` times are not merged.
        """
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            raise SpklipError("no texts to train the tokenizer on; pass the captions and prompts")
        if vocab_size < _MIN_VOCAB:
            raise SpklipError(
                f"tokenizer vocab_size {vocab_size} is below {_MIN_VOCAB} (256 bytes + "
                f"{len(SPECIAL_TOKENS)} special tokens); ask for more"
            )
        tok = Tokenizer(models.BPE())
        tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok, kind="bpe-run", version="1")

    @property
    def vocab_size(self) -> int:
        """Number of token ids (special tokens included); ids are 0..vocab_size-1."""
        return self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without BOS/EOS."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def pieces(self, text: str) -> list[str]:
        """The pieces of one text (byte-level strings, "Ġ" marks a leading space; WordPiece
        for ``"minilm"``, "##" marks a continuation)."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of a sequence of ids; special tokens are dropped. The text comes back
        normalised (NFKC, lower case) and without the leading space BPE adds."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self._tok.decode(list(ids), skip_special_tokens=True).strip()

    def encode_batch(self, texts: Sequence[str] | str, context_length: int) -> torch.Tensor:
        """LongTensor (B, context_length): BOS, pieces, EOS, then PAD (0).

        A single string counts as a batch of one. Texts longer than context_length - 2 pieces
        are cut, keeping the EOS at the last position.
        """
        if isinstance(texts, str):
            texts = [texts]
        if context_length < 2:
            raise SpklipError(f"context_length {context_length} leaves no room for BOS and EOS")
        if not all(isinstance(t, str) for t in texts):
            raise SpklipError("texts must be strings (a list of captions or prompts)")
        out = torch.full((len(texts), context_length), PAD_ID, dtype=torch.long)
        encoded = self._tok.encode_batch(list(texts), add_special_tokens=False)
        for row, enc in enumerate(encoded):
            ids = [self.bos_id, *enc.ids[: context_length - 2], self.eos_id]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def to_json(self) -> str:
        """Everything needed to rebuild the tokenizer, as one JSON string (for checkpoints):
        format, kind, version, specials, sha256 and the ``tokenizers`` JSON itself."""
        return json.dumps(
            {
                "format": FORMAT,
                "kind": self.kind,
                "version": self.version,
                "specials": list(self.specials),
                "sha256": self.sha256,
                "tokenizer": self._body,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> SpikeTokenizer:
        """Rebuild a tokenizer written by :meth:`to_json`, or a format-1 one (a run-trained
        BPE, as checkpoints held before the tokenizer kinds existed)."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            fmt = data.get("format")
            if fmt == OLD_FORMAT:
                meta = {"kind": "bpe-run", "version": "1", "specials": SPECIAL_TOKENS}
            elif fmt == FORMAT:
                meta = {k: data[k] for k in ("kind", "version", "specials")}
                if _sha256(data["tokenizer"]) != data.get("sha256"):
                    raise ValueError("its sha256 does not match its content")
            else:
                raise ValueError(f"format is {fmt!r}, expected {FORMAT!r}")
            tok = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        except Exception as e:  # the tokenizers library raises plain Exception
            first = (str(e).splitlines() or [e.__class__.__name__])[0][:120]
            raise SpklipError(
                f"tokenizer JSON cannot be read ({first}); "
                "the checkpoint or tokenizer file may be corrupt"
            ) from e
        return cls(tok, **meta)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path`` (atomically: temporary name, then rename)."""
        path = Path(path)
        write_atomic(path, self.to_json())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SpikeTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return (
            f"SpikeTokenizer(kind={self.kind!r}, version={self.version!r}, "
            f"vocab_size={self.vocab_size})"
        )


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """(B, L) right-padded ids -> (B, L'): the columns after the longest text dropped.

    Exact for every pool and mask here (padding is masked or, causally, never seen), and it
    saves the work of a context_length-wide batch of short captions."""
    if tokens.numel() == 0 or tokens.is_meta:  # meta tensors (FLOP counting) hold no values
        return tokens
    longest = int((tokens != PAD_ID).sum(dim=1).max())
    return tokens[:, : max(longest, 1)]


def check_tokens(tokens: torch.Tensor, context_length: int, vocab_size: int) -> None:
    """Raise a one-line SpklipError unless ``tokens`` is an integer (B, L) tensor with
    L <= ``context_length`` and ids in [0, ``vocab_size``)."""
    if tokens.ndim != 2 or tokens.dtype not in (torch.long, torch.int32, torch.int64):
        raise SpklipError(
            f"tokens must be an integer tensor (batch, length), got {tuple(tokens.shape)} "
            f"{tokens.dtype}; use SpikeTokenizer.encode_batch"
        )
    if tokens.shape[1] > context_length:
        raise SpklipError(
            f"tokens have length {tokens.shape[1]} > text.context_length "
            f"{context_length}; encode with context_length={context_length}"
        )
    if tokens.is_meta:  # shape-only tensors (FLOP counting): no ids to check
        return
    if tokens.numel() and (int(tokens.max()) >= vocab_size or int(tokens.min()) < 0):
        raise SpklipError(
            f"token id {int(tokens.max())} is outside the model's vocabulary of "
            f"{vocab_size}; the tokenizer is larger than text.vocab_size - retrain it "
            "with a smaller vocab_size or build the model with a larger text.vocab_size"
        )
