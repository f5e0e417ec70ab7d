"""segmentation_lib.describe.activity: monthly activity, hand-counted."""
from __future__ import annotations

import datetime as dt

import polars as pl

from segmentation_lib.describe import activity


def _tx() -> pl.DataFrame:
    ts = [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 20), dt.datetime(2024, 3, 9), dt.datetime(2024, 1, 5),
          dt.datetime(2024, 2, 2), dt.datetime(2024, 2, 10)]
    return pl.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c"], "timestamp": ts,
                         "amount": [10.0, -4.0, 6.0, 2.0, 3.0, 1.0], "order_id": ["1", "2", "3", "4", "5", "6"]})


def test_monthly_activity_hand_counted() -> None:
    m = activity.monthly_activity(_tx())
    # Jan: a and b buy (a's -4 is a return: counts in revenue, not in orders); Feb: c twice; Mar: a.
    assert m.rows() == [(dt.date(2024, 1, 1), 2, 2, 8.0), (dt.date(2024, 2, 1), 1, 2, 4.0), (dt.date(2024, 3, 1), 1, 1, 6.0)]
