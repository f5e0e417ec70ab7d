"""The real CDNOW log through the kit's readers (issue 18, "done means"): the CSV and an ``.xlsx``
copy give identical feature tables, the kit's summary reproduces the published BTYD summary, and
an ``.xls`` workbook (a committed fixture) reads to known rows.

CDNOW_sample.txt (Fader, Hardie & Lee 2005: 2,357 customers, 6,919 purchases, 1997-01-01 ..
1998-06-30) ships in the ``lifetimes`` wheel (a test dependency); it is located without importing
lifetimes. The file is fixed-width text (columns separated by runs of spaces, CRLF line ends:
master id, sample id, date YYYYMMDD, number of CDs, dollar value), which no CSV reader splits
(a single-character separator cannot match runs of spaces), so the test converts it to a CSV with
polars first and reads that with the kit.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from segmentation_lib.config import load_config
from segmentation_lib.data.quality import QualityPolicy, clean_transactions, load_transactions
from segmentation_lib.data.read import read_customers, read_transactions
from segmentation_lib.errors import DataError
from segmentation_lib.features.btyd import btyd_summary
from segmentation_lib.features.customer import customer_features
from tests.conftest import check_message
from tests.predict.conftest import lifetimes_dataset

FIXTURES = Path(__file__).with_name("fixtures")
COLUMNS = {"customer_id": "customer", "timestamp": "date", "amount": "dollars", "quantity": "cds"}
AS_OF = "1998-07-01"  # the day after the last purchase
CALIBRATION_END = "1997-09-30"  # the end of the published 39-week calibration period
UTC = dt.timezone.utc


def fixed_width_to_frame(path: Path) -> pl.DataFrame:
    """CDNOW_sample.txt as text columns (master_id, customer, date, cds, dollars), split with polars."""
    line = pl.col("line").str.strip_chars()
    fields = line.str.extract_groups(r"^(\d+)\s+(\d+)\s+(\d{8})\s+(\d+)\s+(\d+(?:\.\d+)?)$")
    out = (pl.read_csv(path, has_header=False, new_columns=["line"], separator="\x1f")
           .filter(line != "")
           .select(fields.struct.rename_fields(["master_id", "customer", "date", "cds", "dollars"])).unnest("line"))
    assert out.null_count().sum_horizontal().item() == 0, "every line of the CDNOW file splits into five fields"
    return out


@pytest.fixture(scope="module")
def cdnow_files(tmp_path_factory) -> dict[str, Path]:
    """The CDNOW log as CSV and as an .xlsx copy (sheet 'About' first, then the data twice: dates as
    YYYYMMDD numbers, as in the text file, and as Excel date cells)."""
    import xlsxwriter

    text = fixed_width_to_frame(lifetimes_dataset("CDNOW_sample.txt"))
    folder = tmp_path_factory.mktemp("cdnow")
    text.write_csv(folder / "cdnow.csv")
    typed = text.with_columns(pl.col("date", "cds").cast(pl.Int64), pl.col("dollars").cast(pl.Float64))
    with xlsxwriter.Workbook(folder / "cdnow.xlsx") as wb:
        pl.DataFrame({"note": ["CDNOW sample, Fader-Hardie-Lee 2005"]}).write_excel(wb, worksheet="About")
        typed.write_excel(wb, worksheet="CDNOW_sample")  # customer ids stay text cells ("0001")
        typed.with_columns(pl.col("date").cast(pl.String).str.to_date("%Y%m%d")).write_excel(wb, worksheet="dates")
    return {"csv": folder / "cdnow.csv", "xlsx": folder / "cdnow.xlsx"}


def configured(tmp_path: Path, as_of: str = AS_OF, **data) -> tuple[pl.DataFrame, object]:
    """load_transactions through a real configuration file (the data.* settings as a user writes them)."""
    cfg_file = tmp_path / "cdnow.yaml"
    cfg_file.write_text(f"run:\n  as_of: '{as_of}'\n")
    return load_transactions(load_config(cfg_file, {"data": {"columns": COLUMNS, **data}}))


def test_cdnow_csv_and_its_xlsx_copy_give_identical_feature_tables(cdnow_files, tmp_path):
    csv_tx, csv_rep = configured(tmp_path, path=str(cdnow_files["csv"]), date_format="%Y%m%d")
    # known answers of the default quality rules on CDNOW: 21 repeated rows and 8 zero-dollar rows
    assert (csv_rep.rows_in, csv_rep.rows_out) == (6919, 6890)
    assert (csv_rep["duplicates"].excluded, csv_rep["zero_amount"].excluded) == (21, 8)
    assert csv_tx["customer_id"].n_unique() == 2349  # 8 customers bought only a zero-dollar item
    feats = customer_features(csv_tx, AS_OF)
    summary = btyd_summary(csv_tx, CALIBRATION_END, freq="D", freq_multiplier=7)
    # without an order id an order is a customer's timestamp; CDNOW has dates only: purchase days
    days = csv_tx.select("customer_id", "timestamp").n_unique()
    assert feats.height == 2349 and feats["n_orders"].sum() == days == 6688
    assert feats["total_spend"].sum() == pytest.approx(csv_tx["amount"].sum(), abs=1e-6)
    for sheet, date_format in (("CDNOW_sample", "%Y%m%d"), (2, "%Y%m%d"), ("dates", None)):
        xl_tx, xl_rep = configured(tmp_path, path=str(cdnow_files["xlsx"]), sheet=sheet, date_format=date_format)
        assert xl_tx.equals(csv_tx), sheet  # the cleaned logs, row for row (extra column master_id included)
        assert [(r.rule, r.rows, r.excluded, r.customers) for r in xl_rep.rules] == [
            (r.rule, r.rows, r.excluded, r.customers) for r in csv_rep.rules], sheet
        assert customer_features(xl_tx, AS_OF).equals(feats), sheet
        assert btyd_summary(xl_tx, CALIBRATION_END, freq="D", freq_multiplier=7).equals(summary), sheet


def test_a_workbook_whose_first_sheet_is_not_the_data_points_at_data_sheet(cdnow_files):
    with pytest.raises(DataError) as err:
        read_transactions(cdnow_files["xlsx"], columns=COLUMNS, date_format="%Y%m%d")
    check_message(err, "cdnow.xlsx", "columns are: note", "one sheet of the workbook", "data.sheet")


@pytest.fixture(scope="module")
def every_row(cdnow_files) -> pl.DataFrame:
    """The CDNOW log with every one of its 6,919 rows kept (the published summaries count them all)."""
    keep = QualityPolicy(zero_amount="keep", duplicates="keep")
    lf = read_transactions(cdnow_files["csv"], columns=COLUMNS, date_format="%Y%m%d")
    tx, report = clean_transactions(lf, as_of=AS_OF, policy=keep)
    assert (report.rows_in, report.rows_out, tx["customer_id"].n_unique()) == (6919, 6919, 2357)
    assert (tx["timestamp"].min(), tx["timestamp"].max()) == (dt.datetime(1997, 1, 1, tzinfo=UTC),
                                                              dt.datetime(1998, 6, 30, tzinfo=UTC))
    return tx


def published() -> pl.DataFrame:
    """lifetimes' cdnow_customers_summary_with_transactions.csv: x, t_x, T in weeks, zbar in dollars, 2 decimals."""
    s = pl.read_csv(lifetimes_dataset("cdnow_customers_summary_with_transactions.csv"))
    plain = pl.read_csv(lifetimes_dataset("cdnow_customers_summary.csv"))
    assert s.select("ID", frequency="x", recency="t_x", T="T").equals(plain.cast({"recency": pl.Float64}))
    return s.rename({"ID": "id"})


