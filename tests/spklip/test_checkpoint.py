"""Checkpoints: round trip, atomic `latest`, and no unpickling of arbitrary objects."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from spklip import checkpoint as ck
from spklip.errors import SpklipError


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))


def write_epoch(run: Path, epoch: int, model: torch.nn.Module | None = None) -> Path:
    model = model or small_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    state = {
        "epoch": epoch,
        "optimizer": opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "seed": 7,
    }
    return ck.save_checkpoint(
        run / ck.CHECKPOINTS / ck.epoch_dir_name(epoch),
        model,
        config={"model_name": "toy", "epoch": epoch, "classes": ["a", "b"]},
        tokenizer_json='{"toy": true}',
        train_state=state,
    )


def test_round_trip_restores_weights_config_tokenizer_and_training_state(tmp_path):
    model = small_model()
    folder = write_epoch(tmp_path, 3, model)
    assert folder.name == "epoch_003"
    loaded = ck.load_checkpoint(tmp_path, with_train_state=True)
    assert loaded.path == folder
    assert loaded.epoch == 3
    assert loaded.config["classes"] == ["a", "b"]
    assert loaded.config["format"] == ck.FORMAT
    assert loaded.tokenizer_json == '{"toy": true}'
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict[name], value)
    assert loaded.train_state["seed"] == 7
    fresh = small_model()
    opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    opt.load_state_dict(loaded.train_state["optimizer"])  # a real optimizer state
    assert opt.state_dict()["state"][0]["step"] == 1


def test_latest_points_to_the_newest_epoch_and_no_temporaries_remain(tmp_path):
    for epoch in (1, 2):
        write_epoch(tmp_path, epoch)
    ckdir = tmp_path / ck.CHECKPOINTS
    assert (ckdir / "latest").read_text().strip() == "epoch_002"
    assert sorted(p.name for p in ckdir.iterdir()) == ["epoch_001", "epoch_002", "latest"]
    assert ck.latest_checkpoint(tmp_path) == ckdir / "epoch_002"
    # A checkpoint can be named by its run, its checkpoints folder, itself or a file in it.
    for given in (tmp_path, ckdir, ckdir / "epoch_001", ckdir / "epoch_001" / ck.WEIGHTS):
        want = "epoch_001" if "epoch_001" in str(given) else "epoch_002"
        assert ck.resolve_checkpoint(given).name == want
    # A stale pointer falls back to the highest complete folder.
    (ckdir / "latest").write_text("epoch_009\n")
    assert ck.latest_checkpoint(tmp_path) == ckdir / "epoch_002"


def test_a_failed_write_leaves_the_previous_checkpoint_and_no_half_folder(tmp_path, monkeypatch):
    write_epoch(tmp_path, 1)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", boom)
    with pytest.raises(SpklipError, match=r"could not write the checkpoint \(disk full\)"):
        write_epoch(tmp_path, 2)
    ckdir = tmp_path / ck.CHECKPOINTS
    assert sorted(p.name for p in ckdir.iterdir()) == ["epoch_001", "latest"]
    assert ck.load_checkpoint(tmp_path).epoch == 1


class _Marker:
    """Unpickling this would create a file: the attack a checkpoint loader must refuse."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_a_malicious_pickle_named_like_a_checkpoint_is_refused_unexecuted(tmp_path):
    folder = write_epoch(tmp_path, 1)
    marker = tmp_path / "pwned"
    payload = {"epoch": 1, "optimizer": _Marker(str(marker))}
    # Both the plain-pickle and the torch.save container formats.
    (folder / ck.STATE).write_bytes(pickle.dumps(payload))
    with pytest.raises(SpklipError, match="refused to load") as info:
        ck.load_checkpoint(folder, with_train_state=True)
    assert "\n" not in str(info.value)
    torch.save(payload, folder / ck.STATE)
    with pytest.raises(SpklipError, match="refused to load"):
        ck.load_checkpoint(folder, with_train_state=True)
    # As the weights file too: safetensors has no code path at all.
    (folder / ck.WEIGHTS).write_bytes(pickle.dumps(payload))
    with pytest.raises(SpklipError, match="unreadable weights"):
        ck.load_checkpoint(folder)
    assert not marker.exists()


