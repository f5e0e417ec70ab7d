"""The bad-input suite (issue 12): each bad input either stops with one paragraph naming the file,
column or row and the fix (exit 2, no traceback, nothing written), or passes with the problem counted.

The commands run in-process (typer's CliRunner) on small files generated in ``tmp_path``; a run that
must stop before its first notebook is started with ``segment run`` and must leave no folder behind.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import signal
import warnings
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from segmentation_lib.cli import app
from segmentation_lib.config import load_config
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.data.quality import clean_transactions, load_transactions
from segmentation_lib.data.read import read_transactions

runner = CliRunner()

HEADER = "customer_id,timestamp,amount\n"
GOOD_ROWS = "a,2024-01-01,5\nb,2024-01-02,6\nc,2024-01-03,7\n"


def project(tmp_path: Path, data: str = "tx.csv", extra: str = "") -> Path:
    """A configuration next to the data file ``data`` (no customers table, no truth)."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"run: {{name: t, seed: 1}}\ndata:\n  path: {data}\n  customers: {{path: null}}\n  truth: null\n{extra}",
                   encoding="utf-8")
    return cfg


def check_data(tmp_path: Path, content: str | bytes | None, name: str = "tx.csv", extra: str = "", args=()):
    """``segment check-data`` on ``content`` written to ``tmp_path/name`` (None: the file exists already)."""
    if content is not None:
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    return runner.invoke(app, ["check-data", "--config", str(project(tmp_path, name, extra)), *args])


