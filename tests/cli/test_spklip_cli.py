"""`spklip train` and `spklip eval` from the command line, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.spklip_cli import app, main
from tests.spklip.test_data import make_converted
from tests.spklip.training.test_loop import MINI


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_converted(tmp_path_factory.mktemp("conv"), per_class=3, frames=16, size=(8, 16))


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """The installed `spklip` entry point, in process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_train_then_eval_from_the_command_line(data, tmp_path):
    run = tmp_path / "run"
    sets = [f"--set={key}={json.dumps(value)}" for key, value in MINI.items()]
    trained = CliRunner().invoke(
        app,
        ["train", "--data", str(data), "--model", "spklip-tiny", "--out", str(run),
         "--epochs", "1", "--batch-size", "2", "--lr", "0.003", "--loader-workers", "0",
         "--seed", "1", "--captions", "prompt", "--threads", "1", *sets],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert "trained 1 epochs" in trained.output
    assert (run / "checkpoints" / "epoch_001" / "model.safetensors").is_file()
    assert len((run / "results.jsonl").read_text().splitlines()) == 1
    assert "best on validation: epoch 1" in trained.output
    # --split val is the run's own carved validation split (run/splits.json)
    val = CliRunner().invoke(app, ["eval", "--checkpoint", str(run), "--data", str(data),
                                   "--split", "val", "--out", str(tmp_path / "v")])  # fmt: skip
    assert val.exit_code == 0, val.output
    splits = json.loads((run / "splits.json").read_text())
    assert json.loads((tmp_path / "v" / "eval.json").read_text())["clips"] == len(splits["val"])

    out = tmp_path / "evaldir"
    evaluated = CliRunner().invoke(
        app, ["eval", "--checkpoint", str(run), "--data", str(data), "--out", str(out)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "zero-shot top-1" in evaluated.output
    result = json.loads((out / "eval.json").read_text())
    assert result["split"] == "test" and result["clips"] == 2
    assert {"top1", "top5", "per_class"} <= result["zero_shot"].keys()
    assert (out / "confusion.png").is_file()  # in --out, never in the working directory
    printed = CliRunner().invoke(app, ["eval", "--checkpoint", str(run), "--data", str(data)])
    assert json.loads(printed.output)["retrieval"]["texts"] == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "{data}", "--model", "nope", "--out", "{tmp}/a"], "unknown model"),
        (["train", "--data", "{tmp}/missing", "--out", "{tmp}/b"], "no such dataset"),
        (["eval", "--checkpoint", "{tmp}", "--data", "{data}"], "no checkpoint in this folder"),
        (["eval", "--checkpoint", "{tmp}/bad.pt", "--data", "{data}"], "not a spklip checkpoint"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "{data}", "--split", "dev"], "no clips"),
        (["eval", "--checkpoint", "{ckpt}", "--data", "{data}"], "corrupt"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(data, tmp_path, capsys, argv, message):
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 10)
    (ckpt / "config.json").write_text('{"format": "spklip-checkpoint/1", "model_config": {}}')
    (ckpt / "tokenizer.json").write_text("{}")
    if message == "no clips":  # a readable checkpoint, so that the data is what fails
        (ckpt / "model.safetensors").unlink()
        (ckpt / "config.json").unlink()
        code, _, err = run_main(
            ["train", "--data", str(data), "--model", "spklip-tiny", "--out", str(ckpt / "r"),
             "--epochs", "1", "--batch-size", "2", "--loader-workers", "0", "--threads", "1",
             *[f"--set={k}={json.dumps(v)}" for k, v in MINI.items()]],
            capsys,
        )  # fmt: skip
        assert code == 0, err
        ckpt = ckpt / "r"
    args = [a.format(data=data, tmp=tmp_path, ckpt=ckpt) for a in argv]
    code, _, err = run_main(args, capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]


def test_prompts_exclude_classes_and_retrieve(data, tmp_path, capsys):
    run = tmp_path / "run"
    sets = [f"--set={key}={json.dumps(value)}" for key, value in MINI.items()]
    code, _, err = run_main(
        ["train", "--data", str(data), "--model", "spklip-tiny", "--out", str(run),
         "--epochs", "1", "--batch-size", "2", "--loader-workers", "0", "--threads", "1",
         "--captions", "prompt", "--exclude-classes", "MoveRight", *sets],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    config = json.loads(next(run.glob("checkpoints/epoch_*/config.json")).read_text())
    assert config["exclude_classes"] == ["MoveRight"]
    # eval scores the left-out class apart, with texts from a prompts file
    prompts = tmp_path / "prompts.json"
    texts = {"MoveLeft": ["it travels leftwards"], "MoveRight": ["it goes rightwards", "right"]}
    prompts.write_text(json.dumps(texts))
    code, out, err = run_main(
        ["eval", "--checkpoint", str(run), "--data", str(data), "--split", "all",
         "--prompts", str(prompts), "--loader-workers", "0"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    zero_shot = json.loads(out)["zero_shot"]
    assert zero_shot["unseen_classes"] == ["MoveRight"]
    assert 0 <= zero_shot["unseen_top1"] <= 1 and 0 <= zero_shot["seen_top1"] <= 1
    # a prompts file that misses a class is one line
    prompts.write_text(json.dumps({"MoveLeft": ["left"]}))
    code, _, err = run_main(
        ["eval", "--checkpoint", str(run), "--data", str(data), "--prompts", str(prompts)], capsys
    )
    assert code == 2 and "MoveRight" in err and err.count("\n") == 1
    # retrieve lists the top clips, best first
    code, out, err = run_main(
        ["retrieve", "--checkpoint", str(run), "--data", str(data), "--query",
         "a square moves left", "--top", "3", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    hits = json.loads(out)
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    from spklip.evaluation.zeroshot import retrieve

    assert retrieve(run, data, "a square moves left", top=3) == hits
    code, _, err = run_main(
        ["train", "--data", str(data), "--out", str(tmp_path / "x"), "--exclude-classes", "Nope"],
        capsys,
    )
    assert code == 2 and "Nope" in err


def test_caption_weight_reaches_the_run_and_must_be_non_negative(data, tmp_path):
    from spklip.checkpoint import latest_checkpoint, load_checkpoint

    run = tmp_path / "run"
    sets = [f"--set={key}={json.dumps(value)}" for key, value in MINI.items()]
    base = ["train", "--data", str(data), "--model", "spklip-tiny", "--out", str(run),
            "--epochs", "1", "--batch-size", "2", "--loader-workers", "0", "--threads", "1",
            "--captions", "both", *sets]  # fmt: skip
    bad = CliRunner().invoke(app, [*base, "--caption-weight", "-1"])
    assert bad.exit_code == 2 and "--caption-weight" in bad.output
    trained = CliRunner().invoke(app, [*base, "--caption-weight", "2.5"])
    assert trained.exit_code == 0, trained.output
    saved = load_checkpoint(latest_checkpoint(run)).config["train_config"]
    assert saved["caption_weight"] == 2.5 and saved["captions"] == "both"


def test_the_cli_offers_every_caption_mode_of_the_data():
    from cli.commands_spklip import _CAPTION_MODES
    from spklip.data import CAPTION_MODES

    assert sorted(_CAPTION_MODES) == sorted(CAPTION_MODES)
