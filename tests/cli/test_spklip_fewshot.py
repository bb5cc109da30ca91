"""`spklip fewshot` from the command line, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.spklip_cli import main
from tests.spklip.test_data import make_converted
from tests.spklip.training.test_fewshot import CLASSES, SIZE, write_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    # 3 training and 2 test clips per class
    root = tmp_path_factory.mktemp("conv")
    return make_converted(root, classes=CLASSES, per_class=5, frames=16, size=SIZE, test_every=2)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("run") / "epoch_001", temporal_layers=0)


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """The installed `spklip` entry point, in process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_fewshot_writes_the_json_and_the_curve(data, ckpt, tmp_path, capsys):
    out = tmp_path / "fs"
    code, stdout, err = run_main(
        ["fewshot", "--checkpoint", ckpt, "--data", data, "--shots", "1,3", "--out", out,
         "--epochs", "2", "--lr", "0.01", "--batch-size", "4", "--threads", "1"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "K=0" in stdout and "K=3" in stdout and "parameters" in stdout
    result = json.loads((out / "fewshot.json").read_text())
    assert list(result["accuracy"]) == ["0", "1", "3"]
    assert result["settings"]["epochs"] == 2 and result["train_clips"]["3"] == 9
    assert (out / "fewshot.png").is_file()

    code, stdout, err = run_main(
        ["fewshot", "--checkpoint", ckpt, "--data", data, "--shots", "1", "--epochs", "1"], capsys
    )
    assert code == 0, err
    assert json.loads(stdout)["shots"] == [1]  # without --out: the JSON on stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--checkpoint", "{tmp}/missing", "--data", "{data}"], "no such checkpoint"),
        (["--checkpoint", "{tmp}/corrupt", "--data", "{data}"], "corrupt"),
        (["--checkpoint", "{ckpt}", "--data", "{tmp}/missing"], "no such dataset"),
        (["--checkpoint", "{ckpt}", "--data", "{tmp}/testonly"], "no clips in split 'train'"),
        (["--checkpoint", "{ckpt}", "--data", "{data}", "--shots", "2,8"], "fewer than 8 shots"),
        (["--checkpoint", "{ckpt}", "--data", "{data}", "--shots", "2,four"], "whole numbers"),
        (["--checkpoint", "{ckpt}", "--data", "{data}", "--shots", "0"], "at least 1"),
    ],
)
def test_bad_input_is_one_line_on_stderr(data, ckpt, tmp_path, capsys, argv, message):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 10)
    (corrupt / "config.json").write_text('{"format": "spklip-checkpoint/1", "model_config": {}}')
    (corrupt / "tokenizer.json").write_text("{}")
    testonly = tmp_path / "testonly"
    testonly.mkdir()
    rows = (data / "manifest.jsonl").read_text().splitlines()
    kept = [r for r in rows if json.loads(r)["split"] == "test"]
    (testonly / "manifest.jsonl").write_text("".join(r + "\n" for r in kept))
    for name in ("classes.txt", "config.yaml"):
        (testonly / name).write_text((data / name).read_text())
    for row in kept:
        rel = json.loads(row)["path"]
        (testonly / rel).parent.mkdir(parents=True, exist_ok=True)
        (testonly / rel).write_bytes((data / rel).read_bytes())
    subs = {"{tmp}": str(tmp_path), "{data}": str(data), "{ckpt}": str(ckpt)}
    args = []
    for a in argv:
        for key, value in subs.items():
            a = a.replace(key, value)
        args.append(a)
    code, stdout, err = run_main(["fewshot", *args, "--epochs", "1"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err and not stdout
