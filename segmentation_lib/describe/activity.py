"""What the transaction log holds: activity per month and the top-line numbers of the exploration page."""
from __future__ import annotations

from typing import Any

import polars as pl

from segmentation_lib.features.common import order_key




def monthly_activity(tx: pl.DataFrame) -> pl.DataFrame:
    """Per calendar month: active (purchasing) customers, orders and net revenue.

    >>> import datetime as dt
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "amount": [5.0, -1.0, 2.0],
    ...     "timestamp": [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 9), dt.datetime(2024, 2, 1)]})
    >>> monthly_activity(tx).rows()
    [(datetime.date(2024, 1, 1), 1, 1, 4.0), (datetime.date(2024, 2, 1), 1, 1, 2.0)]
    """
    order = order_key(tx.columns)
    buy = pl.col("amount") > 0
    return (tx.group_by(pl.col("timestamp").dt.date().dt.truncate("1mo").alias("month"))
            .agg(pl.col("customer_id").filter(buy).n_unique().alias("customers"),
                 order.filter(buy).drop_nulls().n_unique().alias("orders"),
                 pl.col("amount").sum().alias("revenue"))
            .sort("month"))


def top_line(tx: pl.DataFrame, features: pl.DataFrame) -> dict[str, Any]:
    """Top-line numbers for the exploration text: customers, orders, revenue, period, repeat share, concentration."""
    order = order_key(tx.columns)
    t = tx.select(pl.len().alias("rows"), order.filter(pl.col("amount") > 0).drop_nulls().n_unique().alias("orders"),
                  pl.col("amount").sum().alias("revenue"), pl.col("timestamp").min().alias("first"),
                  pl.col("timestamp").max().alias("last")).row(0, named=True)
    spend = features["total_spend"].sort(descending=True)
    top = max(1, int(round(0.2 * spend.len())))
    total = float(spend.sum()) or 1.0
    return {
        **t,
        "customers": features.height,
        "repeat_share": float((features["n_orders"] >= 2).mean()),
        "median_spend": float(features["total_spend"].median()),
        "median_orders": float(features["n_orders"].median()),
        "top20_revenue_share": float(spend.head(top).sum()) / total,
        "returns_share": float(-tx.filter(pl.col("amount") < 0)["amount"].sum()) / max(float(tx.filter(pl.col("amount") > 0)["amount"].sum()), 1e-9),
    }