def error_text(result, *needles: str, code: int = 2) -> str:
    """The one-paragraph error of a failed command: exit code, no traceback, Fix:, the needles, short."""
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out and result.exception is None or isinstance(result.exception, SystemExit), out
    msg = out[out.index("Error:"):].strip()
    assert "\n" not in msg.strip() and "Fix:" in msg, msg
    assert len(msg) < 1500, f"{len(msg)} characters"
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def ok_report(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # progress lines go to stderr, the JSON alone to stdout


# --------------------------------------------------------------------------- silent data loss


def test_folder_mixing_csv_and_parquet_is_refused_with_the_files(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    pl.DataFrame({"customer_id": ["p"], "timestamp": ["2024-01-01"], "amount": [1.0]}).write_parquet(folder / "a.parquet")
    for i in range(3):
        (folder / f"part{i}.csv").write_text(HEADER + GOOD_ROWS, encoding="utf-8")
    (folder / "README.md").write_text("not data", encoding="utf-8")
    msg = error_text(check_data(tmp_path, None, name="logs"), "mixes data files",
                     "csv: part0.csv, part1.csv, part2.csv", "parquet: a.parquet")
    assert "README" not in msg  # documentation beside the data is not data


def test_folder_of_csv_files_with_a_readme_reads_every_row(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    for i in range(3):
        (folder / f"part{i}.csv").write_text(HEADER + GOOD_ROWS.replace("a,", f"a{i},"), encoding="utf-8")
    (folder / "README.md").write_text("not data", encoding="utf-8")
    report = ok_report(check_data(tmp_path, None, name="logs", args=["--json"]))
    assert report["rows_in"] == 9 and report["customers_in"] == 5  # a0, a1, a2, b, c


def test_excel_scientific_ids_stop_instead_of_merging_customers(tmp_path):
    rows = "1.23457E+11,2024-01-01,5\n1.23457E+11,2024-01-02,6\n17850,2024-01-03,7\n"
    error_text(check_data(tmp_path, HEADER + rows), "tx.csv", "customer_id", "scientific notation",
               "'1.23457E+11'", "export the ids as text")


def test_order_ids_in_scientific_notation_stop_too(tmp_path):
    text = "customer_id,timestamp,amount,order_id\na,2024-01-01,5,4.5E+10\nb,2024-01-02,6,4.5E+10\n"
    error_text(check_data(tmp_path, text), "order_id", "scientific notation")


def test_ids_with_an_e_that_are_not_numbers_are_kept(tmp_path):
    text = HEADER + "E1,2024-01-01,5\n1E,2024-01-02,6\nabcE+5x,2024-01-02,6\n3E10,2024-01-02,6\n2e5,2024-01-02,6\n"
    assert ok_report(check_data(tmp_path, text, args=["--json"]))["customers_in"] == 5


def test_duplicated_header_name_is_refused(tmp_path):
    error_text(check_data(tmp_path, "customer_id,timestamp,amount,amount\na,2024-01-01,5,7\n"),
               "tx.csv", "amount more than once")


def test_yaml_duplicated_key_is_refused(tmp_path):
    (tmp_path / "tx.csv").write_text(HEADER + GOOD_ROWS, encoding="utf-8")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("data:\n  path: tx.csv\n  customers: {path: null}\n  path: other.csv\n", encoding="utf-8")
    msg = error_text(runner.invoke(app, ["check-data", "--config", str(cfg)]), "cfg.yaml", "'path' appears twice",
                     "lines 2 and 4")
    assert "other.csv" not in msg


def test_segment_map_file_with_duplicated_key_is_refused(tmp_path):
    from segmentation_lib.segment.rfm_maps import load_segment_map

    p = tmp_path / "map.yaml"
    p.write_text("name: m\nbins: 5\nsegments:\n  - {name: A, r: [1, 5]}\nname: n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'name' appears twice"):
        load_segment_map(str(p))


def test_one_source_column_for_two_canonical_columns_is_refused(tmp_path):
    extra = "  columns: {customer_id: cid, timestamp: ts, amount: amt, order_id: cid}\n"
    error_text(check_data(tmp_path, "cid,ts,amt\na,2024-01-01,5\n", extra=extra),
               "'cid' is mapped to customer_id and order_id")


def test_two_digit_years_stop_with_the_format_to_use(tmp_path):
    rows = "a,24-12-25,5\nb,24-12-26,6\n"
    error_text(check_data(tmp_path, HEADER + rows), "tx.csv", "column 'timestamp'", "'24-12-25' read as year 0024",
               "'%y-%m-%d'")
    fixed = ok_report(check_data(tmp_path, HEADER + rows, extra="  date_format: '%y-%m-%d'\n", args=["--json"]))
    assert fixed["as_of"].startswith("2024-12-27") and fixed["rows_out"] == 2


def test_as_of_with_a_two_digit_year_is_refused(tmp_path):
    error_text(check_data(tmp_path, HEADER + GOOD_ROWS, args=["--as-of", "0024-12-25"]), "run.as_of", "0024-12-25",
               "four digits")
    with pytest.raises(ConfigError, match="outside the years"):
        clean_transactions(read_transactions(_write(tmp_path, HEADER + GOOD_ROWS)), as_of="9999-01-01")


def test_a_9999_placeholder_row_is_counted_and_does_not_move_as_of(tmp_path):
    rows = GOOD_ROWS + "d,9999-12-31,6\ne,1899-12-31,4\n"
    report = ok_report(check_data(tmp_path, HEADER + rows, args=["--json"]))
    rule = next(r for r in report["rules"] if r["rule"] == "implausible_timestamp")
    assert (rule["rows"], rule["excluded"], rule["customers"]) == (2, 2, 2)
    assert report["as_of"].startswith("2024-01-04") and report["rows_out"] == 3
    assert report["customers_dropped_by_reason"] == {"implausible_timestamp": 2}


def test_implausible_timestamp_error_policy_stops(tmp_path):
    rows = GOOD_ROWS + "d,9999-12-31,6\n"
    error_text(check_data(tmp_path, HEADER + rows, extra="quality: {implausible_timestamp: error}\n"),
               "1 row(s)", "quality.implausible_timestamp")


def test_check_data_stops_at_the_runs_exclusion_limit_by_default(tmp_path):
    rows = "a,2024-01-01,5\n,2024-01-02,6\n,2024-01-03,7\n"  # 2 of 3 rows have no customer
    result = check_data(tmp_path, HEADER + rows)
    assert "null_customer" in result.output  # the report is printed first
    error_text(result, "excluded 2 of 3 rows (66.7%)", "quality.max_excluded_share (50%)")
    lenient = check_data(tmp_path, None, extra="quality: {max_excluded_share: 0.9}\n")
    assert lenient.exit_code == 0, lenient.output
    # the same data and configuration stop `segment run` by the same rule (load_transactions + the policy)
    cfg = load_config(project(tmp_path))
    _, report = load_transactions(cfg)
    with pytest.raises(DataError, match="max_excluded_share"):
        report.policy.check_excluded_share(report)


# --------------------------------------------------------------------------- crashes and hangs


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def fail(signum, frame):  # noqa: ARG001
        raise TimeoutError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "tx.csv")
    with deadline(30):
        result = check_data(tmp_path, None)
    error_text(result, "tx.csv", "not a regular file", "named pipe")


def test_a_symlink_loop_and_a_dangling_link_are_named(tmp_path):
    os.symlink(tmp_path / "tx.csv", tmp_path / "tx.csv")
    error_text(check_data(tmp_path, None), "tx.csv", "symbolic link", "loop")
    os.symlink(tmp_path / "gone.csv", tmp_path / "dangling.csv")
    error_text(check_data(tmp_path, None, name="dangling.csv"), "gone.csv", "file not found")  # the link's target


@pytest.mark.parametrize("content,name,needles", [
    (b"PK\x03\x04" + b"\x00" * 200, "tx.csv", ("Excel workbook (.xlsx)", "save the sheet as CSV")),
    (b"PK\x03\x04" + b"\x00" * 200, "tx.xlsx", ("Excel workbook",)),
    (b"\xd0\xcf\x11\xe0" + b"\x00" * 200, "tx.csv", ("Excel 97-2003",)),
    ((HEADER + GOOD_ROWS).encode("utf-16"), "tx.csv", ("UTF-16", "data.encoding: utf-16")),
    (b"\x1f\x8b\x08" + b"\x00" * 50, "tx.csv", ("gzip", "gunzip")),
])
def test_what_a_file_is_is_said_instead_of_encoding_advice(tmp_path, content, name, needles):
    msg = error_text(check_data(tmp_path, content, name=name), name, *needles)
    assert "cp1252" not in msg and "Windows-1252" not in msg


def test_utf16_file_reads_with_its_encoding(tmp_path):
    report = ok_report(check_data(tmp_path, (HEADER + GOOD_ROWS).encode("utf-16"), extra="  encoding: utf-16\n",
                                  args=["--json"]))
    assert report["rows_out"] == 3


def test_nul_bytes_give_a_short_message(tmp_path):
    msg = error_text(check_data(tmp_path, b"\x00" * 70_000), "NUL bytes")
    assert len(msg) < 400


def test_long_junk_headers_are_capped_in_messages(tmp_path):
    header = ",".join(f"col{i}_" + "x" * 80 for i in range(500))
    msg = error_text(check_data(tmp_path, header + "\n" + ",".join("1" * 500) + "\n"), "customer_id",
                     "... (500 columns)")
    assert len(msg) < 1500


def test_a_large_header_only_file_is_found_fast_with_the_right_message(tmp_path):
    text = HEADER + ",,\n" * 300_000  # 900 KB of empty rows
    msg = error_text(check_data(tmp_path, text), "tx.csv", "header", "no data rows", "empty fields")
    assert "as_of" not in msg


def test_all_returns_says_so(tmp_path):
    rows = "a,2024-01-01,-5\nb,2024-01-02,-6\n"
    msg = error_text(check_data(tmp_path, HEADER + rows), "all 2 row(s)", "returns or cancellations")
    assert "0 customer" not in msg


def test_no_rows_left_names_the_rule_that_removed_them(tmp_path):
    msg = error_text(check_data(tmp_path, HEADER + GOOD_ROWS, args=["--as-of", "2023-01-01"]), "future: 3", "run.as_of")
    assert "date_format" not in msg
    bad_ids = HEADER + ",2024-01-01,5\n,2024-01-02,6\n"
    msg = error_text(check_data(tmp_path, bad_ids), "null_customer: 2", "data.columns.customer_id")
    assert "run.as_of" not in msg


def test_disk_full_names_the_output_path(tmp_path, monkeypatch):
    import segmentation_lib.data.demo as demo

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(demo, "write_demo_data", full)
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo-data", "--out", str(out), "--n-customers", "10"])
    msg = error_text(result, f"'{out}'", "the disk is full")
    assert "unknown path" not in msg


def test_feature_table_missing_a_feature_names_it(tmp_path):
    from segmentation_lib.score.scoring import features_for_scoring

    p = tmp_path / "features.parquet"
    pl.DataFrame({"customer_id": ["a"], "n_orders": [1], "total_spend": [5.0]}).write_parquet(p)
    with pytest.raises(DataError) as err:
        features_for_scoring(p, ["n_orders", "total_spend", "days_since_last"])
    msg = str(err.value)
    assert "days_since_last" in msg and "feature table" in msg and "timestamp' does not exist" not in msg


def test_holdout_message_names_the_setting_users_have():
    from segmentation_lib.validate.predictive import split_calibration_holdout

    tx = pl.DataFrame({"customer_id": ["a"], "timestamp": [dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)],
                       "amount": [5.0]})
    with pytest.raises(DataError, match="validation.holdout_days"):
        split_calibration_holdout(tx, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), holdout_days=30)


