"""The data-sufficiency check: silent on enough data, one plain warning per shortfall, an error for nothing at all."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.features.btyd import btyd_summary
from segmentation_lib.predict.sufficiency import check_data_sufficiency


def test_the_demo_has_enough_data(planted) -> None:
    _, summary, _ = planted
    assert check_data_sufficiency(summary, freq="D") == []


def test_each_shortfall_is_named(planted) -> None:
    tx, _, _ = planted
    # 300 customers, 90 days of history, nothing in the last 45 days
    few = tx.filter(pl.col("customer_id").is_in(tx["customer_id"].unique().sort()[:300].implode()))
    short = few.filter(pl.col("timestamp").dt.date().is_between(pl.date(2024, 8, 20), pl.date(2024, 11, 16)))
    s = btyd_summary(short, "2025-01-01", freq="D")
    found = check_data_sufficiency(s, freq="D")
    heads = [w.split(":")[0] for w in found]
    assert heads[:3] == ["Few purchasers", "Short history", "No recent orders"]
    assert "about 500 are needed" in found[0] and "Fix:" in found[0]
    assert "at least 180 are needed" in found[1]
    assert "last 30 days" in found[2]


def test_units_are_read_from_freq(planted) -> None:
    tx, _, _ = planted
    weeks = btyd_summary(tx, "2025-01-01", freq="W")
    assert check_data_sufficiency(weeks, freq="W") == []
    # the same table read as days would be 1/7 of the history: flagged
    assert any(w.startswith("Short history") for w in check_data_sufficiency(weeks, freq="D"))


def test_few_repeat_buyers() -> None:
    s = pl.DataFrame({"frequency": [0.0] * 990 + [2.0] * 10, "recency": [0.0] * 990 + [100.0] * 10,
                      "T": [300.0] * 990 + [110.0] * 10})
    heads = [w.split(":")[0] for w in check_data_sufficiency(s)]
    assert heads == ["Few customers with 3+ orders", "Few repeat buyers"]


def test_empty_summary_is_an_error() -> None:
    empty = pl.DataFrame({"frequency": [], "recency": [], "T": []}, schema={c: pl.Float64 for c in ("frequency", "recency", "T")})
    with pytest.raises(DataError, match="no customers.*Fix"):
        check_data_sufficiency(empty)
