"""What the transaction log holds: activity per month and the top-line numbers of the exploration page.

Both take the clean log as a frame, a lazy frame or a list of lazy frames, one per customer partition
(``DataStage.parts()`` of a large run): customers never span two parts, so per-part counts of customers
and orders add up, and no step holds more than one part's distinct keys.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from segmentation_lib.data.quality import money_units, units_to_money
from segmentation_lib.features.common import order_key

Log = pl.DataFrame | pl.LazyFrame | Sequence[pl.LazyFrame]


def log_parts(tx: Log) -> list[pl.LazyFrame]:
    """The log as a list of lazy frames (customer partitions; one for a single frame)."""
    return [p.lazy() for p in tx] if isinstance(tx, (list, tuple)) else [tx.lazy()]


def monthly_activity(tx: Log) -> pl.DataFrame:
    """Per calendar month: active (purchasing) customers, orders and net revenue.

    >>> import datetime as dt
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "amount": [5.0, -1.0, 2.0],
    ...     "timestamp": [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 9), dt.datetime(2024, 2, 1)]})
    >>> monthly_activity(tx).rows()
    [(datetime.date(2024, 1, 1), 1, 1, 4.0), (datetime.date(2024, 2, 1), 1, 1, 2.0)]
    """
    buy = pl.col("amount") > 0
    per_part = []
    for lf in log_parts(tx):
        order = order_key(lf.collect_schema().names())
        per_part.append(lf.group_by(pl.col("timestamp").dt.date().dt.truncate("1mo").alias("month"))
                        .agg(pl.col("customer_id").filter(buy).n_unique().cast(pl.UInt32).alias("customers"),
                             order.filter(buy).drop_nulls().n_unique().cast(pl.UInt32).alias("orders"),
                             money_units(pl.col("amount")).sum().alias("revenue"))
                        .collect(engine="streaming"))
    out = per_part[0] if len(per_part) == 1 else pl.concat(per_part).group_by("month").agg(pl.all().sum())
    return out.sort("month").with_columns(units_to_money(pl.col("revenue")).alias("revenue"))


def top_line(tx: Log, features: pl.DataFrame) -> dict[str, Any]:
    """Top-line numbers for the exploration text: customers, orders, revenue, period, repeat share, concentration."""
    amount = pl.col("amount")
    per_part = []
    for lf in log_parts(tx):
        order = order_key(lf.collect_schema().names())
        per_part.append(lf.select(pl.len().cast(pl.Int64).alias("rows"),
                                  order.filter(amount > 0).drop_nulls().n_unique().cast(pl.Int64).alias("orders"),
                                  money_units(amount).sum().alias("revenue"), pl.col("timestamp").min().alias("first"),
                                  pl.col("timestamp").max().alias("last"),
                                  money_units(amount.filter(amount < 0)).sum().alias("_returned"),
                                  money_units(amount.filter(amount > 0)).sum().alias("_bought"))
                        .collect(engine="streaming"))
    t = pl.concat(per_part).select(pl.col("rows", "orders").sum(),
                                   units_to_money(pl.col("revenue", "_returned", "_bought").sum()),
                                   pl.col("first").min(), pl.col("last").max()).row(0, named=True)
    returned, bought = t.pop("_returned"), t.pop("_bought")
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
        "returns_share": -float(returned) / max(float(bought), 1e-9),
    }
