"""Outcomes in the window after each customer's own exposure; pre-period spend before the start."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.experiment.outcomes import outcomes_from_transactions

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 1, tzinfo=UTC)


def _d(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def test_window_boundaries_orders_and_pre_spend() -> None:
    ex = pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "variant": ["control", "t", "t", "t"],
                       "exposure_time": [_d(0), _d(2), _d(1), _d(3)]})
    tx = pl.DataFrame({
        "customer_id": ["a", "a", "a", "a", "b", "b", "b", "c", "z"],
        "timestamp": [_d(-10), _d(-200), _d(0), _d(14), _d(1), _d(3), _d(3), _d(16), _d(5)],
        "amount": [30.0, 99.0, 5.0, 20.0, 50.0, 10.0, -4.0, 8.0, 1.0],
        "order_id": ["o1", "o0", "o2", "o3", "o4", "o5", "o5r", "o6", "o7"],
    })
    with pytest.warns(UserWarning, match="^1 exposed customer.* less than 14 days before the last transaction"):
        out = outcomes_from_transactions(ex, tx, window_days=14, pre_period_days=90)
    by = {r["customer_id"]: r for r in out.to_dicts()}
    # a: the purchase at the exposure moment is not after it; day 14 is inside (end inclusive)
    assert (by["a"]["converted"], by["a"]["revenue"], by["a"]["orders"]) == (1.0, 20.0, 1.0)
    assert by["a"]["pre_spend"] == 30.0  # the purchase 200 days before is outside the 90-day pre-period
    # b: the purchase on day 1 came before b's own exposure (day 2): neither outcome nor pre-period (start = day 0)
    assert (by["b"]["converted"], by["b"]["revenue"], by["b"]["orders"]) == (1.0, 6.0, 1.0)  # return netted
    assert by["b"]["pre_spend"] == 0.0
    # c: exposed on day 1, bought on day 16: 15 days later, outside the window
    assert (by["c"]["converted"], by["c"]["revenue"]) == (0.0, 0.0)
    assert by["d"]["converted"] == 0.0  # d: exposed on day 3, 13 days before the log ends on day 16 (the warning)
    assert out.height == 4 and "z" not in by


def test_given_outcomes_are_kept() -> None:
    ex = pl.DataFrame({"customer_id": ["a"], "variant": ["control"], "exposure_time": [_d(0)], "converted": [1.0]})
    tx = pl.DataFrame({"customer_id": ["a"], "timestamp": [_d(-1)], "amount": [7.0]})
    out = outcomes_from_transactions(ex, tx, window_days=14, pre_period_days=90)
    assert out.row(0, named=True) == {"customer_id": "a", "variant": "control", "exposure_time": _d(0),
                                      "converted": 1.0, "pre_spend": 7.0}
