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


@pytest.mark.parametrize("command", ["demo-data", "check-data", "run", "score", "init"])
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
    report = json.loads(js.stdout)  # progress lines go to stderr, the JSON alone to stdout
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
    assert "Invalid value for '--format'" in result.output and "'xlsx' is not one of 'parquet', 'csv'" in result.output
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


# --------------------------------------------------------------------------- help, version, shared overrides


def _help(*args: str) -> str:
    res = runner.invoke(app, [*args, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    return res.output


def _option_line(text: str, flag: str) -> str:
    return next(ln for ln in text.splitlines() if ln.strip().startswith(flag) or f", {flag}" in ln)


def test_help_follows_click_conventions():
    top = _help()
    assert "--version" in top and "init" in top
    for command in ("demo-data", "check-data", "run", "score", "init"):
        text = _help(command)
        assert "<bool>" not in text and "Usage: segment " + command in text, command
        assert _option_line(text, "--help").split() == ["--help", "Show", "this", "message", "and", "exit."]
    assert "--format [parquet|csv]" in _help("demo-data") or "--format <parquet|csv>" in _help("demo-data")
    assert "DATA_FILE" in _help("init")


def test_version():
    from importlib.metadata import version

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"segment {version('segmentation-kit')}"


# the shared overrides: one definition, the same text wherever a command takes them
SHARED = {"--data": ("check-data", "run"), "--preset": ("check-data", "run", "score"),
          "--as-of": ("check-data", "run", "score"), "--seed": ("run",), "--config": ("check-data", "run")}


@pytest.mark.parametrize("flag, commands", list(SHARED.items()))
def test_every_command_takes_the_same_override_with_the_same_text(flag, commands):
    lines = {c: " ".join(_option_line(_help(c), flag).split()) for c in commands}
    assert len(set(lines.values())) == 1, lines


def test_config_overrides_is_the_one_translation():
    from segmentation_lib.cli import config_overrides

    assert config_overrides() == {}
    got = config_overrides(data="x.csv", preset="online_retail", as_of="2024-01-01", seed=7)
    assert got["data"]["path"].endswith("x.csv") and got["data"]["preset"] == "online_retail"
    assert got["run"] == {"as_of": "2024-01-01", "seed": 7}


def test_run_passes_every_override_to_the_pipeline(monkeypatch, demo_config, tmp_path):
    import segmentation_lib.report.pipeline as pipeline

    seen = {}

    def fake_run_pipeline(config, out_dir=None, **kw):
        seen.update(config=config, out_dir=out_dir, **kw)
        return tmp_path / "index.html"

    monkeypatch.setattr(pipeline, "run_pipeline", fake_run_pipeline)
    log = tmp_path / "other.parquet"
    res = runner.invoke(app, ["run", "-c", str(demo_config), "--data", str(log), "--preset", "online_retail",
                              "--as-of", "today", "--seed", "9"])
    assert res.exit_code == 0, res.output
    assert seen["overrides"] == {"data": {"path": str(log.resolve()), "preset": "online_retail"},
                                 "run": {"as_of": "today", "seed": 9}}
    seen.clear()
    assert runner.invoke(app, ["run", "-c", str(demo_config)]).exit_code == 0
    assert "overrides" not in seen and seen["config"] == demo_config  # no overrides: the file as it is


def test_check_data_overrides_reach_the_configuration_and_progress_is_logged(demo_config, demo_project):
    import json
    import re

    js = runner.invoke(app, ["check-data", "-c", str(demo_config), "--as-of", "2024-06-01", "--json"])
    assert js.exit_code == 0, js.output
    assert json.loads(js.stdout)["as_of"].startswith("2024-06-01")
    # not a terminal: plain timestamped log lines on stderr, no control characters
    log = [ln for ln in js.stderr.splitlines() if ln.strip()]
    assert len(log) == 2 and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ Checking .*", ln) for ln in log), log
    assert log[0].endswith(" ...") and re.search(r": done in \d+\.\d s$", log[1])
    assert "\x1b" not in js.stderr and "\r" not in js.stderr
    bad = runner.invoke(app, ["check-data", "-c", str(demo_config), "--preset", "no_such_preset"])
    assert bad.exit_code == 2 and "no_such_preset" in bad.output and "Traceback" not in bad.output


def test_score_takes_the_preset_override(monkeypatch, tmp_path):
    import segmentation_lib.score.scoring as scoring

    seen = {}
    monkeypatch.setattr(scoring, "score_file", lambda *a, **kw: seen.update(kw) or "scored")
    res = runner.invoke(app, ["score", "-m", "m.joblib", "-d", "log.csv", "-o", str(tmp_path / "s.parquet"),
                              "--preset", "online_retail", "--as-of", "2024-01-01"])
    assert res.exit_code == 0, res.output
    assert seen["overrides"] == {"data": {"preset": "online_retail"}} and seen["as_of"] == "2024-01-01"


def test_default_config_outside_the_repository_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["check-data"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"the kit looked for '{tmp_path / 'configs' / 'default.yaml'}' and '{tmp_path / 'segment.yaml'}'" in res.output
    assert "segment init YOUR_DATA_FILE" in res.output
    missing = runner.invoke(app, ["run", "--config", "nope.yaml"])
    assert missing.exit_code == 2 and str(tmp_path / "nope.yaml") in missing.output and "segment init" in missing.output


def test_init_guesses_the_mapping_shows_it_and_writes_a_working_configuration(tmp_path, monkeypatch):
    import yaml

    from segmentation_lib.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "shop.csv").write_text("Member,Order Date,Order No,Qty,Price,Store\n"
                                       "m1,2024-01-03 10:00,o1,2,5.5,s1\nm2,2024-01-04 11:00,o2,1,3.0,s2\n"
                                       "m1,2024-02-01 09:00,o3,1,8.0,s1\n")
    res = runner.invoke(app, ["init", "shop.csv"])
    assert res.exit_code == 0, res.output
    for line in ("customer_id  <- Member", "timestamp    <- Order Date", "order_id     <- Order No",
                 "quantity     <- Qty", "unit_price   <- Price", "amount       <- (not found)"):
        assert line in res.output
    raw = yaml.safe_load((tmp_path / "segment.yaml").read_text())
    assert raw["data"]["columns"] == {"customer_id": "Member", "timestamp": "Order Date", "amount": None,
                                      "order_id": "Order No", "product_id": None, "quantity": "Qty",
                                      "unit_price": "Price"}
    assert raw["run"]["name"] == "shop" and "# " in (tmp_path / "segment.yaml").read_text()
    assert load_config(tmp_path / "segment.yaml")["data"]["path"] == str(tmp_path / "shop.csv")
    # the default configuration is now found, and the data read with the guessed mapping
    import json

    js = runner.invoke(app, ["check-data", "--json"])
    assert js.exit_code == 0, js.output
    assert json.loads(js.stdout)["rows_out"] == 3
    again = runner.invoke(app, ["init", "shop.csv"])
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output


def test_init_with_a_known_layout_and_a_column_it_cannot_find(tmp_path):
    (tmp_path / "retail.csv").write_text("Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID\n"
                                         "1,A,1,2024-01-01 10:00,2.0,17850\n")
    res = runner.invoke(app, ["init", str(tmp_path / "retail.csv"), "-o", str(tmp_path / "r.yaml")])
    assert res.exit_code == 0, res.output
    assert "data.preset: online_retail" in res.output
    import yaml

    assert yaml.safe_load((tmp_path / "r.yaml").read_text())["data"]["preset"] == "online_retail"
    (tmp_path / "odd.csv").write_text("who,when,paid\na,2024-01-01,3\n")
    odd = runner.invoke(app, ["init", str(tmp_path / "odd.csv"), "-o", str(tmp_path / "o.yaml")])
    assert odd.exit_code == 0 and "Not found: customer_id, timestamp, amount" in odd.output
    assert "NOT FOUND: set it" in (tmp_path / "o.yaml").read_text()


def test_progress_step_in_a_terminal_shows_elapsed_time_and_a_final_line():
    import io

    from rich.console import Console

    from segmentation_lib.report.progress import step

    term = Console(file=io.StringIO(), force_terminal=True, width=80)
    with step("Reading big.csv", console=term):
        pass
    out = term.file.getvalue()
    assert "Reading big.csv: done in 0.0 s" in out and "0:00:00" in out  # the live line had the elapsed time
    with pytest.raises(ValueError):
        with step("Broken", console=term):
            raise ValueError("x")
    assert "Broken: failed after" in term.file.getvalue()


def test_an_interrupted_run_says_exactly_what_was_kept(monkeypatch, tmp_path):
    import segmentation_lib.report.pipeline as pipeline

    # a year of history, so the preflight's holdout check passes and the run reaches its first notebook
    (tmp_path / "tx.csv").write_text("customer_id,timestamp,amount\n1,2023-01-01,5\n1,2024-01-01,5\n", encoding="utf-8")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("run: {name: t}\ndata: {path: tx.csv, customers: null, truth: null}\n", encoding="utf-8")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "execute_notebook", interrupted)
    monkeypatch.setattr(pipeline, "ensure_kernel", lambda: "k")
    res = runner.invoke(app, ["run", "-c", str(cfg), "--out", str(tmp_path / "reports")])
    assert res.exit_code == 130
    failed = [p for p in (tmp_path / "reports").iterdir() if p.name.startswith("failed-")]
    kept = sorted(p.name for p in failed[0].iterdir()) if len(failed) == 1 else []
    assert "FAILED.txt" in kept and not any(name.endswith(".ipynb") for name in kept)  # no notebook ran
    text = " ".join(res.output.split())
    assert "nothing half-written" not in text
    assert f"Interrupted during 01_exploration: no report was published" in text
    assert f"kept in {failed[0]}, which holds {', '.join(kept)} (FAILED.txt says where it stopped)" in text


def test_run_engine_is_a_recorded_override_with_its_choices(monkeypatch, demo_config, tmp_path):
    import segmentation_lib.report.pipeline as pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run_pipeline", lambda config, out_dir=None, **kw: seen.update(kw) or tmp_path)
    res = runner.invoke(app, ["run", "-c", str(demo_config), "--engine", "spark"])
    assert res.exit_code == 0, res.output
    assert seen["overrides"] == {"engine": {"kind": "spark"}}  # written to run_config.yaml and the manifest
    bad = runner.invoke(app, ["run", "-c", str(demo_config), "--engine", "duckdb"])
    assert bad.exit_code == 2 and "'polars', 'spark'" in bad.output
