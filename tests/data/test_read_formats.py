"""segmentation_lib.data.read, the formats people export: Excel workbooks, compressed CSV, regional
numbers and numeric timestamps. Each reads a small generated file and checks the known values."""
from __future__ import annotations

import datetime as dt
import gzip
import zipfile

import polars as pl
import pytest

from segmentation_lib.data.read import read_customers, read_transactions
from segmentation_lib.errors import ConfigError, DataError
from tests.conftest import check_message

UTC = dt.timezone.utc
TX = pl.DataFrame({
    "customer_id": ["a", "b", "a"],
    "timestamp": ["2024-01-05 10:30:00", "2024-02-01 08:00:00", "2024-03-10 12:00:00"],
    "amount": ["12.5", "1234.5", "3"],
})
CSV = "customer_id,timestamp,amount\na,2024-01-05 10:30:00,12.5\nb,2024-02-01 08:00:00,1234.5\na,2024-03-10 12:00:00,3\n"
WANT = [("a", dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC), 12.5), ("b", dt.datetime(2024, 2, 1, 8, tzinfo=UTC), 1234.5),
        ("a", dt.datetime(2024, 3, 10, 12, tzinfo=UTC), 3.0)]


def rows(lf: pl.LazyFrame) -> list[tuple]:
    return lf.select("customer_id", "timestamp", "amount").collect().rows()


# ----------------------------------------------------------------------------- Excel

def test_xlsx_sheet_by_name_and_number_reads_the_known_rows(tmp_path):
    xl = tmp_path / "Online Retail.xlsx"
    typed = TX.with_columns(pl.col("timestamp").str.to_datetime(), pl.col("amount").cast(pl.Float64))
    import xlsxwriter

    with xlsxwriter.Workbook(xl) as wb:
        pl.DataFrame({"note": ["not the data"]}).write_excel(wb, worksheet="About")
        typed.write_excel(wb, worksheet="Transactions")
    assert rows(read_transactions(xl, sheet="Transactions")) == WANT
    assert rows(read_transactions(xl, sheet=2)) == WANT
    with pytest.raises(DataError) as err:
        read_transactions(xl, sheet="Sheet1")
    check_message(err, "Online Retail.xlsx", "no sheet 'Sheet1'", "About, Transactions", "data.sheet")
    with pytest.raises(DataError) as err:  # the first sheet has no customer_id column
        read_transactions(xl)
    check_message(err, "customer_id")


def test_xlsx_customer_table(tmp_path):
    xl = tmp_path / "customers.xlsx"
    pl.DataFrame({"customer_id": ["a", "b"], "plan": ["pro", "free"]}).write_excel(xl, worksheet="c")
    df = read_customers(xl, sheet="c")
    assert df.sort("customer_id").rows() == [("a", "pro"), ("b", "free")]


def test_a_damaged_workbook_is_named(tmp_path):
    xl = tmp_path / "tx.xlsx"
    xl.write_bytes(b"PK\x03\x04 fake workbook")
    with pytest.raises(DataError) as err:
        read_transactions(xl)
    check_message(err, "tx.xlsx", "cannot be opened", "CSV")


# ----------------------------------------------------------------------------- compressed text

@pytest.mark.parametrize("name", ["tx.csv.gz", "tx.csv.zst", "tx.zip", "misnamed.csv"])
def test_compressed_csv_is_recognised_by_content(tmp_path, name):
    import pyarrow as pa

    path = tmp_path / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("export/tx.csv", CSV)
    elif name.endswith(".zst"):
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(CSV.encode())
    else:  # gzip, also under a plain .csv name: the first bytes decide
        path.write_bytes(gzip.compress(CSV.encode()))
    assert rows(read_transactions(path)) == WANT


def test_zip_with_two_files_and_a_truncated_gzip_are_refused(tmp_path):
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a.csv", CSV)
        z.writestr("b.csv", CSV)
    with pytest.raises(DataError) as err:
        read_transactions(two)
    check_message(err, "two.zip", "2 files", "a.csv, b.csv", "one CSV")
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(gzip.compress(CSV.encode() * 50)[:40])
    with pytest.raises(DataError) as err:
        read_transactions(cut)
    check_message(err, "cut.csv.gz", "gzip", "gunzip")


# ----------------------------------------------------------------------------- regional numbers

def _amounts(tmp_path, values: list[str], **kw) -> list[float]:
    f = tmp_path / "tx.csv"
    body = "".join(f'a,2024-01-0{i + 1},"{v}"\n' for i, v in enumerate(values))
    f.write_text("customer_id,timestamp,amount\n" + body, encoding="utf-8")
    return read_transactions(f, **kw).collect()["amount"].to_list()


