"""The tokenizer: offline byte-level BPE, BOS/EOS/PAD batches, JSON round trip."""

from __future__ import annotations

import pytest
import torch

from spklip.errors import SpklipError
from spklip.tokenizer import BOS_ID, EOS_ID, PAD_ID, SpikeTokenizer

CAPTIONS = [
    "a person applying eye makeup",
    "a video of a person brushing hair",
    "a square growing larger",
    "a square shrinking smaller",
    "a disc rotating clockwise",
    "a disc rotating anticlockwise",
    "a triangle moving left fast",
    "a triangle moving right slowly",
    "a photo of a person playing the violin",
] * 5


@pytest.fixture(scope="module")
def tok() -> SpikeTokenizer:
    return SpikeTokenizer.train(CAPTIONS, vocab_size=400)


def test_special_tokens_have_fixed_ids_and_are_never_read_from_text(
    tok: SpikeTokenizer,
) -> None:
    assert (PAD_ID, BOS_ID, EOS_ID) == (0, 1, 2)
    for marker in ("<pad>", "<bos>", "<eos>"):
        ids = SpikeTokenizer.from_json(tok.to_json()).encode(f"a {marker} b")
        assert not {PAD_ID, BOS_ID, EOS_ID} & set(ids)


def test_vocab_size_is_an_upper_bound(tok: SpikeTokenizer) -> None:
    assert 256 + 3 < tok.vocab_size <= 400


def test_round_trip_gives_back_the_normalised_text(tok: SpikeTokenizer) -> None:
    for text in ["A Person brushing hair", "rotating clockwise, fast!", "Ça tourne 90°"]:
        assert tok.decode(tok.encode(text)) == text.lower()


def test_unseen_class_name_splits_into_known_pieces(tok: SpikeTokenizer) -> None:
    text = "a zebra juggling xylophones"
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert len(ids) > len(text.split())  # the unseen words are broken into smaller pieces
    assert tok.decode(ids) == text
    # seen words are single pieces; "person" was merged during training
    assert len(tok.encode("person")) == 1


def test_encode_batch_layout(tok: SpikeTokenizer) -> None:
    texts = ["a square growing larger", "a disc"]
    batch = tok.encode_batch(texts, context_length=16)
    assert batch.shape == (2, 16) and batch.dtype == torch.long
    for row, text in zip(batch, texts, strict=True):
        ids = tok.encode(text)
        assert row[0] == BOS_ID
        assert row[1 : 1 + len(ids)].tolist() == ids
        assert row[1 + len(ids)] == EOS_ID
        assert (row[2 + len(ids) :] == PAD_ID).all()


def test_long_text_is_cut_and_still_ends_with_eos(tok: SpikeTokenizer) -> None:
    long = " ".join(["a zebra juggling xylophones"] * 10)
    batch = tok.encode_batch([long], context_length=8)
    assert batch.shape == (1, 8)
    assert batch[0, 0] == BOS_ID and batch[0, -1] == EOS_ID
    assert batch[0, 1:-1].tolist() == tok.encode(long)[:6]
    with pytest.raises(SpklipError, match="context_length"):
        tok.encode_batch(["x"], context_length=1)


def test_json_round_trip(tok: SpikeTokenizer, tmp_path) -> None:
    again = SpikeTokenizer.from_json(tok.to_json())
    assert again.to_json() == tok.to_json()
    texts = ["a zebra brushing hair", "rotating anticlockwise"]
    assert torch.equal(again.encode_batch(texts, 12), tok.encode_batch(texts, 12))
    path = tok.save(tmp_path / "tokenizer.json")
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.json"]  # no temporary left
    assert SpikeTokenizer.load(path).to_json() == tok.to_json()


def test_training_is_deterministic(tok: SpikeTokenizer) -> None:
    assert SpikeTokenizer.train(CAPTIONS, vocab_size=400).to_json() == tok.to_json()


@pytest.mark.parametrize(
    "text", ["not json", '{"format": "other"}', '{"format": "spklip-tokenizer/1"}']
)
def test_bad_json_is_a_user_error(text: str) -> None:
    with pytest.raises(SpklipError, match="tokenizer JSON"):
        SpikeTokenizer.from_json(text)


def test_training_needs_texts_and_room_for_bytes() -> None:
    with pytest.raises(SpklipError, match="no texts"):
        SpikeTokenizer.train(["", "  "])
    with pytest.raises(SpklipError, match="vocab_size"):
        SpikeTokenizer.train(CAPTIONS, vocab_size=100)
