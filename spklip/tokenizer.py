"""An offline byte-level BPE tokenizer, trained on the captions and saved with each checkpoint.

Byte-level: the 256 byte values are always in the vocabulary, so any text - an unseen class
name, a typo, a non-ASCII word - splits into known pieces and nothing maps to "unknown".
Text is NFKC-normalised and lower-cased first (captions and prompts are case-insensitive).

A batch is ``[BOS] pieces... [EOS] [PAD]...`` cut or padded to the context length; a text
too long keeps its first pieces and still ends with EOS (the text encoder pools there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .errors import SpklipError

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "SPECIAL_TOKENS", "SpikeTokenizer"]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2  # fixed: the text encoder finds the end of a text by PAD_ID
FORMAT = "spklip-tokenizer/1"
_MIN_VOCAB = 256 + len(SPECIAL_TOKENS)  # every byte plus the special tokens


class SpikeTokenizer:
    """Byte-level BPE with PAD=0, BOS=1, EOS=2. Build it with :meth:`train` or :meth:`from_json`."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        for i, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != i:
                raise SpklipError(
                    f"tokenizer has no {token} at id {i}; train it with SpikeTokenizer.train"
                )
        # A caption that happens to contain "<eos>" is text, not an end marker.
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer

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
        return cls(tok)

    @property
    def vocab_size(self) -> int:
        """Number of token ids (special tokens included); ids are 0..vocab_size-1."""
        return self._tok.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Token ids of one text, without BOS/EOS."""
        return self._tok.encode(text).ids

    def pieces(self, text: str) -> list[str]:
        """The BPE pieces of one text (byte-level strings; "Ġ" marks a leading space)."""
        return self._tok.encode(text).tokens

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
        out = torch.full((len(texts), context_length), PAD_ID, dtype=torch.long)
        for row, enc in enumerate(self._tok.encode_batch(list(texts))):
            ids = [BOS_ID, *enc.ids[: context_length - 2], EOS_ID]
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def to_json(self) -> str:
        """Everything needed to rebuild the tokenizer, as one JSON string (for checkpoints)."""
        return json.dumps({"format": FORMAT, "tokenizer": json.loads(self._tok.to_str())})

    @classmethod
    def from_json(cls, text: str) -> SpikeTokenizer:
        """Rebuild a tokenizer written by :meth:`to_json`."""
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
            tok = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        except Exception as e:  # the tokenizers library raises plain Exception
            raise SpklipError(
                f"tokenizer JSON cannot be read ({str(e).splitlines()[0][:120]}); "
                "the checkpoint or tokenizer file may be corrupt"
            ) from e
        return cls(tok)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path`` (atomically: temporary name, then rename)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SpikeTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def __repr__(self) -> str:
        return f"SpikeTokenizer(vocab_size={self.vocab_size})"
