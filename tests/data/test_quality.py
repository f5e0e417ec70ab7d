"""segmentation_lib.data.quality: every quality rule with hand-counted expectations, the policies, the report,
the invariants, and the one-paragraph errors when nothing usable is left."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.data.quality import DataQualityReport, QualityPolicy, clean_transactions, duplicate_flag, load_transactions, parse_as_of
from segmentation_lib.data.read import read_transactions
from tests.conftest import check_message

UTC = dt.timezone.utc

# 14 rows, 8 valid customers (a..h). With as_of 2024-02-01 (hand count):
#   null_customer 2 (empty, blank), bad_timestamp 2 (b, g), non_numeric_amount 1 (c), future 2 (d, g),
#   duplicates 1 (a's second row), zero_amount 2 (e, f), returns 2 (e -4, h -2; kept under net).
#   rows out 4: a 10, e -4, e 20, h -2. customers out a, e, h; dropped b, c, d, f, g.
LOG = """customer_id,timestamp,amount
a,2024-01-01 10:00:00,10.0
a,2024-01-01 10:00:00,10.0
,2024-01-02,5
"  ",2024-01-02,5
b,not a date,3
c,2024-01-03,abc
d,2024-03-01,8
e,2024-01-04,0
e,2024-01-05,-4
e,2024-01-05,20
f,2024-01-06,0
g,2024-02-05,7
g,,7
h,2024-01-10,-2
"""


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    return path


def run(path, as_of="2024-02-01", **policy):
    return clean_transactions(read_transactions(path), as_of=as_of, policy=QualityPolicy(**policy), source=str(path))


def test_every_rule_counted_default_policy(log):
    clean, rep = run(log)
    table = {r.rule: (r.rows, r.excluded, r.customers) for r in rep.rules}
    assert table["null_customer"] == (2, 2, None)
    assert table["bad_timestamp"] == (2, 2, 2)
    assert table["non_numeric_amount"] == (1, 1, 1)
    assert table["future"] == (2, 2, 2)
    assert table["duplicates"] == (1, 1, 1)
    assert table["zero_amount"] == (2, 2, 2)
    assert table["returns"] == (2, 0, 2)
    assert (rep.rows_in, rep.rows_out) == (14, 4)
    assert rep.rows_in - sum(r.excluded for r in rep.rules) == rep.rows_out
    assert sorted(zip(clean["customer_id"], clean["amount"])) == [("a", 10.0), ("e", -4.0), ("e", 20.0), ("h", -2.0)]
    assert clean["is_return"].sum() == 2
    assert not any(c.startswith("_") for c in clean.columns)
    # no customer lost: in == out + dropped, each dropped customer with its reason
    assert (rep.customers_in, rep.customers_out, rep.customers_dropped) == (8, 3, 5)
    reasons = dict(zip(rep.dropped_customers["customer_id"], rep.dropped_customers["reason"]))
    assert reasons == {"b": "bad_timestamp", "c": "non_numeric_amount", "d": "future", "f": "zero_amount",
                       "g": "bad_timestamp, future"}
    assert rep.dropped_by_reason()["future"] == 1
    assert "1 customer(s) end with net spend <= 0" in rep["returns"].details  # h


def test_examples_show_raw_values(log):
    _, rep = run(log)
    assert rep["bad_timestamp"].examples["timestamp_raw"].to_list() == ["not a date", None]
    assert rep["non_numeric_amount"].examples["amount_raw"].to_list() == ["abc"]
    assert rep["duplicates"].examples.height == 1
    assert rep["null_customer"].examples["customer_id"].to_list() == [None, ""]


def test_returns_drop_and_removed_keep(log):
    clean, rep = run(log, returns="drop")
    assert rep["returns"].excluded == 2 and rep.rows_out == 2
    assert (rep.customers_out, rep.customers_dropped) == (2, 6)  # h had only a return
    assert rep.dropped_customers.filter(pl.col("customer_id") == "h")["reason"].item() == "returns"
    # 'keep' behaved exactly like 'net'; it is refused with the replacement named
    with pytest.raises(ConfigError, match=r"quality.returns: 'keep' is no longer a policy.*use 'net'.*or 'drop'"):
        run(log, returns="keep")


def test_keep_policies(log):
    _, rep = run(log, future="keep", duplicates="keep", zero_amount="keep")
    assert rep.rows_out == 4 + 2 + 1 + 2
    assert rep["future"].excluded == 0 and rep["future"].rows == 2
    # g's future row now survives, its bad-timestamp row is still excluded
    assert (rep.customers_out, rep.customers_dropped) == (6, 2)


def test_as_of_none_keeps_all_and_reports_next_day(log):
    clean, rep = run(log, as_of=None)
    assert rep["future"].rows == 0 and rep.rows_out == 6
    assert rep.as_of == dt.datetime(2024, 3, 2, tzinfo=UTC) and rep.as_of_inferred


def test_as_of_today_is_the_utc_date_of_the_run_and_said_so():
    from segmentation_lib.config import resolve_config
    from segmentation_lib.describe.quality_text import as_of_record, quality_markdown

    assert resolve_config({"run": {"as_of": "Today"}})["run"]["as_of"] == "today"
    before = dt.datetime.now(UTC).date()
    now = dt.datetime.now(UTC).replace(tzinfo=None)
    df = pl.DataFrame({"customer_id": ["a", "a"], "timestamp": [now - dt.timedelta(days=2), now + dt.timedelta(days=1)],
                       "amount": [1.0, 2.0]})
    clean, rep = clean_transactions(df, as_of="today")
    after = dt.datetime.now(UTC).date()
    assert rep.as_of.date() in {before, after} and (rep.as_of.hour, rep.as_of.minute) == (0, 0)
    assert rep.as_of_today and not rep.as_of_inferred
    assert clean["amount"].to_list() == [1.0] and rep["future"].rows == 1  # tomorrow's row is after as_of
    dq = rep.to_dict()
    assert "(today, the date of the run" in quality_markdown(dq)
    assert as_of_record(dq) == {"date": rep.as_of.date().isoformat(), "chosen": "today (run.as_of: today)"}
    assert "(today: the date of the run)" in rep.to_markdown()


def test_as_of_is_exclusive_at_midnight():
    df = pl.DataFrame({"customer_id": ["a", "a", "a"],
                       "timestamp": [dt.datetime(2024, 1, 31, 23, 59), dt.datetime(2024, 2, 1), dt.datetime(2024, 2, 1, 1)],
                       "amount": [1.0, 2.0, 3.0]})
    clean, rep = clean_transactions(df, as_of=dt.date(2024, 2, 1))
    assert clean["amount"].to_list() == [1.0] and rep["future"].rows == 2


def test_error_policies(log):
    with pytest.raises(DataError, match="quality.null_customer"):
        run(log, null_customer="error")
    with pytest.raises(DataError, match="not a date"):
        run(log, null_customer="drop", bad_timestamp="error")


def test_mixed_time_zones_counted_and_normalised(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text(
        "customer_id,timestamp,amount\n"
        "a,2024-01-01T10:00:00+01:00,1\n"
        "b,2024-01-01T10:00:00+01:00,1\n"
        "c,2024-01-01T10:00:00+0100,1\n"
        "d,2024-06-01T10:00:00+02:00,1\n"
        "e,2024-01-01T09:00:00Z,1\n"
        "f,2024-01-02 08:00:00,1\n")
    clean, rep = clean_transactions(read_transactions(path))
    r = rep["mixed_time_zones"]
    assert (r.rows, r.excluded, r.customers) == (3, 0, 3)  # +0200, +0000 and the naive row differ from +0100
    assert "4 zones" in r.details
    assert clean["timestamp"].to_list() == [dt.datetime(2024, 1, 1, 9, tzinfo=UTC)] * 3 + [
        dt.datetime(2024, 6, 1, 8, tzinfo=UTC), dt.datetime(2024, 1, 1, 9, tzinfo=UTC),
        dt.datetime(2024, 1, 2, 8, tzinfo=UTC)]


def test_single_zone_is_not_mixed(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("customer_id,timestamp,amount\na,2024-01-01T10:00:00+01:00,1\nb,2024-01-01T11:00:00+01:00,1\n")
    _, rep = clean_transactions(read_transactions(path))
    assert rep["mixed_time_zones"].rows == 0


def test_outliers_flag():
    df = pl.DataFrame({"customer_id": ["a", "b", "c", "d", "d"],
                       "timestamp": [dt.datetime(2024, 1, i) for i in range(1, 6)],
                       "amount": [1.0, 2.0, 3.0, 60.0, 40.0]})
    clean, rep = clean_transactions(df, policy={"outliers": "flag", "outlier_quantile": 0.5})
    # net per customer 1, 2, 3, 100; linear median 2.5 -> c and d (3 rows) are above
    assert (rep["outliers"].rows, rep["outliers"].customers) == (3, 2)
    assert clean.filter("is_outlier")["customer_id"].unique().sort().to_list() == ["c", "d"]
    _, rep_keep = clean_transactions(df, policy={"outlier_quantile": 0.5})
    assert rep_keep["outliers"].customers == 2 and "is_outlier" not in _.columns
    # every policy lists the outliers (largest net spend first) and counts them in the summary
    assert rep.outlier_customers.rows() == rep_keep.outlier_customers.rows() == [("d", 2, 100.0), ("c", 1, 3.0)]
    assert rep.to_dict()["customers_outliers"] == 2 and rep.to_dict()["outlier_policy"] == "flag"
    assert rep.customers_out == 4 and rep["outliers"].excluded == 0 and "flagged is_outlier" in rep.notes[0]


def test_outliers_exclude_counts_every_customer():
    df = pl.DataFrame({"customer_id": ["a", "b", "c", "d", "d", None, "e"],
                       "timestamp": [dt.datetime(2024, 1, i) for i in range(1, 8)],
                       "amount": [1.0, 2.0, 3.0, 60.0, 40.0, 9.0, 0.0]})
    clean, rep = clean_transactions(df, policy={"outliers": "exclude", "outlier_quantile": 0.5})
    # kept customers a 1, b 2, c 3, d 100 (e had only a zero row); linear median 2.5 -> c and d removed
    assert sorted(clean["customer_id"]) == ["a", "b"] and "is_outlier" not in clean.columns
    out = rep["outliers"]
    assert (out.rows, out.excluded, out.customers, out.action) == (3, 3, 2, "customers excluded")
    assert rep.rows_in - sum(r.excluded for r in rep.rules) == rep.rows_out == 2  # 7 - (1 null + 1 zero + 3)
    assert (rep.customers_in, rep.customers_out, rep.customers_dropped) == (5, 2, 3)
    assert rep.dropped_customers.rows() == [("c", 1, "outliers"), ("d", 2, "outliers"), ("e", 1, "zero_amount")]
    assert rep.dropped_by_reason() == {"outliers": 2, "zero_amount": 1}
    assert rep.outlier_customers["customer_id"].to_list() == ["d", "c"]
    assert "2 outlier customer(s)" in rep.notes[0] and "excluded" in rep.to_markdown()


def test_duplicate_flag_matches_exact_definition():
    rng = np.random.default_rng(7)
    df = pl.DataFrame({"a": rng.integers(0, 5, 3000), "b": rng.integers(0, 4, 3000).astype(str),
                       "c": pl.Series(rng.choice([None, 1.5, 2.5], 3000).tolist(), dtype=pl.Float64)})
    expected = ~df.select(pl.struct(df.columns).is_first_distinct()).to_series()
    got = duplicate_flag(df)
    assert got.to_list() == expected.to_list()
    assert got.sum() == 3000 - df.unique().height


def test_duplicate_flag_keeps_the_chunks_of_a_frame_read_from_many_files():
    """The flag of a many-chunk frame (a part read from several files) comes in the frame's chunks,
    so adding it does not make polars rechunk the frame; the values are the one-chunk frame's."""
    rng = np.random.default_rng(11)
    whole = pl.DataFrame({"a": rng.integers(0, 5, 3000), "b": rng.integers(0, 4, 3000).astype(str)})
    chunked = pl.concat([whole.slice(0, 1000), whole.slice(1000, 1500), whole.slice(2500, 500)], rechunk=False)
    got = duplicate_flag(chunked)
    assert got.chunk_lengths() == [1000, 1500, 500]
    assert got.to_list() == duplicate_flag(whole).to_list()
    assert chunked.with_columns(got.alias("d")).n_chunks("all") == [3, 3, 3]