def test_regional_numbers_parse_exactly_with_the_setting(tmp_path):
    assert _amounts(tmp_path, ["1.234,50 EUR", "12,00 EUR", "1.000.000,01 EUR"], decimal=",", thousands=".") \
        == [1234.5, 12.0, 1000000.01]
    assert _amounts(tmp_path, ["$1,234.50", "$12.00", "$1,000,000.01"], thousands=",") == [1234.5, 12.0, 1000000.01]
    assert _amounts(tmp_path, ["1'234.50", "7"], thousands="'") == [1234.5, 7.0]
    assert _amounts(tmp_path, ["€ 3,5", "0,25"], decimal=",") == [3.5, 0.25]


@pytest.mark.parametrize("values,setting", [
    (["$1,234.50", "$12.00"], "data.thousands: ','"),
    (["1.234,50 EUR", "12,00 EUR"], "data.decimal: ',' and data.thousands: '.'"),
    (["3,5", "12,25"], "data.decimal: ','"),
])
def test_without_the_setting_a_regional_column_stops_naming_it(tmp_path, values, setting):
    with pytest.raises(DataError) as err:
        _amounts(tmp_path, values)
    check_message(err, "tx.csv", "column 'amount'", repr(values[0]), setting)


def test_a_wrong_thousands_setting_is_not_a_silent_misread(tmp_path):
    with pytest.raises(DataError) as err:  # "12,5" would become 125 with thousands ','
        _amounts(tmp_path, ["12,5", "3,25"], thousands=",")
    check_message(err, "data.decimal: ','")
    with pytest.raises(ConfigError, match="both ','"):
        _amounts(tmp_path, ["1"], decimal=",", thousands=",")


# ----------------------------------------------------------------------------- numeric timestamps

@pytest.mark.parametrize("unit,values", [
    ("s", ["1704450600", "1706774400"]),
    ("ms", ["1704450600000", "1706774400000.0"]),
    ("excel", ["45296.4375", "45323.3333333333"]),
])
def test_timestamp_units_as_text(tmp_path, unit, values):
    f = tmp_path / "tx.csv"
    f.write_text("customer_id,timestamp,amount\n" + "".join(f"a,{v},1\n" for v in values))
    got = read_transactions(f, timestamp_unit=unit).collect()["timestamp"].to_list()
    assert got == [dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC), dt.datetime(2024, 2, 1, 8, tzinfo=UTC)]


def test_timestamp_units_as_numbers_and_excel_in_a_timezone(tmp_path):
    f = tmp_path / "tx.parquet"
    pl.DataFrame({"customer_id": ["a"], "timestamp": [1704450600], "amount": [1.0]}).write_parquet(f)
    assert read_transactions(f, timestamp_unit="s").collect()["timestamp"][0] == dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC)
    pl.DataFrame({"customer_id": ["a"], "timestamp": [45296.4375], "amount": [1.0]}).write_parquet(f)
    got = read_transactions(f, timestamp_unit="excel", timezone="Europe/Berlin").collect()["timestamp"][0]
    assert got == dt.datetime(2024, 1, 5, 9, 30, tzinfo=UTC)  # 10:30 in Berlin (UTC+1 in winter)


def test_milliseconds_read_as_seconds_stop_with_the_right_unit(tmp_path):
    f = tmp_path / "tx.csv"
    f.write_text("customer_id,timestamp,amount\na,1704450600000,1\n")
    with pytest.raises(DataError) as err:
        read_transactions(f, timestamp_unit="s")
    check_message(err, "tx.csv", "column 'timestamp'", "data.timestamp_unit: ms")
    with pytest.raises(ConfigError, match="timestamp_unit"):
        read_transactions(f, timestamp_unit="days")


def test_a_folder_of_gzipped_csv_reads_whole(tmp_path):
    (tmp_path / "2024-01.csv.gz").write_bytes(gzip.compress(CSV.encode()))
    (tmp_path / "2024-02.csv").write_text(CSV)
    assert rows(read_transactions(tmp_path)) == WANT + WANT


def test_the_settings_arrive_from_the_configuration(tmp_path):
    from segmentation_lib.data.quality import read_configured

    f = tmp_path / "tx.csv"
    f.write_text('customer_id;timestamp;amount\na;45296.4375;"1.234,50 EUR"\n')
    data = {"path": str(f), "decimal": ",", "thousands": ".", "timestamp_unit": "excel"}
    df = read_configured({"data": data}).collect()
    assert df.select("timestamp", "amount").row(0) == (dt.datetime(2024, 1, 5, 10, 30, tzinfo=UTC), 1234.5)