# --------------------------------------------------------------------------- late failures: before the first notebook


def run_fails_before_notebooks(tmp_path: Path, content: str, extra: str, *needles: str) -> str:
    (tmp_path / "tx.csv").write_text(content, encoding="utf-8")
    cfg = project(tmp_path, "tx.csv", extra + "report: {out_dir: reports}\n")
    result = runner.invoke(app, ["run", "--config", str(cfg)])
    msg = error_text(result, *needles)
    reports = tmp_path / "reports"
    assert not reports.exists() or not any(reports.iterdir()), "nothing half-written"
    return msg


def _log(days: int, customers: int = 30) -> str:
    rows = [f"c{i % customers},{(dt.date(2024, 1, 1) + dt.timedelta(days=i % days)).isoformat()},{10 + i % 7}"
            for i in range(customers * 4)]
    return HEADER + "\n".join(rows) + "\n"


def test_min_k_of_one_is_refused_at_load(tmp_path):
    run_fails_before_notebooks(tmp_path, _log(200), "clustering: {min_k: 1}\n", "clustering.min_k is 1", ">= 2")


def test_k_ranges_without_a_common_k_are_refused_at_load(tmp_path):
    run_fails_before_notebooks(tmp_path, _log(200), "clustering: {k_range: [2, 4], min_k: 5, max_k: 8}\n",
                               "no k in common")