def test_no_customer_lost_invariant_random():
    rng = np.random.default_rng(3)
    n = 5000
    ids = rng.integers(0, 400, n).astype(str).astype(object)
    ids[rng.random(n) < 0.03] = None
    amount = np.round(rng.normal(20, 30, n)).astype(float)
    amount[rng.random(n) < 0.05] = 0.0
    ts = pl.Series([dt.datetime(2024, 1, 1) + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 90, n)])
    ts = ts.scatter(np.flatnonzero(rng.random(n) < 0.02).tolist(), None)
    df = pl.DataFrame({"customer_id": pl.Series(ids, dtype=pl.String), "timestamp": ts, "amount": amount})
    df = pl.concat([df, df.head(50)])
    for pol in ({}, {"returns": "drop"}, {"future": "keep", "zero_amount": "keep"},
                {"outliers": "exclude", "outlier_quantile": 0.9}):
        clean, rep = clean_transactions(df, as_of="2024-03-01", policy=pol)
        valid = df.filter(pl.col("customer_id").is_not_null())["customer_id"]
        assert rep.customers_in == valid.n_unique()
        assert rep.customers_in == rep.customers_out + rep.customers_dropped
        assert rep.customers_out == clean["customer_id"].n_unique()
        assert set(rep.dropped_customers["customer_id"]).isdisjoint(set(clean["customer_id"]))
        assert rep.rows_in - sum(r.excluded for r in rep.rules) == rep.rows_out == clean.height
        assert rep["duplicates"].rows == 50


