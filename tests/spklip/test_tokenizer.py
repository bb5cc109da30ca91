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


# --- the fixed byte tokenizer (the default kind) and the kind/version/sha256 record ----------


def byte_ids(text: str) -> list[int]:
    """The contract of the byte kind, written out: id 3 + b for each UTF-8 byte b of the
    NFKC-normalised, lower-cased text with one leading space."""
    import unicodedata

    return [3 + b for b in (" " + unicodedata.normalize("NFKC", text).lower()).encode()]


@pytest.mark.parametrize(
    "text", ["a person waving", "A Square GROWS, fast!", "Ça tourne à 90° — ½ tour", "雪 ❄ 🙂"]
)
def test_byte_tokenizer_ids_are_the_bytes_and_round_trip(text: str) -> None:
    tok = SpikeTokenizer.bytes()
    assert (tok.kind, tok.version, tok.vocab_size) == ("bytes", "1", 259)
    assert tok.encode(text) == byte_ids(text)
    import unicodedata

    assert tok.decode(tok.encode(text)) == unicodedata.normalize("NFKC", text).lower()


def test_byte_tokenizer_is_the_same_every_time_and_survives_json() -> None:
    a, b = SpikeTokenizer.bytes(), SpikeTokenizer.bytes()
    assert a.sha256 == b.sha256 and a.to_json() == b.to_json()
    again = SpikeTokenizer.from_json(a.to_json())
    assert again.describe() == a.describe()
    assert again.encode("<eos> is text") == byte_ids("<eos> is text")  # never a special token


def test_byte_batches_pad_and_cut_to_the_context_length() -> None:
    tok = SpikeTokenizer.bytes()
    batch = tok.encode_batch(["a disc", "x" * 500], context_length=16)
    assert batch.shape == (2, 16) and batch.dtype == torch.long
    assert batch[0].tolist() == [BOS_ID, *byte_ids("a disc"), EOS_ID] + [PAD_ID] * 7
    assert batch[1, 0] == BOS_ID and batch[1, -1] == EOS_ID
    assert batch[1, 1:-1].tolist() == byte_ids("x" * 500)[:14]
    with pytest.raises(SpklipError, match="strings"):
        tok.encode_batch([b"bytes"], 16)


def test_format_1_bpe_json_loads_as_bpe_run(tok: SpikeTokenizer) -> None:
    import json

    body = json.loads(tok.to_json())["tokenizer"]
    old = json.dumps({"format": "spklip-tokenizer/1", "tokenizer": body})
    loaded = SpikeTokenizer.from_json(old)
    assert (loaded.kind, loaded.version) == ("bpe-run", "1")
    assert loaded.encode("a zebra brushing hair") == tok.encode("a zebra brushing hair")
    assert tok.kind == "bpe-run" and tok.describe()["sha256"] == loaded.sha256


def test_a_tampered_tokenizer_json_is_refused_in_one_line() -> None:
    import json

    data = json.loads(SpikeTokenizer.bytes().to_json())
    data["tokenizer"]["model"]["vocab"]["a"] = 5  # one id changed, the recorded hash kept
    with pytest.raises(SpklipError, match="sha256") as info:
        SpikeTokenizer.from_json(json.dumps(data))
    assert "\n" not in str(info.value)
    data = json.loads(SpikeTokenizer.bytes().to_json())
    data["kind"] = "words"
    with pytest.raises(SpklipError, match="kind"):
        SpikeTokenizer.from_json(json.dumps(data))
