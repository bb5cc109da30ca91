"""`spklip distill`: help text and one-line refusals (the full run is `make demo-events`)."""

from __future__ import annotations

from click.testing import CliRunner

from cli.commands_distill import COMMANDS, distill_cmd


def test_help_and_refusals(tmp_path) -> None:
    assert distill_cmd in COMMANDS
    runner = CliRunner()
    result = runner.invoke(distill_cmd, ["--help"])
    assert (
        result.exit_code == 0 and "--modality" in result.output and "result.json" in result.output
    )
    result = runner.invoke(distill_cmd, ["--modality", "events"])
    assert result.exit_code == 2 and "--out" in result.output
    (tmp_path / "result.json").write_text("{}")
    result = runner.invoke(distill_cmd, ["--out", str(tmp_path)])
    assert result.exit_code == 2 and "overwrite" in result.output
    result = runner.invoke(distill_cmd, ["--modality", "video", "--out", str(tmp_path)])
    assert result.exit_code == 2
    result = runner.invoke(distill_cmd, ["--alpha", "0", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--alpha" in result.output
    result = runner.invoke(distill_cmd, ["--help"])
    assert "--kl-weight" in result.output and "ct+zs" in result.output
