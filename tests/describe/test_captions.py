"""Chart captions: one sentence each, with the numbers of the chart (hand-computed here)."""
from __future__ import annotations

import datetime as dt

import polars as pl

from segmentation_lib.describe import captions as cap


def test_largest_segment_and_quadrant() -> None:
    sizes = pl.DataFrame({"seg": ["Loyal", "New", "Lost"], "share": [0.31, 0.5, 0.19], "revenue_share": [0.44, 0.5, 0.06]})
    assert cap.largest_segment_caption(sizes, "seg") == "The largest segment, New, holds 50% of customers and 50% of revenue."
    assert cap.largest_segment_caption(sizes.with_columns(pl.Series("revenue_share", [0.7, 0.25, 0.05])), "seg") == (
        "The largest segment, New, holds 50% of customers and 25% of revenue; Loyal brings the most revenue (70%).")
    assert cap.largest_segment_caption(sizes.clear(), "seg") == ""
    m = pl.DataFrame({"cell": ["a", "b"], "share": [0.043, 0.957], "expected_clv_share": [0.6, 0.4]})
    assert cap.quadrant_caption(m, "cell", "expected_clv_share", "predicted CLV") == (
        "The a cell brings 60% of predicted CLV from 4.3% of customers.")


def test_cells_and_moves() -> None:
    scores = pl.DataFrame({"r_score": [1, 1, 1, 5, 5, None], "f_score": [1, 1, 1, 5, 4, 1]})
    assert cap.busiest_cell_caption(scores) == (
        "The most crowded cell is recency 1 x frequency 1 with 3 customers (60%); the top-right corner holds the best customers.")
    wide = pl.DataFrame({"from_segment": ["A", "B", "C"], "A": [0.9, 0.1, 0.0], "B": [0.1, 0.5, 0.3], "C": [0.0, 0.4, 0.7]})
    assert cap.migration_caption(wide) == (
        "The diagonal is customers who kept their segment; the largest move is 40% of B going to C.")
    counts = pl.DataFrame({"segment": ["X", "Y"], "p": [3, 0], "q": [1, 0]})
    assert cap.row_shares(counts).rows() == [("X", 0.75, 0.25), ("Y", 0.0, 0.0)]
    assert cap.strongest_cell_caption(cap.row_shares(counts), "{value} of '{row}' are '{column}'.") == "75% of 'X' are 'p'."


def test_stability_holdout_calibration_activity() -> None:
    st = pl.DataFrame({"segment": ["A", "B", "C"], "jaccard_mean": [0.95, 0.8, 0.5]})
    assert cap.stability_caption(st, 0.75) == "2 of 3 segments reach the stable threshold of 0.75; the least stable is C (0.5)."
    seg = pl.DataFrame({"method": ["clusters", "clusters", "rfm"], "segment": ["A", "B", "R"],
                        "mean_holdout_spend": [12.4, 300.0, 50.0]})
    assert cap.holdout_spend_caption(seg, {"clusters": "behavioural segments", "rfm": "RFM segments"}) == (
        "In the holdout period mean spend ranged from 12 (A) to 300 (B) across behavioural segments; from 50 (R) to 50 (R) "
        "across RFM segments; the wider the spread, the better the segments predict.")
    assert cap.calibration_caption(None, 60) == "Points on the diagonal are exact predictions for the 60-day holdout."
    monthly = pl.DataFrame({"month": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)],
                            "customers": [5, 9, 7], "revenue": [10.0, 90.0, 40.0]})
    assert cap.activity_caption(monthly) == (
        "Revenue peaked in February 2024 (90); the last month shown, March 2024, had 7 active customers.")
