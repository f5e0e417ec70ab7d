"""The sentences of the exploration page (01), written from plain tables and dicts.

>>> top_line_markdown({"customers": 2, "orders": 3, "rows": 4, "first": dt.date(2024, 1, 2), "last": dt.date(2024, 3, 4),
...     "revenue": 10.0, "returns_share": 0.1, "repeat_share": 0.5, "median_orders": 1.5, "median_spend": 5.0,
...     "top20_revenue_share": 0.6}, dt.date(2024, 3, 5)).splitlines()[0]
'- **2 customers** placed **3 orders** (4 transaction lines) between'
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import polars as pl


def top_line_markdown(tl: Mapping[str, Any], as_of: dt.date) -> str:
    """The top-line bullets from :func:`describe.activity.top_line` and the analysis date."""
    return (
        f"- **{tl['customers']:,} customers** placed **{tl['orders']:,} orders** ({tl['rows']:,} transaction lines) between\n"
        f"  {tl['first']:%d %b %Y} and {tl['last']:%d %b %Y}; the analysis date is **{as_of:%d %b %Y}**.\n"
        f"- Net revenue was **{tl['revenue']:,.0f}**; returns and cancellations took back {tl['returns_share']:.1%} of gross sales.\n"
        f"- {tl['repeat_share']:.0%} of customers ordered more than once. The median customer placed {tl['median_orders']:.0f}\n"
        f"  order(s) and spent {tl['median_spend']:,.0f} in total.\n"
        f"- The top 20% of customers by spend bring in **{tl['top20_revenue_share']:.0%} of net revenue**."
    )


def complete_months(monthly: pl.DataFrame, as_of: dt.date) -> pl.DataFrame:
    """``monthly`` without its last month when the analysis date cuts it short (kept with 2 months or fewer).

    >>> m = pl.DataFrame({"month": [1, 2, 3]})
    >>> complete_months(m, dt.date(2024, 3, 15)).height, complete_months(m, dt.date(2024, 4, 1)).height
    (2, 3)
    """
    partial = as_of.day != 1 and monthly.height > 2  # the month of the analysis date is incomplete
    return monthly.head(monthly.height - 1) if partial else monthly


def activity_sentence(monthly: pl.DataFrame, as_of: dt.date) -> str:
    """Peak revenue month, the last complete month and the average monthly customers (``monthly_activity`` table)."""
    full = complete_months(monthly, as_of)
    peak = full.sort("revenue", descending=True).row(0, named=True)
    last = full.row(-1, named=True)
    return (f"Revenue peaked in **{peak['month']:%B %Y}** ({peak['revenue']:,.0f} from {peak['customers']:,} customers). "
            f"In the last complete month, {last['month']:%B %Y}, {last['customers']:,} customers placed {last['orders']:,} orders "
            f"({last['revenue']:,.0f}), against a monthly average of {full['customers'].mean():,.0f} customers over the period.")


def spend_frequency_quantiles(features: pl.DataFrame) -> dict[str, float]:
    """Median and 90th percentile of spend, share of one-time buyers and the 90th percentile of orders.

    >>> spend_frequency_quantiles(pl.DataFrame({"total_spend": [1.0, 2.0, 3.0], "n_orders": [1, 1, 4]}))["one_time"]
    0.6666666666666666
    """
    return features.select(pl.col("total_spend").quantile(0.5).alias("p50"), pl.col("total_spend").quantile(0.9).alias("p90"),
                           (pl.col("n_orders") == 1).mean().alias("one_time"),
                           pl.col("n_orders").quantile(0.9).alias("o90")).row(0, named=True)


def spend_frequency_sentence(q: Mapping[str, float]) -> str:
    """The spend / frequency sentence from :func:`spend_frequency_quantiles`.

    >>> spend_frequency_sentence({"p50": 50.0, "p90": 900.0, "one_time": 0.25, "o90": 7.0})
    'Half of the customers spent less than **50**, while the top 10% spent more than **900**. 25% bought only once; the most active 10% placed 7 or more orders.'
    """
    return (f"Half of the customers spent less than **{q['p50']:,.0f}**, while the top 10% spent more than **{q['p90']:,.0f}**. "
            f"{q['one_time']:.0%} bought only once; the most active 10% placed {q['o90']:.0f} or more orders.")