def test_the_kit_reproduces_the_published_cdnow_summary_for_every_customer(every_row):
    """The published summary is in weeks measured as days / 7 (t_x = 30.43 for a repeat purchase 213
    days after the first), frequency = repeat purchase *days*; the kit's btyd_summary with daily
    periods and freq_multiplier=7 is that definition, at the end of the 39-week calibration period."""
    kit = btyd_summary(every_row, CALIBRATION_END, freq="D", freq_multiplier=7)
    both = kit.with_columns(id=pl.col("customer_id").cast(pl.Int64)).join(published(), on="id", how="full")
    assert both.height == 2357 and both["id"].null_count() == 0 and both["id_right"].null_count() == 0
    assert (both["frequency"] == both["x"]).all()
    assert ((both["recency"] - both["t_x"]).abs() <= 0.005 + 1e-9).all()
    assert ((both["T"] - both["T_right"]).abs() <= 0.005 + 1e-9).all()
    assert ((both["monetary_value"] - both["zbar"]).abs() <= 0.005 + 1e-9).all()
    first = both.filter(pl.col("id") == 1).row(0, named=True)  # 1997-01-01, -01-18, -08-02: hand-computed
    assert (first["frequency"], first["recency"], first["T"]) == (2.0, 213 / 7, 272 / 7)
    assert first["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)


def test_calendar_weeks_differ_from_the_published_weeks_by_definition(every_row):
    """freq="W" (lifetimes' weekly summary) is a different table, for two precise reasons: it buckets
    Monday-based calendar weeks (two purchases in one calendar week count once; recency and T are
    whole weeks), and it keeps the rows of the end's whole week (1997-09-30 is a Tuesday, so
    purchases of 1997-10-01 .. 10-05 count). Cut at the calendar day instead, every frequency is at
    most the published one (151 customers lower) and equals a plain count of distinct weeks."""
    end_day = dt.datetime(1997, 10, 1, tzinfo=UTC)
    late = every_row.filter(pl.col("timestamp").is_between(end_day, dt.datetime(1997, 10, 5, tzinfo=UTC)))
    assert (late.height, late["customer_id"].n_unique()) == (36, 32)
    weekly = btyd_summary(every_row, CALIBRATION_END, freq="W")
    both = weekly.with_columns(id=pl.col("customer_id").cast(pl.Int64)).join(published(), on="id")
    assert both.height == 2357 and ((both["frequency"] < both["x"]).sum(), (both["frequency"] > both["x"]).sum()) == (148, 26)
    assert (both["recency"] == both["recency"].round()).all() and set(both["T"].unique()) <= set(range(27, 40))
    in_days = every_row.filter(pl.col("timestamp") < end_day)
    cut = btyd_summary(in_days, CALIBRATION_END, freq="W").with_columns(id=pl.col("customer_id").cast(pl.Int64))
    cut = cut.join(published(), on="id")
    assert cut.height == 2357 and (cut["frequency"] <= cut["x"]).all() and (cut["frequency"] < cut["x"]).sum() == 151
    weeks = in_days.group_by("customer_id").agg(n=pl.col("timestamp").dt.truncate("1w").n_unique() - 1)
    assert cut.join(weeks, on="customer_id").select((pl.col("frequency") == pl.col("n")).all()).item()


# ----------------------------------------------------------------------------- .xls (Excel 97-2003)

WANT = [("a", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC), 12.5), ("b", dt.datetime(2024, 2, 1, 8, tzinfo=UTC), 1234.5),
        ("a", dt.datetime(2024, 3, 10, 12, tzinfo=UTC), 3.0)]