def test_report_renderings(log):
    _, rep = run(log)
    assert isinstance(rep, DataQualityReport)
    table = rep.to_polars()
    assert table.columns == ["rule", "description", "rows", "excluded", "customers", "action", "details"]
    assert table.height == 10  # 8 rules + mixed_time_zones + outliers
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["rows_in"] == 14 and d["customers_dropped"] == 5 and d["policy"]["returns"] == "net"
    assert d["rules"][1]["examples"][0]["timestamp_raw"] == "not a date"
    text = str(rep)
    assert "14 in -> 4 out (10 excluded)" in text and "8 in -> 3 out (5 dropped entirely" in text
    assert "| null_customer |" in rep.to_markdown()


def test_policy_validation():
    assert QualityPolicy() == QualityPolicy.from_config({"null_customer": "drop", "returns": "net"})
    with pytest.raises(ConfigError, match="quality.returns"):
        QualityPolicy(returns="gross")
    with pytest.raises(ConfigError, match="quality.outliers: 'drop'.*keep, flag, exclude"):
        QualityPolicy(outliers="drop")
    with pytest.raises(ConfigError, match="unknown key"):
        QualityPolicy.from_config({"retruns": "net"})
    with pytest.raises(ConfigError, match="outlier_quantile"):
        QualityPolicy(outlier_quantile=2)
    with pytest.raises(ConfigError, match="run.as_of"):
        parse_as_of("31/01/2024")


