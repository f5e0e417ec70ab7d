"""The `segment` command line: help everywhere, one-paragraph errors, non-zero exit codes."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from segmentation_lib.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_config(demo_project):
    """The configuration of the session's demo project (1,500 demo customers)."""
    return demo_project.cfg


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


def test_filesystem_errors_are_one_paragraph_with_exit_code_2(tmp_path):
    blocker = tmp_path / "tiny.csv"
    blocker.write_text("a,b\n1,2\n")
    result = runner.invoke(app, ["demo-data", "--out", str(blocker / "sub"), "--n-customers", "10"])
    assert result.exit_code == 2
    assert f"Cannot use the path '{blocker / 'sub'}': '{blocker}' is a file where a folder is expected" in result.output
    assert "Fix:" in result.output and "Traceback" not in result.output


def test_os_error_message_names_path_problem_and_fix():
    from segmentation_lib.cli import os_error_message

    msg = os_error_message(FileNotFoundError(2, "No such file or directory", "/proc/x"))
    assert msg == ("Cannot use the path '/proc/x': the folder does not exist and cannot be created there "
                   "(No such file or directory). Fix: choose a path under a writable folder that exists "
                   "(e.g. one under your home or project).")


def test_demo_data_format_error_names_the_cli_option(tmp_path):
    result = runner.invoke(app, ["demo-data", "--out", str(tmp_path / "d"), "--format", "xlsx"])
    assert result.exit_code == 2
    assert "--format 'xlsx' is not supported. Fix: use --format parquet or --format csv." in result.output
    assert "fmt=" not in result.output
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("command, flag", [("check-data", "--json"), ("run", "--demo")])
def test_plain_flags_show_no_value_placeholder(command, flag):
    lines = [ln for ln in runner.invoke(app, [command, "--help"], terminal_width=120).output.splitlines() if flag in ln]
    assert lines and "<bool>" not in lines[0]


def test_demo_flag_never_stands_in_for_a_missing_real_file(tmp_path):
    cfg = tmp_path / "my_shop.yaml"
    cfg.write_text("run: {name: my_shop}\ndata: {path: raw/transactions.parquet, customers: null, truth: null}\n",
                   encoding="utf-8")
    res = runner.invoke(app, ["run", "--config", str(cfg), "--demo", "--out", str(tmp_path / "reports")])
    assert res.exit_code == 2, res.output
    assert "--demo makes the synthetic demo data only for the demo configuration" in res.output
    assert not (tmp_path / "raw").exists() and not (tmp_path / "reports").exists()
    res = runner.invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "reports")])
    assert res.exit_code == 2 and "data.path" in res.output and "does not exist" in res.output, res.output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())  # nothing half-written