def test_holdout_longer_than_the_history_stops_before_the_first_notebook(tmp_path):
    run_fails_before_notebooks(tmp_path, _log(60), "validation: {holdout_days: 90}\n",
                               "validation.holdout_days (90)", "2024-01-01 to 2024-02-29", "below 60")


def test_all_returns_stop_before_the_first_notebook(tmp_path):
    rows = "".join(f"c{i},2024-01-0{1 + i % 5},-{i + 1}\n" for i in range(10))
    run_fails_before_notebooks(tmp_path, HEADER + rows, "", "none of the 10 rows is a purchase")


def test_segment_map_with_gaps_stops_before_the_first_notebook(tmp_path):
    (tmp_path / "map.yaml").write_text(
        "name: gappy\nbins: 5\nsegments:\n  - {name: Best, r: [4, 5]}\n  - {name: Rest, r: [2, 3]}\n"
        "  - {name: Never, r: [4, 4], f: [1, 1]}\n", encoding="utf-8")
    msg = run_fails_before_notebooks(tmp_path, _log(200), "rfm: {segment_map: map.yaml}\n", "segment map 'gappy'",
                                     "25 code(s) in no segment", "unreachable segment(s): Never", "catch-all")
    assert "111" in msg


def test_a_rule_that_does_not_parse_stops_before_the_first_notebook(tmp_path):
    extra = "rules:\n  default: Bronze\n  rules:\n    - {name: Gold, when: 'total_spend >>= 5'}\n"
    run_fails_before_notebooks(tmp_path, _log(200), extra, "rule 'Gold'", "cannot be parsed")


def test_preflight_passes_a_good_log_and_reports_its_span(tmp_path):
    from segmentation_lib.report.pipeline import preflight

    (tmp_path / "tx.csv").write_text(_log(200), encoding="utf-8")
    span = preflight(load_config(project(tmp_path)), "cfg.yaml")
    assert (span["rows"], span["purchases"]) == (120, 120)
    assert (span["first"].date(), span["last"].date()) == (dt.date(2024, 1, 1), dt.date(2024, 4, 29))


