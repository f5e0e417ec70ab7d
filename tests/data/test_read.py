"""segmentation_lib.data.read: read_transactions / read_customers / attach_customers / the Online Retail preset
(hand-counted data), and bad input: DataError / ConfigError in one paragraph naming the file, the column and the fix."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.data.quality import clean_transactions, load_transactions
from segmentation_lib.data.read import PRESETS, TS_DTYPE, attach_customers, read_customers, read_transactions, resolve_mapping
from tests.conftest import check_message

UTC = dt.timezone.utc


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def write(path, text: str, encoding: str = "utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# ----------------------------------------------------------------------------- mapping


def test_renamed_columns_dtypes_and_extras(tmp_path):
    f = write(tmp_path / "log.csv",
              "cid,when,total,channel,qty\n"
              " 17850.0 ,2024-01-05T10:30:00,12.5,web,2\n"
              "A-7,2024-01-06 08:00:00,3,shop,1\n")
    lf = read_transactions(f, columns={"customer_id": "cid", "timestamp": "when", "amount": "total",
                                       "quantity": "qty", "order_id": None})
    assert isinstance(lf, pl.LazyFrame)
    df = lf.collect()
    assert df.schema["customer_id"] == pl.String
    assert df.schema["timestamp"] == TS_DTYPE
    assert df.schema["amount"] == pl.Float64
    assert df.schema["quantity"] == pl.Float64
    assert df["customer_id"].to_list() == ["17850", "A-7"]  # stripped, float id normalised
    assert df["timestamp"].to_list() == [utc(2024, 1, 5, 10, 30), utc(2024, 1, 6, 8)]
    assert df["amount"].to_list() == [12.5, 3.0]
    assert df["channel"].to_list() == ["web", "shop"]  # extra column kept unchanged
    assert "order_id" not in df.columns and "cid" not in df.columns


def test_amount_derived_from_quantity_and_price(tmp_path):
    f = write(tmp_path / "log.csv", "cust,ts,q,p\nx,2024-01-01,3,2.5\ny,2024-01-02,-2,4\n")
    df = read_transactions(f, columns={"customer_id": "cust", "timestamp": "ts", "amount": None,
                                       "quantity": "q", "unit_price": "p"}).collect()
    assert df["amount"].to_list() == [7.5, -8.0]
    assert df["quantity"].to_list() == [3.0, -2.0]
    assert df["unit_price"].to_list() == [2.5, 4.0]


def test_identity_mapping_when_columns_none(tmp_path):
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount,product_id,note\nc1,2024-02-01,1.5,P9,hi\n")
    df = read_transactions(f).collect()
    assert df.columns[:4] == ["customer_id", "timestamp", "amount", "product_id"]
    assert df["note"].to_list() == ["hi"]
    assert df["product_id"].to_list() == ["P9"]


def test_resolve_mapping_default_identity_optional_is_absent():
    m = resolve_mapping(["customer_id", "timestamp", "amount"], {c: c for c in PRESETS["online_retail"].layouts
                                                                 ["online_retail"]})
    assert m["order_id"] is None and m["customer_id"] == "customer_id"


def test_semicolon_separator_and_iso_offsets(tmp_path):
    f = write(tmp_path / "log.csv",
              "customer_id;timestamp;amount\n"
              "a;2024-01-01T10:00:00+02:00;1\n"
              "b;2024-01-01T10:00:00Z;2\n"
              "c;2024-01-01 10:00:00.250-05:00;3\n"
              "d;2024-01-01 10:00:00;4\n")
    df = read_transactions(f).collect()
    assert df["timestamp"].to_list() == [utc(2024, 1, 1, 8), utc(2024, 1, 1, 10),
                                         utc(2024, 1, 1, 15, 0, 0, 250000), utc(2024, 1, 1, 10)]


def test_naive_timestamps_in_given_timezone(tmp_path):
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount\na,2024-01-15 10:00:00,1\nb,2024-07-15 10:00:00,1\n")
    df = read_transactions(f, timezone="Europe/Berlin").collect()
    assert df["timestamp"].to_list() == [utc(2024, 1, 15, 9), utc(2024, 7, 15, 8)]  # CET +1, CEST +2


def test_date_format_day_first(tmp_path):
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount\na,03/02/2024,1\nb,13/12/2023,1\n")
    df = read_transactions(f, date_format="%d/%m/%Y").collect()
    assert df["timestamp"].to_list() == [utc(2024, 2, 3), utc(2023, 12, 13)]


def test_day_first_inferred_when_month_first_fails(tmp_path):
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount\na,03/02/2024,1\nb,13/12/2023,1\n")
    df = read_transactions(f).collect()
    assert df["timestamp"].to_list() == [utc(2024, 2, 3), utc(2023, 12, 13)]


def test_unparseable_values_keep_raw_text(tmp_path):
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount\na,2024-01-01,1\nb,yesterday,oops\n")
    df = read_transactions(f).collect()
    assert df["timestamp"].to_list() == [utc(2024, 1, 1), None]
    assert df["_raw_timestamp"].to_list() == [None, "yesterday"]
    assert df["_raw_amount"].to_list() == [None, "oops"]


def test_parquet_types_directory_and_glob(tmp_path):
    d = tmp_path / "parts"
    d.mkdir()
    base = pl.DataFrame({
        "customer_id": [17850.0, 12.0],
        "timestamp": [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 2, 12)],
        "amount": [1, 2],
        "region": ["n", "s"],
    })
    base.head(1).write_parquet(d / "a.parquet")
    base.tail(1).write_parquet(d / "b.parquet")
    for source in (d, str(d / "*.parquet")):
        df = read_transactions(source, timezone="America/New_York").collect().sort("customer_id")
        assert df["customer_id"].to_list() == ["12", "17850"]
        assert df.schema["amount"] == pl.Float64
        assert df["timestamp"].to_list() == [utc(2024, 1, 2, 17), utc(2024, 1, 1, 17)]
        assert df["region"].to_list() == ["s", "n"]


def test_parquet_aware_timestamps_and_int_dates(tmp_path):
    p = tmp_path / "t.parquet"
    pl.DataFrame({
        "customer_id": ["a", "b"],
        "ts": pl.Series([dt.datetime(2024, 1, 1, 12)] * 2).dt.replace_time_zone("Asia/Tokyo"),
        "day": [20240131, 20240201],
        "amount": [1.0, 2.0],
    }).write_parquet(p)
    df = read_transactions(p, columns={"customer_id": "customer_id", "timestamp": "ts", "amount": "amount"}).collect()
    assert df["timestamp"].to_list() == [utc(2024, 1, 1, 3)] * 2
    df = read_transactions(p, columns={"customer_id": "customer_id", "timestamp": "day", "amount": "amount"},
                           date_format="%Y%m%d").collect()
    assert df["timestamp"].to_list() == [utc(2024, 1, 31), utc(2024, 2, 1)]


# ----------------------------------------------------------------------------- Online Retail preset

RETAIL_I = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom\n"
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,,United Kingdom\n"
    "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527.0,United Kingdom\n"
    "536380,22961,JAM MAKING SET PRINTED,24,12/13/2010 9:41,1.45,17809.0,United Kingdom\n"
    "536381,22139,RETROSPOT TEA SET,2,12/13/2010 9:45,0,14527.0,United Kingdom\n"
)
RETAIL_II = (
    "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
    "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom\n"
    "489434,79323P,PINK CHERRY LIGHTS,12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom\n"
    "C489449,22087,PAPER BUNTING WHITE LACE,-12,2009-12-01 10:33:00,2.95,16321.0,Australia\n"
    "489450,21871,SAVE THE PLANET MUG,6,2009-12-01 10:40:00,1.25,,United Kingdom\n"
)


def test_online_retail_i_layout(tmp_path):
    f = write(tmp_path / "Online Retail.csv", RETAIL_I)
    df = read_transactions(f, preset="online_retail").collect()
    assert df["customer_id"].to_list() == ["17850", "17850", None, "14527", "17809", "14527"]
    assert df["order_id"].to_list()[3] == "C536379"
    assert df["is_cancellation"].to_list() == [False, False, False, True, False, False]
    assert df["amount"].to_list() == pytest.approx([15.3, 20.34, 11.1, -27.5, 34.8, 0.0])
    assert df["timestamp"].to_list()[0] == utc(2010, 12, 1, 8, 26)
    assert df["timestamp"].to_list()[4] == utc(2010, 12, 13, 9, 41)  # month first: 13 can only be a day
    assert df["product_id"].to_list()[0] == "85123A"
    assert set(df.columns) >= {"Description", "Country"}

    clean, rep = clean_transactions(read_transactions(f, preset="online_retail"))
    # 6 rows: 1 null customer, 1 zero price; the cancellation is kept (net) and flagged as a return
    assert (rep.rows_in, rep.rows_out) == (6, 4)
    assert rep["null_customer"].excluded == 1 and rep["zero_amount"].excluded == 1
    assert rep["returns"].rows == 1 and rep["returns"].excluded == 0
    assert clean["is_return"].to_list() == [False, False, True, False]
    assert (rep.customers_in, rep.customers_out, rep.customers_dropped) == (3, 3, 0)


def test_online_retail_ii_layout(tmp_path):
    f = write(tmp_path / "online_retail_II.csv", RETAIL_II)
    df = read_transactions(f, preset="online_retail").collect()
    assert df["customer_id"].to_list() == ["13085", "13085", "16321", None]
    assert df["timestamp"].to_list()[0] == utc(2009, 12, 1, 7, 45)
    assert df["amount"].to_list() == pytest.approx([83.4, 81.0, -35.4, 7.5])
    assert df["is_cancellation"].to_list() == [False, False, True, False]
    assert df["unit_price"].to_list() == [6.95, 6.75, 2.95, 1.25]


def test_online_retail_preset_column_override(tmp_path):
    f = write(tmp_path / "r.csv", RETAIL_II)
    df = read_transactions(f, preset="online_retail", columns={"product_id": "Description"}).collect()
    assert df["product_id"].to_list()[1] == "PINK CHERRY LIGHTS"


# ----------------------------------------------------------------------------- encodings


def test_encoding_opt_in(tmp_path):
    f = tmp_path / "latin.csv"
    f.write_bytes("customer_id,timestamp,amount,city\na,2024-01-01,1,Z\u00fcrich \u00a3\n".encode("cp1252"))
    df = read_transactions(f, encoding="cp1252").collect()
    assert df["city"].to_list() == ["Z\u00fcrich \u00a3"]
    df = read_transactions(f, encoding="utf8-lossy").collect()
    assert df["customer_id"].to_list() == ["a"] and "\ufffd" in df["city"][0]


# ----------------------------------------------------------------------------- customers table


def test_read_customers_and_attach(tmp_path):
    f = write(tmp_path / "customers.csv", "CustID,plan,employees\n17850.0,pro,120\n12,free,3\n99,free,8\n,free,1\n")
    cust = read_customers(f, {"customer_id": "CustID"})
    assert cust.columns == ["customer_id", "plan", "employees"]
    assert cust.schema["employees"] == pl.Int64  # CSV types inferred for the (small) attribute table
    assert cust["customer_id"].to_list() == ["17850", "12", "99", None]
    features = pl.DataFrame({"customer_id": ["17850", "12", "7", "8"], "total_spend": [1.0, 2.0, 3.0, 4.0]})
    joined, rep = attach_customers(features, cust)
    assert joined.height == 4 and joined.columns == ["customer_id", "total_spend", "plan", "employees"]
    assert joined.filter(pl.col("customer_id") == "17850")["plan"].item() == "pro"
    assert rep["matched"] == 2
    assert rep["only_in_transactions"] == 2 and sorted(rep["only_in_transactions_examples"]) == ["7", "8"]
    assert rep["only_in_attributes"] == 1 and rep["only_in_attributes_examples"] == ["99"]
    assert rep["attribute_null_ids"] == 1 and rep["attribute_rows"] == 4


def test_derived_amount_keeps_raw_parts_when_unparseable(tmp_path):
    f = write(tmp_path / "log.csv", "c,t,q,p\nx,2024-01-01,abc,2.5\ny,2024-01-01,2,2.5\n")
    lf = read_transactions(f, columns={"customer_id": "c", "timestamp": "t", "amount": None,
                                       "quantity": "q", "unit_price": "p"})
    clean, rep = clean_transactions(lf)
    assert rep["non_numeric_amount"].rows == 1
    assert rep["non_numeric_amount"].examples["amount_raw"].to_list() == ["abc x 2.5"]
    assert clean["amount"].to_list() == [5.0]


def test_csv_glob_and_nonexistent_local_time(tmp_path):
    write(tmp_path / "a.csv", "customer_id,timestamp,amount\na,2024-03-31 02:30:00,1\n")  # skipped by DST in Berlin
    write(tmp_path / "b.csv", "customer_id,timestamp,amount\nb,2024-03-31 03:30:00,2\n")
    lf = read_transactions(str(tmp_path / "*.csv"), timezone="Europe/Berlin")
    clean, rep = clean_transactions(lf)
    assert rep.rows_in == 2 and rep["bad_timestamp"].rows == 1
    assert clean["timestamp"].to_list() == [utc(2024, 3, 31, 1, 30)]


def test_currency_symbols_in_amounts(tmp_path):
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount\na,2024-01-01,$12.50\nb,2024-01-01, 3 \nc,2024-01-01,-£3\n")
    assert read_transactions(f).collect()["amount"].to_list() == [12.5, 3.0, -3.0]


def test_load_customers_from_config(tmp_path):
    from segmentation_lib.data.read import load_customers

    p = tmp_path / "customers.parquet"
    pl.DataFrame({"cid": [1, 2], "plan": ["pro", "free"]}).write_parquet(p)
    cust = load_customers({"data": {"customers": {"path": str(p), "columns": {"customer_id": "cid"}}}})
    # integer ids stay integers (issue 15); a text customer file still joins integer ids and back
    assert cust["customer_id"].to_list() == [1, 2] and cust.columns == ["customer_id", "plan"]
    from segmentation_lib.data.read import attach_customers

    joined, rep = attach_customers(pl.DataFrame({"customer_id": ["1", "3"]}), cust)
    assert joined["plan"].to_list() == ["pro", None] and rep["only_in_attributes_examples"] == ["2"]
    joined, rep = attach_customers(pl.DataFrame({"customer_id": [2, 3]}), cust.with_columns(pl.col("customer_id").cast(pl.String)))
    assert joined["plan"].to_list() == ["free", None] and joined.schema["customer_id"] == pl.Int64
    assert load_customers({"data": {"customers": {"path": None}}}) is None


def test_day_first_decided_by_rows_beyond_the_sample(tmp_path, monkeypatch):
    import segmentation_lib.data.read as tx

    monkeypatch.setattr(tx, "_SAMPLE_ROWS", 2)  # the sample sees only ambiguous dates
    f = write(tmp_path / "log.csv", "customer_id,timestamp,amount\na,01/02/2024,1\nb,03/04/2024,1\nc,25/12/2024,1\n")
    df = read_transactions(f).collect()
    assert df["timestamp"].to_list() == [utc(2024, 2, 1), utc(2024, 4, 3), utc(2024, 12, 25)]
    g = write(tmp_path / "us.csv", "customer_id,timestamp,amount\na,01/02/2024,1\nb,03/04/2024,1\nc,12/25/2024,1\n")
    assert read_transactions(g).collect()["timestamp"].to_list() == [utc(2024, 1, 2), utc(2024, 3, 4), utc(2024, 12, 25)]
    h = write(tmp_path / "amb.csv", "customer_id,timestamp,amount\na,01/02/2024,1\nb,03/04/2024,1\n")
    with pytest.warns(UserWarning, match="month-first or day-first"):
        assert read_transactions(h).collect()["timestamp"].to_list() == [utc(2024, 1, 2), utc(2024, 3, 4)]


# ----------------------------------------------------------------------------- the demo log as Online Retail II


def test_conversion_reads_back_through_the_preset(demo_project, online_retail_csv) -> None:
    """The converted CSV read with the preset gives back the demo log (ids, UTC times, net amounts)."""
    back = read_transactions(online_retail_csv, preset="online_retail", timezone="Europe/London").collect()
    tx = pl.read_parquet(demo_project.paths["transactions"])
    assert back.height == tx.height
    assert back["timestamp"].to_list() == tx["timestamp"].to_list()
    assert back["customer_id"].drop_nulls().head(3).to_list() == [
        str(int(c[1:]) + 12_000) for c in tx["customer_id"].drop_nulls().head(3)]
    assert back["is_cancellation"].sum() == (tx["quantity"] < 0).sum()
    assert (back["amount"] - tx["amount"]).abs().max() < 0.006  # Quantity x Price vs the demo's rounded amount


# ----------------------------------------------------------------------------- bad input

GOOD = "customer_id,timestamp,amount\na,2024-01-01,1.0\nb,2024-01-02,2.0\n"


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


def test_load_customers_reads_a_file_version_once(tmp_path):
    """The customer table is read once per file version in a process; a rewritten file is read again."""
    import os

    from segmentation_lib.data.read import load_customers

    path = tmp_path / "customers.csv"
    path.write_text("customer_id,plan\na,basic\nb,pro\n")
    cfg = {"data": {"customers": {"path": str(path), "columns": {"customer_id": "customer_id"}}}}
    first = load_customers(cfg)
    assert load_customers(cfg) is first and first["plan"].to_list() == ["basic", "pro"]
    path.write_text("customer_id,plan\na,gold\nb,pro\nc,basic\n")
    os.utime(path, ns=(1, 1))  # another version, even within the same clock tick
    again = load_customers(cfg)
    assert again is not first and again["plan"].to_list() == ["gold", "pro", "basic"]