def test_wrong_dtype_frame_fails_schema_check():
    df = pl.DataFrame({"customer_id": ["a"], "timestamp": [dt.datetime(2024, 1, 1)], "amount": [5]})
    with pytest.raises(DataError, match="canonical schema"):
        clean_transactions(df)


def test_load_transactions_from_config(tmp_path):
    path = tmp_path / "Online Retail.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,HEART,6,12/1/2010 8:26,2.55,17850.0,UK\n"
        "C536366,85123A,HEART,-1,12/2/2010 8:26,2.55,17850.0,UK\n"
        "536367,85123A,HEART,1,12/20/2010 8:26,2.55,13047.0,UK\n")
    identity = {c: c for c in ("customer_id", "timestamp", "amount", "order_id", "product_id", "quantity", "unit_price")}
    config = {"run": {"as_of": "2010-12-10"},
              "data": {"path": str(path), "preset": "online_retail", "columns": identity, "date_format": None,
                       "timezone": "UTC"},
              "quality": {"returns": "drop"}}
    clean, rep = load_transactions(config)
    assert clean["amount"].to_list() == pytest.approx([15.3])
    assert rep["returns"].excluded == 1 and rep["future"].excluded == 1
    assert (rep.customers_in, rep.customers_out, rep.customers_dropped) == (2, 1, 1)
    assert rep.source == str(path)