def test_truncated_and_foreign_files_give_one_line_errors(tmp_path):
    folder = write_epoch(tmp_path, 1)
    weights = (folder / ck.WEIGHTS).read_bytes()
    (folder / ck.WEIGHTS).write_bytes(weights[: len(weights) // 2])
    with pytest.raises(SpklipError, match="corrupt") as info:
        ck.load_checkpoint(folder)
    assert "\n" not in str(info.value)
    (folder / ck.WEIGHTS).write_bytes(weights)
    state = (folder / ck.STATE).read_bytes()
    (folder / ck.STATE).write_bytes(state[:100])
    with pytest.raises(SpklipError, match="corrupt"):
        ck.load_checkpoint(folder, with_train_state=True)
    (folder / ck.CONFIG).write_text("{not json")
    with pytest.raises(SpklipError, match="not valid JSON"):
        ck.load_checkpoint(folder)
    (folder / ck.CONFIG).write_text(json.dumps({"hello": 1}))
    with pytest.raises(SpklipError, match="is this a spklip checkpoint"):
        ck.load_checkpoint(folder)
    stray = tmp_path / "model.pt"
    stray.write_bytes(b"\x00" * 64)
    with pytest.raises(SpklipError, match="not a spklip checkpoint"):
        ck.load_checkpoint(stray)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpklipError, match="no checkpoint in this folder"):
        ck.load_checkpoint(empty)
    with pytest.raises(SpklipError, match="no such checkpoint"):
        ck.load_checkpoint(tmp_path / "missing")


def test_weights_of_another_shape_give_one_line_error(tmp_path):
    from spklip import create_model, get_model_config

    wide = create_model("spklip-tiny", embed_dim=64)  # weights that do not fit the config
    config = get_model_config("spklip-tiny")
    folder = ck.save_checkpoint(
        tmp_path / ck.CHECKPOINTS / ck.epoch_dir_name(1),
        wide,
        config={"model_name": "spklip-tiny", "epoch": 1, "model_config": config.to_dict()},
        tokenizer_json="{}",
        train_state={"epoch": 1},
    )
    with pytest.raises(SpklipError, match="do not fit the saved model config") as info:
        ck.load_model(folder)
    assert "\n" not in str(info.value)


# --- which tokenizer a checkpoint used, and checkpoints from before the byte tokenizer ----------


def test_a_model_checkpoint_records_its_tokenizer_and_loads_it_back(tmp_path):
    from spklip import create_model, get_model_config

    model = create_model("spklip-tiny", seed=0).eval()
    folder = ck.save_checkpoint(
        tmp_path / ck.CHECKPOINTS / ck.epoch_dir_name(1),
        model,
        config={"model_name": "spklip-tiny", "epoch": 1, "model_config": model.config.to_dict()},
        tokenizer_json=model.tokenizer.to_json(),
    )
    record = json.loads((folder / ck.CONFIG).read_text())["tokenizer"]
    assert record == {k: model.tokenizer.describe()[k] for k in ("kind", "version", "sha256")}
    assert record["kind"] == "bytes"
    loaded, ckpt = ck.load_model(folder)
    assert ck.checkpoint_tokenizer(ckpt) == record
    assert loaded.tokenizer.sha256 == model.tokenizer.sha256
    with torch.no_grad():
        assert torch.equal(loaded.encode_text(["a disc"]), model.encode_text(["a disc"]))
    # A tokenizer.json swapped for another is caught by the recorded hash.
    from spklip.tokenizer import SpikeTokenizer

    other = SpikeTokenizer.train(["a disc spins", "a square grows"] * 3, vocab_size=300)
    (folder / ck.TOKENIZER).write_text(other.to_json())
    with pytest.raises(SpklipError, match="sha256 differs") as info:
        ck.load_model(folder)
    assert "\n" not in str(info.value)
    assert get_model_config("spklip-tiny").text.tokenizer == "bytes"


def write_old_style_checkpoint(folder: Path, model, tokenizer) -> None:
    """A checkpoint folder as checkpoint.py wrote it before tokenizer kinds (format 1):
    no tokenizer record, a format-1 BPE tokenizer.json, a model_config without the new
    text keys."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True)
    save_model(model, str(folder / ck.WEIGHTS), metadata={"format": "spklip-checkpoint/1"})
    model_config = model.config.to_dict()
    for key in ("encoder", "tokenizer", "adapter", "unfreeze_layers"):
        del model_config["text"][key]
    config = {
        "format": "spklip-checkpoint/1",
        "model_name": "spklip-tiny",
        "model_overrides": {},
        "model_config": model_config,
        "classes": ["a", "b"],
        "epoch": 4,
    }
    (folder / ck.CONFIG).write_text(json.dumps(config, indent=2))
    body = json.loads(tokenizer.to_json())["tokenizer"]
    old = {"format": "spklip-tokenizer/1", "tokenizer": body}
    (folder / ck.TOKENIZER).write_text(json.dumps(old))
    torch.save({"epoch": 4}, folder / ck.STATE)


def test_a_checkpoint_from_before_the_byte_tokenizer_still_loads(tmp_path):
    from spklip import create_model
    from spklip.tokenizer import SpikeTokenizer

    tok = SpikeTokenizer.train(["a disc spins", "a square grows"] * 3, vocab_size=300)
    # The old spklip-tiny: causal, EOS pooling, 32 tokens, a run-trained BPE.
    old = {"text.context_length": 32, "text.tokenizer": "bpe-run", "text.vocab_size": 2048}
    model = create_model("spklip-tiny", seed=0, tokenizer=tok, **old).eval()
    folder = tmp_path / ck.CHECKPOINTS / "epoch_004"
    write_old_style_checkpoint(folder, model, tok)
    loaded, ckpt = ck.load_model(tmp_path)
    assert ckpt.epoch == 4 and loaded.config.text.tokenizer == "bpe-run"
    assert loaded.tokenizer.kind == "bpe-run"
    assert ck.checkpoint_tokenizer(ckpt)["kind"] == "bpe-run"
    with torch.no_grad():
        want = model.encode_text(["a disc spins", "a zebra"])
        assert torch.allclose(loaded.encode_text(["a disc spins", "a zebra"]), want, atol=1e-6)
    # A checkpoint from a future format says so, in one line.
    config = json.loads((folder / ck.CONFIG).read_text())
    (folder / ck.CONFIG).write_text(json.dumps({**config, "format": "spklip-checkpoint/9"}))
    with pytest.raises(SpklipError, match="newer than this spklip reads") as info:
        ck.load_model(tmp_path)
    assert "\n" not in str(info.value)
