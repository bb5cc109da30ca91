"""`spklip energy` and `spklip analyze hsfe | domain-gap` from the command line, and their
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.spklip_cli import app, main
from tests.spklip.evaluation.test_analysis import train_tiny
from tests.spklip.test_data import make_converted


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("analysis_cli")
    data = make_converted(root / "data", per_class=3, frames=16, size=(8, 16))
    other = make_converted(root / "other", per_class=2, frames=16, size=(8, 16), seed=1)
    return {"data": data, "other": other, "run": train_tiny(data, root / "run")}


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    """The installed `spklip` entry point, in process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_energy_writes_json_and_markdown_and_prints_the_table(setup, tmp_path):
    out = tmp_path / "energy"
    result = CliRunner().invoke(
        app,
        ["energy", "--checkpoint", f"tiny={setup['run']}", "--data", str(setup["data"]),
         "--limit", "2", "--out", str(out), "--threads", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "energy.json").read_text())
    assert list(report) == ["tiny"]
    assert {"compute_J", "memory_J", "total_J", "macs", "sops"} <= report["tiny"].keys()
    assert "| per clip | tiny (spklip-tiny, epoch 1) |" in result.output
    assert (out / "energy.md").read_text().strip() in result.output


def test_analyze_hsfe_and_domain_gap_write_figures_and_numbers(setup, tmp_path):
    runner = CliRunner()
    hsfe = runner.invoke(
        app,
        ["analyze", "hsfe", "--checkpoint", str(setup["run"]), "--data", str(setup["data"]),
         "--limit", "2", "--windows", "3", "--out", str(tmp_path)],
    )  # fmt: skip
    assert hsfe.exit_code == 0, hsfe.output
    assert "6 temporal points (windows)" in hsfe.output  # 2 blocks x 3 windows
    numbers = json.loads((tmp_path / "hsfe_dynamics.json").read_text())
    assert len(numbers["clips"]) == 2 and (tmp_path / "hsfe_dynamics.png").stat().st_size > 0

    gap = runner.invoke(
        app,
        ["analyze", "domain-gap", str(setup["data"]), str(setup["other"]),
         "--names", "a,b", "--split", "all", "--out", str(tmp_path)],
    )  # fmt: skip
    assert gap.exit_code == 0, gap.output
    assert gap.output.startswith("a: 6 clips x 16 frames") and "\nb: 4 clips" in gap.output
    numbers = json.loads((tmp_path / "domain_gap.json").read_text())
    assert set(numbers["datasets"]) == {"a", "b"}
    assert (tmp_path / "domain_gap.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["energy", "--checkpoint", "{tmp}/missing", "--data", "{data}"], "no such checkpoint"),
        (["energy", "--checkpoint", "{ckpt}", "--data", "{data}"], "corrupt"),
        (["energy", "--checkpoint", "{run}", "--data", "{tmp}/nodata"], "no such dataset"),
        (["energy", "--checkpoint", "{run}", "--data", "{small}"], "8x8"),
        (["energy", "--checkpoint", "{run}", "--data", "{data}", "--split", "dev"], "no clips"),
        (["analyze", "hsfe", "--checkpoint", "{ckpt}", "--data", "{data}"], "corrupt"),
        (["analyze", "hsfe", "--checkpoint", "{run}", "--data", "{small}"], "8x8"),
        (["analyze", "domain-gap", "{data}", "{tmp}/nodata"], "no such folder"),
        (["analyze", "domain-gap", "{data}", "{data}", "--split", "dev"], "no clips in split"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(setup, tmp_path, capsys, argv, message):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"\x00" * 10)
    (ckpt / "config.json").write_text('{"format": "spklip-checkpoint/1", "model_config": {}}')
    (ckpt / "tokenizer.json").write_text("{}")
    small = make_converted(tmp_path / "small", size=(8, 8), frames=16)
    fill = {"tmp": tmp_path, "ckpt": ckpt, "small": small, **setup}
    code, _, err = run_main([a.format(**fill) for a in argv], capsys)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert message in lines[0]


def test_a_bad_option_value_is_a_usage_error(setup, capsys):
    code, _, err = run_main(
        ["analyze", "domain-gap", str(setup["data"]), str(setup["data"]), "--names", "x"], capsys
    )
    assert code == 2 and "Invalid value for '--names'" in err and "two different names" in err
    assert "Traceback" not in err