def test_mixed_offsets_with_explicit_format(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("customer_id,timestamp,amount\na,2024-01-01 10:00:00+0100,1\n"
                    "b,2024-01-01 10:00:00+0200,1\nc,2024-01-01 10:00:00+0100,1\n")
    clean, rep = clean_transactions(read_transactions(path, date_format="%Y-%m-%d %H:%M:%S%z"))
    assert (rep["mixed_time_zones"].rows, rep["mixed_time_zones"].customers) == (1, 1)
    assert rep["mixed_time_zones"].examples["utc_offset"].to_list() == ["+0200"]
    assert clean["timestamp"].to_list() == [dt.datetime(2024, 1, 1, h, tzinfo=UTC) for h in (9, 8, 9)]


# ----------------------------------------------------------------------------- bad input

GOOD = "customer_id,timestamp,amount\na,2024-01-01,1.0\nb,2024-01-02,2.0\n"


def load(path, **data):
    return load_transactions({"data": {"path": str(path), **data}, "quality": {}, "run": {"as_of": None}})


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


def test_load_transactions_wraps_everything(tmp_path):
    with pytest.raises(DataError) as err:
        load(tmp_path / "nope.parquet")
    check_message(err, "nope.parquet", "segment demo-data")


def test_integer_ids_stay_integers_through_the_quality_step(tmp_path):
    """Issue 15: a Parquet log with integer customer / order / product ids keeps them integers (no text
    copy of typed columns is carried); null ids and duplicate rows are still counted; text ids stay text."""
    t = dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc)
    raw = pl.DataFrame({
        "customer_id": [7, 7, 12, None, 12, 12],
        "timestamp": [t, t, t, t, t + dt.timedelta(days=1), t + dt.timedelta(days=1)],
        "amount": [10.0, 10.0, 5.0, 3.0, -2.0, 8.0],
        "order_id": [100, 100, 101, 102, 103, 104],
        "product_id": [1, 1, 2, 2, 2, 3],
    }, schema_overrides={"customer_id": pl.Int64, "order_id": pl.Int64, "product_id": pl.Int32})
    raw.write_parquet(tmp_path / "ints.parquet")
    lf = read_transactions(tmp_path / "ints.parquet")
    schema = lf.collect_schema()
    assert (schema["customer_id"], schema["order_id"], schema["product_id"]) == (pl.Int64, pl.Int64, pl.Int32)
    clean, rep = clean_transactions(lf, as_of="2024-04-01", policy={"returns": "net"})
    assert clean.schema["customer_id"] == pl.Int64 and clean.schema["order_id"] == pl.Int64
    assert rep["null_customer"].excluded == 1 and rep["duplicates"].excluded == 1
    assert clean.sort("order_id")["customer_id"].to_list() == [7, 12, 12, 12]
    text = raw.with_columns(pl.col("customer_id", "order_id", "product_id").cast(pl.String))
    text.write_parquet(tmp_path / "text.parquet")
    clean_text, _ = clean_transactions(read_transactions(tmp_path / "text.parquet"), as_of="2024-04-01",
                                       policy={"returns": "net"})
    assert clean_text.schema["customer_id"] == pl.String
    assert clean_text.sort("order_id")["customer_id"].to_list() == ["7", "12", "12", "12"]
