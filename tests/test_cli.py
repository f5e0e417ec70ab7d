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


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory):
    from segmentation_lib.demo import write_demo_data

    root = tmp_path_factory.mktemp("cli")
    write_demo_data(root / "data", n_customers=300, seed=3)
    cfg = root / "run.yaml"
    cfg.write_text("data:\n  path: data/transactions.parquet\n")
    return cfg


def test_check_data_prints_the_report_and_json(demo_config):
    import json

    text = runner.invoke(app, ["check-data", "--config", str(demo_config)])
    assert text.exit_code == 0, text.output
    assert "duplicates" in text.output
    js = runner.invoke(app, ["check-data", "--config", str(demo_config), "--json"])
    report = json.loads(js.output)
    assert report["rows_in"] - report["rows_excluded"] == report["rows_out"]
    assert report["customers_in"] == report["customers_out"] + report["customers_dropped"]


def test_check_data_fails_when_too_many_rows_are_excluded(demo_config):
    # the demo log has planted duplicates and null ids (about 0.3% of rows)
    strict = runner.invoke(app, ["check-data", "--config", str(demo_config), "--max-excluded-share", "0.0001"])
    assert strict.exit_code == 1 and "excluded" in strict.output
    lenient = runner.invoke(app, ["check-data", "--config", str(demo_config), "--max-excluded-share", "0.5"])
    assert lenient.exit_code == 0
