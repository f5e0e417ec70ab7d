"""Bad input -> DataError / ConfigError: one paragraph naming the file, the column and the fix."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError, SegmentationError
from segmentation_lib.data.quality import clean_transactions, load_transactions
from segmentation_lib.data.read import read_customers, read_transactions

GOOD = "customer_id,timestamp,amount\na,2024-01-01,1.0\nb,2024-01-02,2.0\n"


def check_message(err: pytest.ExceptionInfo, *needles: str) -> str:
    """The error is user-facing: a SegmentationError, one paragraph, says Fix:, no chained traceback."""
    assert isinstance(err.value, SegmentationError)
    msg = str(err.value)
    assert "\n" not in msg and "Fix:" in msg, msg
    e = err.value
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__), "no chained traceback"
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def load(path, **data):
    return load_transactions({"data": {"path": str(path), **data}, "quality": {}, "run": {"as_of": None}})


def test_missing_file_suggests_near_name(tmp_path):
    (tmp_path / "transactions.csv").write_text(GOOD)
    with pytest.raises(DataError) as err:
        read_transactions(tmp_path / "transaction.csv")
    check_message(err, "transaction.csv", "file not found", "transactions.csv", "data.path")


def test_empty_file(tmp_path):
    f = tmp_path / "empty.csv"
    f.write_bytes(b"")
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "empty.csv", "empty (0 bytes)")


def test_header_only_file(tmp_path):
    f = tmp_path / "head.csv"
    f.write_text("customer_id,timestamp,amount\n")
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "head.csv", "no data rows", "customer_id, timestamp, amount")


def test_empty_and_corrupt_parquet(tmp_path):
    empty = tmp_path / "empty.parquet"
    pl.DataFrame({"customer_id": [], "timestamp": [], "amount": []},
                 schema={"customer_id": pl.String, "timestamp": pl.Datetime, "amount": pl.Float64}).write_parquet(empty)
    with pytest.raises(DataError) as err:
        read_transactions(empty)
    check_message(err, "empty.parquet", "no rows")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError) as err:
        read_transactions(bad)
    check_message(err, "broken.parquet", "cannot be read as Parquet")


def test_unreadable_excel_and_empty_glob_and_dir(tmp_path):
    xl = tmp_path / "Online Retail.xlsx"
    xl.write_bytes(b"PK\x03\x04 fake workbook")
    with pytest.raises(DataError) as err:
        read_transactions(xl)
    check_message(err, "Online Retail.xlsx", "CSV")
    with pytest.raises(DataError) as err:
        read_transactions(str(tmp_path / "*.parquet"))
    check_message(err, "no file matches")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError) as err:
        read_transactions(tmp_path / "sub")
    check_message(err, "sub", "no .parquet or .csv files")


def test_mapped_column_missing_lists_columns_and_closest(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("Customer_ID,InvoiceDate,Sales,Region\nx,2024-01-01,1\n")
    with pytest.raises(DataError) as err:
        read_transactions(f, columns={"customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": "Sales"})
    check_message(err, "log.csv", "'CustomerID'", "Customer_ID, InvoiceDate, Sales, Region",
                  "closest is 'Customer_ID'", "data.columns.customer_id")
    # an explicitly named optional column that does not exist is an error too (a typo, not "absent")
    with pytest.raises(DataError) as err:
        read_transactions(f, columns={"customer_id": "Customer_ID", "timestamp": "InvoiceDate", "amount": "Sales",
                                      "product_id": "Sku"})
    check_message(err, "'Sku'", "data.columns.product_id")


def test_no_amount_source(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("customer_id,timestamp,quantity\nx,2024-01-01,1\n")
    with pytest.raises(DataError) as err:
        read_transactions(f, columns={"customer_id": "customer_id", "timestamp": "timestamp", "amount": None,
                                      "quantity": "quantity"})
    check_message(err, "log.csv", "quantity / unit_price", "data.columns.amount")


def test_amount_column_all_text(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("customer_id,timestamp,amount,country\nx,2024-01-01,France,FR\ny,2024-01-02,Spain,ES\n")
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "log.csv", "column 'amount' holds text", "'France'")


def test_wrong_parquet_types(tmp_path):
    f = tmp_path / "log.parquet"
    pl.DataFrame({"customer_id": ["a"], "timestamp": [dt.date(2024, 1, 1)], "amount": [dt.date(2024, 1, 1)]}
                 ).write_parquet(f)
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "log.parquet", "'amount'", "type Date")
    pl.DataFrame({"customer_id": ["a"], "timestamp": [1.5], "amount": [1.0]}).write_parquet(f)
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "'timestamp'", "type Float64", "data.columns.timestamp")


def test_timestamps_not_recognised(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("customer_id,timestamp,amount\nx,Jan 5th,1\ny,Feb 6th,1\n")
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "log.csv", "'timestamp'", "'Jan 5th'", "data.date_format")


def test_bad_date_format(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(GOOD)
    with pytest.raises(DataError) as err:
        read_transactions(f, date_format="%d/%m/%Y")
    check_message(err, "log.csv", "data.date_format '%d/%m/%Y'", "'2024-01-01'")
    with pytest.raises(DataError) as err:
        read_transactions(f, date_format="%Q")
    check_message(err, "data.date_format '%Q'")


def test_non_utf8_csv(tmp_path):
    f = tmp_path / "latin1.csv"
    f.write_bytes("customer_id,timestamp,amount,city\na,2024-01-01,1,Paris\nb,2024-01-02,2,K\u00f8benhavn\n"
                  .encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "latin1.csv", "not UTF-8", "line 3", "iconv", "utf8-lossy")
    # opting in works
    assert read_transactions(f, encoding="latin-1").collect()["city"].to_list() == ["Paris", "K\u00f8benhavn"]


def test_no_rows_left_after_cleaning(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(GOOD)
    with pytest.raises(DataError) as err:
        clean_transactions(read_transactions(f), as_of="2023-01-01", source=str(f))
    check_message(err, "log.csv", "no rows are left", "future: 2", "run.as_of")


def test_all_amounts_bad_after_sample(tmp_path):
    # amounts are all missing: the read-time sample has nothing to check, the cleaning step reports it
    f = tmp_path / "log.csv"
    f.write_text("customer_id,timestamp,amount\na,2024-01-01,\nb,2024-01-02,\n")
    with pytest.raises(DataError) as err:
        clean_transactions(read_transactions(f), source=str(f))
    check_message(err, "log.csv", "none of the 2 amounts")


def test_config_errors(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(GOOD)
    with pytest.raises(ConfigError, match="data.timezone"):
        read_transactions(f, timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="data.preset"):
        read_transactions(f, preset="shopify")
    with pytest.raises(ConfigError, match="unknown key"):
        read_transactions(f, columns={"customer": "customer_id"})
    with pytest.raises(ConfigError, match="data.path"):
        load_transactions({"data": {}})
    with pytest.raises(DataError) as err:
        read_transactions(f, preset="online_retail")
    check_message(err, "log.csv", "online_retail", "InvoiceNo", "customer_id, timestamp, amount")


def test_load_transactions_wraps_everything(tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path / "nope.parquet")
    check_message(err, "nope.parquet", "segment demo-data")


def test_customers_table_errors(tmp_path):
    f = tmp_path / "customers.csv"
    f.write_text("id,plan\n1,pro\n1,free\n2,pro\n")
    with pytest.raises(DataError) as err:
        read_customers(f, {"customer_id": "cust_id"})
    check_message(err, "customers.csv", "'cust_id'", "data.customers.columns.customer_id")
    with pytest.raises(DataError) as err:
        read_customers(f, {"customer_id": "id"})
    check_message(err, "customers.csv", "one row per customer", "1")


def test_malformed_csv(tmp_path):
    f = tmp_path / "broken.csv"
    f.write_text('customer_id,timestamp,amount\na,2024-01-01,1\n"b,2024-01-02,2\nc,2024-01-03,3\n')
    with pytest.raises(DataError) as err:
        clean_transactions(read_transactions(f), source=str(f))
    msg = check_message(err, "broken.csv", "could not be parsed", "closed quotes")
    assert "infer_schema_length" not in msg


def test_missing_column_suggests_matching_preset(tmp_path):
    f = tmp_path / "Online Retail.csv"
    f.write_text("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
                 "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850.0,UK\n")
    with pytest.raises(DataError) as err:
        read_transactions(f)
    check_message(err, "'customer_id'", "closest is 'CustomerID'", "data.preset: online_retail")