# --------------------------------------------------------------------------- warnings that change results


def test_customers_in_map_gaps_are_a_visible_warning():
    from segmentation_lib.segment.rfm_maps import assign_rfm_segments

    scored = pl.DataFrame({"r_score": [5, 1, 1], "f_score": [5, 1, 2], "m_score": [5, 1, 3]})
    gappy = {"name": "gappy", "bins": 5, "segments": [{"name": "Top", "r": [4, 5]}]}
    with pytest.warns(UserWarning, match=r"2 of 3 scored customers \(66.7%\).*111, 123"):
        out = assign_rfm_segments(scored, gappy, bins=5)
    assert out["rfm_segment"].to_list() == ["Top", None, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assign_rfm_segments(scored, "default", bins=5)  # a complete map: no warning


def test_page_notes_reach_metrics_json(tmp_path):
    from segmentation_lib.report.files import read_json, write_json
    from segmentation_lib.report.pipeline import record_notes

    (tmp_path / "work").mkdir()
    write_json(tmp_path / "work" / "notes_rfm.json", ["rule 'Platinum' never wins: ...", "rule 'Platinum' never wins: ..."])
    write_json(tmp_path / "work" / "notes_exploration.json", [])
    write_json(tmp_path / "metrics.json", {"customers": 3})
    record_notes(tmp_path)
    assert read_json(tmp_path / "metrics.json") == {"customers": 3, "notes": {"rfm": ["rule 'Platinum' never wins: ..."]}}


def test_no_notebook_silences_warnings():
    from segmentation_lib.paths import REPO_DIR

    for nb in sorted((REPO_DIR / "notebooks").glob("*.ipynb")):
        text = nb.read_text(encoding="utf-8")
        assert "filterwarnings" not in text and "simplefilter" not in text, nb.name
        assert "page.run_notes()" in text, nb.name


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lib.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_a_page_leaves_its_notes_for_metrics_json(tmp_path):
    from segmentation_lib.report.context import RunContext
    from segmentation_lib.report.files import read_json
    from segmentation_lib.report.pages import Page

    class Shadowed(Page):
        def _compute(self) -> None:
            warnings.warn("rule 'Platinum' never wins.", UserWarning)

    (tmp_path / "work").mkdir()
    page = Shadowed(RunContext(cfg={}, run_dir=tmp_path, seed=0, interactive=False))
    assert "rule 'Platinum' never wins." in str(page.run_notes())
    assert read_json(tmp_path / "work" / "notes_Shadowed.json") == ["rule 'Platinum' never wins."]


def test_customer_table_with_scientific_ids_is_refused(tmp_path):
    from segmentation_lib.data.read import read_customers

    p = tmp_path / "customers.csv"
    p.write_text("customer_id,plan\n1.23457E+11,basic\n17850,premium\n", encoding="utf-8")
    with pytest.raises(DataError, match="scientific notation"):
        read_customers(p)


def test_score_data_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    from segmentation_lib.score.scoring import features_for_scoring

    os.mkfifo(tmp_path / "log.parquet")
    with deadline(30), pytest.raises(DataError, match="named pipe"):
        features_for_scoring(tmp_path / "log.parquet", ["n_orders"])


def test_shadowed_rules_become_notes_of_the_rfm_page():
    from segmentation_lib.config import resolve_config
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.report.pages import recording
    from segmentation_lib.report.stages import rfm_assign
    from tests.conftest import random_log

    feats = customer_features(random_log(1, 300), "2025-01-01")
    rules = {"segment_col": "tier", "default": "Bronze", "rules": [
        {"name": "Gold", "when": "total_spend >= 100"}, {"name": "Platinum", "when": "total_spend >= 500"}]}
    notes: list[str] = []
    with recording(notes):
        table = rfm_assign(feats, resolve_config({"rules": rules}))
    assert "Platinum" not in table["tier"].to_list()
    assert any("rule 'Platinum' never wins" in n for n in notes), notes
