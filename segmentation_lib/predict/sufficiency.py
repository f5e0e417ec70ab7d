"""Is there enough data for predicted value? A check in the spirit of Klaviyo's predictive-analytics requirements.

Klaviyo states its requirements as at least 500 customers who purchased, at least 180 days of
order history, orders in the last 30 days and some customers with three or more orders. The
check reads the BTYD summary only and returns plain-language warnings (an empty list when all is
well); it raises only for a summary that cannot be used at all. The model fits raise their own
errors (:class:`~segmentation_lib.errors.DataError`, :class:`~segmentation_lib.errors.ModelError`)
when the data cannot identify them.

>>> import polars as pl
>>> s = pl.DataFrame({"frequency": [0.0, 2.0], "recency": [0.0, 50.0], "T": [60.0, 90.0]})
>>> [w.split(":")[0] for w in check_data_sufficiency(s, freq="D")]
['Few purchasers', 'Short history', 'No recent orders', 'Few customers with 3+ orders']
"""
from __future__ import annotations

import numpy as np
import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.predict.common import COUNT_COLUMNS, period_days, summary_columns


def check_data_sufficiency(
    summary: pl.DataFrame,
    *,
    freq: str = "D",
    min_purchasers: int = 500,
    min_history_days: float = 180,
    recent_days: float = 30,
    min_three_plus: int = 20,
) -> list[str]:
    """Plain-language warnings when the summary is thin for BTYD predictions (empty list: enough data).

    Checks: at least ``min_purchasers`` customers; at least ``min_history_days`` from the earliest
    first purchase to the observation end (the largest ``T``); some customer whose last purchase
    is within ``recent_days`` of the observation end; at least ``min_three_plus`` customers with
    purchases in 3 or more distinct periods (``frequency >= 2``). Raises a DataError for an empty
    summary.

    >>> import polars as pl
    >>> s = pl.DataFrame({"frequency": [3.0] * 600, "recency": [300.0] * 600, "T": [310.0] * 600})
    >>> check_data_sufficiency(s)
    []
    """
    x, tx, T = summary_columns(summary, COUNT_COLUMNS, "data sufficiency check")
    if x.size == 0:
        raise DataError(
            "data sufficiency check: the summary has no customers, so nothing can be predicted. Fix: check the "
            "observation end (as_of) is after the first transactions and that the log is not filtered to nothing."
        )
    days = period_days(freq)
    out: list[str] = []
    n = int(x.size)
    if n < min_purchasers:
        out.append(
            f"Few purchasers: only {n:,} customers have purchased (about {min_purchasers:,} are needed for stable "
            "estimates); predicted purchases and CLV will be noisy, so read them as rough rankings. Fix: add more "
            "customers (a longer history or more shops)."
        )
    history = float(T.max()) * days
    if history < min_history_days:
        out.append(
            f"Short history: the log covers {history:,.0f} days from the first purchase to the observation end (at "
            f"least {min_history_days:,.0f} are needed to tell slow buyers from lost ones); P(alive) and churn risk are "
            "unreliable. Fix: load a longer transaction history."
        )
    since_last = (T - tx) * days
    n_recent = int((since_last <= recent_days).sum())
    if n_recent == 0:
        out.append(
            f"No recent orders: no customer ordered in the last {recent_days:,.0f} days before the observation end "
            f"(the most recent purchase was {float(since_last.min()):,.0f} days before it). Predictions describe a "
            "stale customer base. Fix: check the as_of date and that the latest transactions were loaded."
        )
    n3 = int((x >= 2).sum())
    if n3 < min_three_plus:
        out.append(
            f"Few customers with 3+ orders: {n3:,} customers bought in 3 or more separate periods (at least "
            f"{min_three_plus:,} are needed to estimate how buying rates vary); the count model may not converge or "
            "may over-smooth. Fix: use a longer history or a finer period (freq='D')."
        )
    repeat_share = float(np.mean(x > 0))
    if repeat_share < 0.05:
        out.append(
            f"Few repeat buyers: only {repeat_share:.1%} of customers bought more than once; the models learn buying "
            "rates from repeat purchases, so predictions rest on very little. Fix: use a longer history."
        )
    return out
