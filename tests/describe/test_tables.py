"""Segment summary: counts, shares, revenue and medians per segment, totals consistent."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.describe.tables import describe_summary, segment_summary, with_actions

T = pl.DataFrame({
    "seg": ["A", "A", "A", "B", "B", None],
    "total_spend": [100.0, 200.0, 300.0, 50.0, 150.0, 200.0],
    "days_since_last": [10, 20, 30, 100, 300, 5],
    "n_orders": [1, 2, 9, 1, 3, 2],
})


def test_summary_hand_computed_and_sorted_by_revenue():
    s = segment_summary(T, "seg")
    assert s.columns == ["seg", "customers", "share", "revenue", "revenue_share", "median_days_since_last",
                         "median_n_orders", "median_total_spend"]
    assert s["seg"].to_list() == ["A", "B", "(unassigned)"]  # B ties on revenue, more customers
    a = s.row(0, named=True)
    assert a["customers"] == 3 and a["share"] == pytest.approx(0.5)
    assert a["revenue"] == 600.0 and a["revenue_share"] == pytest.approx(0.6)
    assert (a["median_days_since_last"], a["median_n_orders"], a["median_total_spend"]) == (20.0, 2.0, 200.0)
    b = s.row(1, named=True)
    assert b["median_days_since_last"] == 200.0 and b["revenue"] == 200.0


def test_totals_are_consistent():
    s = segment_summary(T, "seg", with_total=True)
    body, total = s.head(-1), s.row(-1, named=True)
    assert total["seg"] == "Total" and total["customers"] == T.height == body["customers"].sum()
    assert total["revenue"] == pytest.approx(body["revenue"].sum()) == pytest.approx(1000.0)
    assert body["share"].sum() == pytest.approx(1.0) and body["revenue_share"].sum() == pytest.approx(1.0)
    assert total["share"] == 1.0 and total["median_n_orders"] == 2.0


def test_negative_total_revenue_gives_null_share_and_missing_column_raises():
    t = pl.DataFrame({"seg": ["x", "y"], "total_spend": [-5.0, 1.0]})
    s = segment_summary(t, "seg")
    assert s["revenue_share"].null_count() == 2 and "median_n_orders" not in s.columns
    with pytest.raises(DataError, match="segment"):
        segment_summary(t, "segment")


def test_configured_median_columns_actions_and_highlights():
    t = T.with_columns(pl.Series("avg_order_value", [100.0, 100.0, 33.0, 50.0, 50.0, 100.0]))
    s = segment_summary(t, "seg", median_cols=["days_since_last", "n_orders", "avg_order_value"])
    assert s.columns[-3:] == ["median_days_since_last", "median_n_orders", "median_avg_order_value"]
    assert s["median_avg_order_value"].to_list() == [100.0, 50.0, 100.0]
    acts = with_actions(s, {"A": "reward", "B": "win back"}, "seg")
    assert acts["suggested_action"].to_list() == ["reward", "win back", ""]
    # A: 3 of 6 customers (50%), 600 of 1000 revenue (60%)
    assert describe_summary(s, "seg") == ("The largest segment is **A** (50% of customers). **A** brings the most "
                                          "revenue: 60% of the total from 50% of customers.")
    assert describe_summary(segment_summary(t, "seg", with_total=True), "seg").startswith("The largest segment is **A**")
    with pytest.raises(DataError, match="segment"):
        with_actions(s, {}, "segment")
