"""segment_stats from per-customer totals gives the same table as grouping the whole log.

The row path (the log joined to the assignments and grouped per segment) still runs whenever an
extra aggregation is asked for, so adding a throw-away one and dropping it gives the reference.
"""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from segmentation_lib.data.demo import make_transactions
from segmentation_lib.describe.segment_stats import customer_totals, segment_stats

FORCE_ROWS = {"_rows": pl.len()}  # any extra aggregation takes the row path


@pytest.fixture(scope="module")
def demo() -> tuple[pl.DataFrame, pl.DataFrame]:
    # many returns (same order id as the purchase), exact duplicate rows and guest rows without an id
    d = make_transactions(n_customers=400, seed=3, return_rate=0.2, duplicate_rate=0.05, null_id_rate=0.02)
    tx = d.transactions
    # some returns get an order id of their own (a separate order), a few lines no order id (no order)
    tx = tx.with_row_index("_i").with_columns(
        pl.when((pl.col("amount") < 0) & (pl.col("_i") % 3 == 0)).then(pl.lit("R") + pl.col("_i").cast(pl.String))
        .when(pl.col("_i") % 97 == 0).then(None).otherwise(pl.col("order_id")).alias("order_id")).drop("_i")
    truth = d.truth.with_columns(pl.col("customer_id").hash(seed=5).mod(3).cast(pl.Int32).alias("cluster"))
    return tx, truth.filter(pl.col("customer_id").hash(seed=9) % 10 != 0)  # ~10% unassigned: the null segment


def reference(tx: pl.DataFrame, seg: pl.DataFrame | None, cols, **kw) -> tuple[pl.DataFrame, int]:
    r = segment_stats(tx, seg, cols, extra_aggs=FORCE_ROWS, **kw)
    return r.table.drop("_rows"), r.unknown_customer_transactions


def check(tx: pl.DataFrame, seg: pl.DataFrame, cols, **kw) -> pl.DataFrame:
    ref, ref_unknown = reference(tx, seg, cols, **kw)
    fast = segment_stats(tx, seg, cols, **kw)
    assert_frame_equal(fast.table, ref, check_exact=True)
    assert fast.unknown_customer_transactions == ref_unknown
    return fast.table


def test_demo_with_returns_duplicates_and_guests_is_identical(demo) -> None:
    tx, seg = demo
    assert tx.filter(pl.col("amount") < 0).height > 100 and tx.is_duplicated().sum() > 10
    assert tx["customer_id"].null_count() > 10 and tx["order_id"].null_count() > 10
    t = check(tx, seg, "archetype")
    assert t["archetype"].null_count() == 1  # unassigned customers
    assert t.filter(pl.col("archetype") == "Total")["customers"].item() == tx["customer_id"].n_unique() - 1


@pytest.mark.parametrize("drop", [(), ("order_id",), ("quantity",), ("order_id", "quantity")])
def test_identical_without_order_id_or_quantity(demo, drop) -> None:
    tx, seg = demo
    check(tx.drop(*drop), seg, "archetype")


def test_identical_for_integer_clusters_without_total_and_with_rollups(demo) -> None:
    tx, seg = demo
    t = check(tx, seg, "cluster", total=False)
    assert t.schema["cluster"] == pl.Int32
    check(tx, seg, ["archetype", "cluster"], rollup=True)
    check(tx.lazy(), seg.lazy(), "cluster")


def test_given_totals_are_used_and_give_the_same_table(demo) -> None:
    tx, seg = demo
    totals = customer_totals(tx)
    a = segment_stats(tx, seg, "archetype", totals=totals)
    assert_frame_equal(a.table, segment_stats(tx, seg, "archetype").table, check_exact=True)
    # the table really comes from the totals: doubled totals double every count
    doubled = totals.with_columns(pl.col("transactions") * 2, pl.col("units") * 2, pl.col("spend") * 2)
    b = segment_stats(tx, seg, "archetype", totals=doubled)
    assert (b.table["transactions"] == a.table["transactions"] * 2).all()
    assert b.unknown_customer_transactions == 2 * a.unknown_customer_transactions


def test_customer_totals_by_hand() -> None:
    t = dt.datetime(2024, 1, 1)
    tx = pl.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b", None, None],
        "timestamp": [t, t, t + dt.timedelta(days=1), t, t, t, t],
        "order_id": ["1", "1", "1", None, "1", "g1", "g2"],   # b's order "1" is another order than a's
        "quantity": [2.0, 2.0, -1.0, 1.0, 3.0, 1.0, 1.0],
        "amount": [10.0, 10.0, -4.0, 1.5, 9.0, 2.0, 3.0],     # a duplicate line and a return in order 1
    })
    got = customer_totals(tx).sort("customer_id", nulls_last=True).rows()
    assert got == [("a", 1, 4.0, 17.5), ("b", 1, 3.0, 9.0), (None, 2, 2.0, 5.0)]
    # without an order id an order is a customer's moment: a has two (t and t + 1 day)
    got = customer_totals(tx.drop("order_id", "quantity")).sort("customer_id", nulls_last=True).rows()
    assert got == [("a", 2, 17.5), ("b", 1, 9.0), (None, 1, 5.0)]
