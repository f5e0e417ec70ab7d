"""Cohort retention: complete cohort x period table (zero cells kept), nothing after the data end."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.features.cohorts import cohort_table, describe_retention, retention_curve
from segmentation_lib.errors import ConfigError, DataError


def _tx() -> pl.DataFrame:
    rows = [  # customer, day, amount
        ("a", dt.datetime(2024, 1, 3), 10.0), ("a", dt.datetime(2024, 1, 20), -4.0), ("a", dt.datetime(2024, 3, 9), 6.0),
        ("b", dt.datetime(2024, 1, 5), 2.0),
        ("g", dt.datetime(2024, 1, 10), 5.0), ("g", dt.datetime(2024, 2, 12), 5.0),
        ("c", dt.datetime(2024, 2, 2), 3.0), ("c", dt.datetime(2024, 2, 10), 1.0),
        ("d", dt.datetime(2024, 2, 15), 4.0), ("d", dt.datetime(2024, 4, 1), 4.0),
        ("e", dt.datetime(2024, 4, 20), 7.0),
        ("f", dt.datetime(2024, 4, 25), -3.0),  # a return only: in no cohort, but it is the data end
        (None, dt.datetime(2024, 1, 15), 9.0),  # no customer id: in no cohort
    ]
    c, t, a = zip(*rows)
    return pl.DataFrame({"customer_id": list(c), "timestamp": list(t), "amount": list(a)}).with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC"))


# Hand-counted: Jan cohort {a, b, g}: Feb g, Mar a, Apr nobody; Feb cohort {c, d}: Mar nobody, Apr d;
# no March cohort; Apr cohort {e}. The data ends in April.
EXPECTED = [
    ("2024-01", 0, 3, 3), ("2024-01", 1, 3, 1), ("2024-01", 2, 3, 1), ("2024-01", 3, 3, 0),
    ("2024-02", 0, 2, 2), ("2024-02", 1, 2, 0), ("2024-02", 2, 2, 1),
    ("2024-04", 0, 1, 1),
]


def test_complete_table_keeps_zero_cells_and_stops_at_the_data_end():
    t = cohort_table(_tx())
    assert t.columns == ["cohort", "cohort_start", "period_number", "customers", "active", "retention"]
    assert t.select("cohort", "period_number", "customers", "active").rows() == EXPECTED
    assert t["retention"].to_list() == pytest.approx([1, 1 / 3, 1 / 3, 0, 1, 0, 0.5, 1])
    assert t["cohort_start"][0] == dt.date(2024, 1, 1)
    # the same log lazily gives the same table
    assert cohort_table(_tx().lazy()).equals(t)


def test_average_curve_counts_zero_cells():
    curve = retention_curve(cohort_table(_tx()))
    assert curve.select("period_number", "cohorts", "customers", "active").rows() == [
        (0, 3, 6, 6), (1, 2, 5, 1), (2, 2, 5, 2), (3, 1, 3, 0)]
    # month 1: 1 of 5 (the old notebook averaged only cohorts with a return: 1 of 3)
    assert curve["retention"].to_list() == pytest.approx([1.0, 0.2, 0.4, 0.0])
    assert describe_retention(curve, periods=(1, 3, 12)) == (
        "Of the customers whose first purchase lies far enough back, **20%** buy again 1 month after their first purchase "
        "(2 cohorts), **0%** buy again 3 months after their first purchase (1 cohort).")
    latest = retention_curve(cohort_table(_tx()), max_cohorts=1)
    assert latest.rows() == [(0, 1, 1, 1, 1.0)]


def test_explicit_end_drops_later_purchases_and_cells():
    t = cohort_table(_tx(), end=dt.date(2024, 3, 31))
    assert t.select("cohort", "period_number", "active").rows() == [
        ("2024-01", 0, 3), ("2024-01", 1, 1), ("2024-01", 2, 1), ("2024-02", 0, 2), ("2024-02", 1, 0)]
    naive = cohort_table(_tx(), end=dt.datetime(2024, 3, 8, 23))  # naive = UTC: a buys on 9 March, after the end
    assert naive.filter(pl.col("period_number") == 2)["active"].to_list() == [0]
    assert cohort_table(_tx(), end=dt.datetime(2024, 3, 9, 23)).filter(pl.col("period_number") == 2)["active"].to_list() == [1]


def test_quarter_and_week_periods():
    q = cohort_table(_tx(), period="quarter")
    # Q1 cohort {a, b, g, c, d}: Q2 d only; Q2 cohort {e}
    assert q.select("cohort", "period_number", "customers", "active").rows() == [
        ("2024-Q1", 0, 5, 5), ("2024-Q1", 1, 5, 1), ("2024-Q2", 0, 1, 1)]
    w = pl.DataFrame({"customer_id": ["x", "x", "y"], "amount": [1.0, 1.0, 1.0],
                      "timestamp": [dt.datetime(2024, 3, 3), dt.datetime(2024, 3, 12), dt.datetime(2024, 3, 4)]})
    # 3 March 2024 is a Sunday (week of Mon 26 Feb); 4 March starts a week; 12 March is in the week after
    assert cohort_table(w, period="week").select("cohort", "period_number", "active").rows() == [
        ("2024-02-26", 0, 1), ("2024-02-26", 1, 0), ("2024-02-26", 2, 1), ("2024-03-04", 0, 1), ("2024-03-04", 1, 0)]


def test_bad_period_missing_column_and_empty_log():
    with pytest.raises(ConfigError, match="period"):
        cohort_table(_tx(), period="year")
    with pytest.raises(DataError, match="amount"):
        cohort_table(_tx().drop("amount"))
    empty = cohort_table(_tx().head(0))
    assert empty.height == 0 and empty.columns[2] == "period_number"