XLS = FIXTURES / "transactions.xls"  # made by tests/data/fixtures/make_xls_fixture.py (xlwt; no maintained writer)


def rows(lf: pl.LazyFrame) -> list[tuple]:
    return lf.select("customer_id", "timestamp", "amount").collect().rows()


def test_xls_workbook_reads_the_known_rows_by_sheet_name_and_number():
    assert XLS.read_bytes()[:8] == bytes.fromhex("d0cf11e0a1b11ae1")  # an OLE2 (BIFF) workbook, not xlsx
    assert rows(read_transactions(XLS, sheet="Transactions")) == WANT
    assert rows(read_transactions(XLS, sheet=2)) == WANT
    assert read_customers(XLS, sheet="Customers").rows() == [("a", "pro"), ("b", "free")]


def test_xls_regional_sheet_needs_and_takes_the_number_settings():
    regional = read_transactions(XLS, sheet="Regional", decimal=",", thousands=".", date_format="%d.%m.%Y %H:%M")
    assert rows(regional) == WANT
    with pytest.raises(DataError) as err:
        read_transactions(XLS, sheet="Regional", date_format="%d.%m.%Y %H:%M")
    check_message(err, "transactions.xls", "'amount'", "data.decimal: ','")


def test_xls_sheet_errors_name_the_sheets(tmp_path):
    with pytest.raises(DataError) as err:
        read_transactions(XLS, sheet="Sheet1")
    check_message(err, "transactions.xls", "no sheet 'Sheet1'", "About, Transactions, Regional, Customers", "data.sheet")
    with pytest.raises(DataError) as err:
        read_transactions(XLS, sheet=5)
    check_message(err, "transactions.xls", "data.sheet 5", "4 sheet(s)")
    tx, report = configured(tmp_path, as_of="2025-01-01", path=str(XLS), sheet="Transactions",
                            columns={"customer_id": "customer_id", "timestamp": "timestamp", "amount": "amount"})
    assert tx.select("customer_id", "timestamp", "amount").rows() == WANT and report.rows_excluded == 0
