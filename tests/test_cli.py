"""The `segment` command line: help everywhere, one-paragraph errors, non-zero exit codes."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from segmentation_lib.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["demo-data", "check-data", "run", "score"])
def test_every_subcommand_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_missing_config_is_a_clear_error_not_a_traceback(tmp_path):
    result = runner.invoke(app, ["check-data", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert "Traceback" not in result.output
