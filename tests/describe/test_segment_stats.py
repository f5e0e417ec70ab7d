"""segment_stats on a log small enough to check every number by hand."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.describe.segment_stats import grouping_sets, segment_stats, unknown_customers_sentence
from segmentation_lib.errors import DataError

T = dt.datetime(2024, 1, 1, 12)


def log(with_quantity: bool = True, with_order: bool = True) -> pl.DataFrame:
    # customers a, b in segment X, c in Y; two rows without a customer id
    df = pl.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c", None, None],
        "timestamp": [T, T, T + dt.timedelta(days=1), T, T, T, T + dt.timedelta(hours=1)],
        "order_id": ["o1", "o1", "o2", "o3", "o4", "o5", "o6"],   # o1 has two lines
        "region": ["N", "N", "S", "N", "S", "N", "S"],
        "quantity": [2.0, 1.0, 1.0, 4.0, 5.0, 1.0, 1.0],
        "amount": [10.0, 5.0, 20.0, 40.0, 25.0, 7.0, 3.0],
    })
    if not with_quantity:
        df = df.drop("quantity")
    if not with_order:
        df = df.drop("order_id")
    return df


SEGMENTS = pl.DataFrame({"customer_id": ["a", "b", "c"], "s": ["X", "X", "Y"]})


def rows(table: pl.DataFrame, cols: list[str]) -> list[tuple]:
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in table.select(cols).rows()]


def test_every_number_per_segment_and_total() -> None:
    r = segment_stats(log(), SEGMENTS, "s")
    t = r.table
    assert t.columns == ["s", "customers", "transactions", "units", "spend", "spend_per_customer",
                         "spend_per_transaction", "transactions_per_customer", "units_per_transaction",
                         "price_per_unit", "customers_share", "transactions_share", "spend_share"]
    # X: a (o1: 10+5, 3 units; o2: 20, 1 unit) + b (o3: 40, 4 units) -> 2 customers, 3 orders, 8 units, 75
    # Y: c (o4: 25, 5 units); Total: 3 customers, 4 orders, 13 units, 100
    assert rows(t, ["s", "customers", "transactions", "units", "spend"]) == [
        ("X", 2, 3, 8.0, 75.0), ("Y", 1, 1, 5.0, 25.0), ("Total", 3, 4, 13.0, 100.0)]
    assert rows(t, ["spend_per_customer", "spend_per_transaction", "transactions_per_customer",
                    "units_per_transaction", "price_per_unit"]) == [
        (37.5, 25.0, 1.5, round(8 / 3, 6), 9.375), (25.0, 25.0, 1.0, 5.0, 5.0),
        (round(100 / 3, 6), 25.0, round(4 / 3, 6), 3.25, round(100 / 13, 6))]
    assert rows(t, ["customers_share", "transactions_share", "spend_share"]) == [
        (round(2 / 3, 6), 0.75, 0.75), (round(1 / 3, 6), 0.25, 0.25), (1.0, 1.0, 1.0)]
    assert r.unknown_customer_transactions == 2  # o5, o6: reported apart, in no row


def test_segment_by_region_with_rollups_and_extra_aggs() -> None:
    r = segment_stats(log(), SEGMENTS, "s", group_cols=["region"], rollup=True,
                      extra_aggs={"regions": pl.col("region").n_unique(), "max_line": pl.col("amount").max()})
    t = r.table
    assert t.columns[:2] == ["s", "region"] and t.columns[-2:] == ["regions", "max_line"]
    assert rows(t, ["s", "region", "customers", "transactions", "units", "spend", "regions", "max_line"]) == [
        ("X", "N", 2, 2, 7.0, 55.0, 1, 40.0),      # a's o1 (15) + b's o3 (40)
        ("X", "S", 1, 1, 1.0, 20.0, 1, 20.0),      # a's o2
        ("Y", "S", 1, 1, 5.0, 25.0, 1, 25.0),      # c's o4
        ("X", "Total", 2, 3, 8.0, 75.0, 2, 40.0),  # prefix rollup
        ("Y", "Total", 1, 1, 5.0, 25.0, 1, 25.0),
        ("Total", "N", 2, 2, 7.0, 55.0, 1, 40.0),  # suffix rollup: a and b bought in N
        ("Total", "S", 2, 2, 6.0, 45.0, 1, 25.0),  # a and c bought in S
        ("Total", "Total", 3, 4, 13.0, 100.0, 2, 40.0)]
    # a customer in two regions counts once in the total: region customer shares sum to 4/3
    assert rows(t.filter(pl.col("s") == "Total"), ["customers_share", "spend_share"]) == [
        (round(2 / 3, 6), 0.55), (round(2 / 3, 6), 0.45), (1.0, 1.0)]
    assert rows(t.filter(pl.col("s") == "X"), ["spend_per_transaction", "units_per_transaction"]) == [
        (27.5, 3.5), (20.0, 1.0), (25.0, round(8 / 3, 6))]


def test_grouping_sets() -> None:
    assert grouping_sets(["a"]) == [("a",), ()]
    assert grouping_sets(["a"], total=False) == [("a",)]
    assert grouping_sets(["a", "b"], total=False, rollup=True) == [("a", "b"), ("a",), ("b",)]


def test_no_total_keeps_the_column_type_and_no_units_without_quantity() -> None:
    seg = SEGMENTS.with_columns(pl.Series("cluster", [0, 0, 1], dtype=pl.Int32))
    t = segment_stats(log(with_quantity=False), seg, "cluster", total=False).table
    assert t.schema["cluster"] == pl.Int32
    assert "units" not in t.columns and "price_per_unit" not in t.columns
    assert rows(t, ["cluster", "customers", "transactions", "spend", "customers_share"]) == [
        (0, 2, 3, 75.0, round(2 / 3, 6)), (1, 1, 1, 25.0, round(1 / 3, 6))]


def test_orders_by_customer_and_moment_without_order_id() -> None:
    # a's first two rows share a moment: one order; the unknown rows are at two moments: two orders
    r = segment_stats(log(with_order=False), SEGMENTS, "s")
    assert rows(r.table, ["s", "transactions"]) == [("X", 3), ("Y", 1), ("Total", 4)]
    assert r.unknown_customer_transactions == 2


def test_unassigned_customers_form_the_null_segment_and_non_positive_spend_has_no_share() -> None:
    tx = log().with_columns(pl.when(pl.col("customer_id") == "c").then(-75.0).otherwise(pl.col("amount")).alias("amount"))
    t = segment_stats(tx, SEGMENTS.filter(pl.col("customer_id") != "c"), "s").table
    assert rows(t, ["s", "customers", "spend", "spend_share"]) == [("X", 2, 75.0, None), (None, 1, -75.0, None),
                                                                   ("Total", 3, 0.0, None)]


def test_lazy_inputs_and_missing_columns() -> None:
    r = segment_stats(log().lazy(), SEGMENTS.lazy(), ["s"])
    assert r.table.height == 3
    with pytest.raises(DataError, match="segment_stats"):
        segment_stats(log(), SEGMENTS, "nope")
    with pytest.raises(DataError, match="segment_stats"):
        segment_stats(log().drop("amount"), SEGMENTS, "s")


def test_unknown_customers_sentence() -> None:
    assert "1,234 transaction row(s) had no customer id" in unknown_customers_sentence(1234)
    assert unknown_customers_sentence(0) == "Every transaction row had a customer id."


# openretailscience tests/segmentation/test_segstats.py TestUnknownCustomerTracking: the same logs
# (transaction_id -> order_id, unit_spend -> amount, unit_quantity -> quantity; the segment column in the log)
def ors_log(customer_ids: list, quantity: bool = False) -> pl.DataFrame:
    df = pl.DataFrame({"customer_id": customer_ids, "amount": [100.0, 200.0, 150.0, 300.0],
                       "order_id": ["101", "102", "103", "104"],
                       "segment_name": ["Premium", "Premium", "Premium", "Standard"]})
    return df.with_columns(quantity=pl.Series([10, 20, 15, 30])) if quantity else df


SPLIT = ["segment_name", "spend", "transactions", "customers", "spend_per_customer", "spend_per_transaction",
         "transactions_per_customer", "spend_unknown", "transactions_unknown", "spend_per_transaction_unknown",
         "spend_total", "transactions_total", "spend_per_transaction_total"]


@pytest.mark.parametrize("marker, ids", [(-1, [1, 2, -1, 3]), ("UNKNOWN", ["C1", "C2", "UNKNOWN", "C3"]),
                                         (pl.col("customer_id") == -1, [1, 2, -1, 3])])
def test_identified_unknown_total_split_as_openretailscience(marker, ids) -> None:
    r = segment_stats(ors_log(ids), None, "segment_name", unknown_customer_value=marker)
    assert rows(r.table, SPLIT) == [
        ("Premium", 300.0, 2, 2, 150.0, 150.0, 1.0, 150.0, 1, 150.0, 450.0, 3, 150.0),
        ("Standard", 300.0, 1, 1, 300.0, 300.0, 1.0, 0.0, 0, None, 300.0, 1, 300.0),
        ("Total", 600.0, 3, 3, 200.0, 200.0, 1.0, 150.0, 1, 150.0, 750.0, 4, 187.5)]
    assert r.unknown_customer_transactions == 1


def test_split_with_quantity_extra_aggs_and_null_ids() -> None:
    r = segment_stats(ors_log([1, 2, -1, 3], quantity=True), None, "segment_name", unknown_customer_value=-1)
    assert rows(r.table, ["segment_name", "units", "price_per_unit", "units_per_transaction", "units_unknown",
                          "price_per_unit_unknown", "units_per_transaction_unknown", "units_total",
                          "price_per_unit_total", "units_per_transaction_total"]) == [
        ("Premium", 30.0, 10.0, 15.0, 15.0, 10.0, 15.0, 45.0, 10.0, 15.0),
        ("Standard", 30.0, 10.0, 30.0, 0.0, None, None, 30.0, 10.0, 30.0),
        ("Total", 60.0, 10.0, 20.0, 15.0, 10.0, 15.0, 75.0, 10.0, 18.75)]
    # extra aggregations in three variants (openretailscience test_unknown_customer_with_extra_aggs)
    stores = pl.DataFrame({"customer_id": [1, -1, 2, -1], "amount": [100.0, 150.0, 200.0, 250.0],
                           "order_id": ["101", "102", "103", "104"], "segment_name": ["A", "A", "B", "B"],
                           "store_id": [1, 2, 1, 3]})
    e = segment_stats(stores, None, "segment_name", unknown_customer_value=-1,
                      extra_aggs={"stores": pl.col("store_id").n_unique()}).table
    assert rows(e, ["segment_name", "stores", "stores_unknown", "stores_total"])[0] == ("A", 1, 1, 2)
    assert rows(e, ["segment_name", "spend_unknown", "spend_total"])[-1] == ("Total", 400.0, 700.0)
    # the kit's own log: null ids are the unknown customers; customer segments joined from the
    # assignments, so the unknown rows fall in the null segment, and region splits them
    k = segment_stats(log(), SEGMENTS, "s", group_cols=["region"], split_unknown=True).table
    assert rows(k.filter(pl.col("region") != "Total"), ["s", "region", "customers", "spend", "spend_unknown",
                                                         "transactions_unknown", "spend_total"]) == [
        ("X", "N", 2, 55.0, 0.0, 0, 55.0), ("X", "S", 1, 20.0, 0.0, 0, 20.0), ("Y", "S", 1, 25.0, 0.0, 0, 25.0),
        (None, "N", 0, 0.0, 7.0, 1, 7.0), (None, "S", 0, 0.0, 3.0, 1, 3.0)]
    assert rows(k.tail(1), ["s", "spend", "spend_unknown", "transactions_total", "spend_total"]) == [
        ("Total", 100.0, 10.0, 6, 110.0)]
    # without the split the table is the identified customers' alone, as before
    plain = segment_stats(log(), SEGMENTS, "s").table
    assert plain.equals(segment_stats(log(), SEGMENTS, "s", split_unknown=True).table.select(plain.columns)
                        .filter(pl.col("s").is_not_null()))
