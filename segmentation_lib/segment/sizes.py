"""The one per-segment size table: customers, share, revenue and revenue share of every segment.

Every per-segment table of the kit (the RFM and rule summaries, the value/engagement cells, the
cluster profiles, ``segments.json``) is built on :func:`segment_sizes`, so they agree on the
rules below:

- ``share`` = customers in the segment / all customers of the table;
- ``revenue`` = the segment's sum of ``revenue_col`` (net of returns, so it can be negative);
- ``revenue_share`` = revenue / total revenue of the table, and **null when the total revenue is
  zero or negative**: a share of a non-positive total has no meaning (a segment would show 150%
  or a negative share), so the table says "undefined" instead of a misleading number.

>>> import polars as pl
>>> t = pl.DataFrame({"s": ["a", "a", "b"], "total_spend": [1.0, 2.0, 7.0]})
>>> segment_sizes(t, "s").rows()
[('a', 2, 3.0, 0.6666666666666666, 0.3), ('b', 1, 7.0, 0.3333333333333333, 0.7)]
"""
from __future__ import annotations

from typing import Sequence

import polars as pl

from segmentation_lib.errors import DataError


def segment_sizes(
    table: pl.DataFrame | pl.LazyFrame,
    segment_col: str,
    revenue_col: str | None = "total_spend",
    aggs: Sequence[pl.Expr] = (),
) -> pl.DataFrame:
    """One row per value of ``segment_col`` (null is a group of its own), sorted by it:
    ``segment_col, customers, [revenue], share, [revenue_share], *aggs``.

    ``revenue_col=None`` leaves out the two revenue columns; ``aggs`` are extra per-segment
    aggregations (e.g. medians). Totals are taken over the rows of the table.
    """
    lf = table.lazy()
    schema = lf.collect_schema()
    missing = [c for c in (segment_col, revenue_col) if c is not None and c not in schema]
    if missing:
        raise DataError(f"segment_sizes: column(s) {missing} not in the table (columns: {list(schema)}). "
                        "Fix: pass the segment column produced by the segmentation step and a revenue column "
                        "such as total_spend.")
    stats = [pl.len().cast(pl.Int64).alias("customers")]
    totals = [pl.len().cast(pl.Int64).alias("customers")]
    if revenue_col is not None:
        stats.append(pl.col(revenue_col).cast(pl.Float64).sum().alias("revenue"))
        totals.append(pl.col(revenue_col).cast(pl.Float64).sum().alias("revenue"))
    groups, total = pl.collect_all([lf.group_by(segment_col).agg(*stats, *aggs).sort(segment_col, nulls_last=True),
                                    lf.select(totals)])
    t = total.row(0, named=True)
    return with_shares(groups, t["customers"], t.get("revenue"))


def with_shares(sizes: pl.DataFrame, customers_total: int | None = None,
                revenue_total: float | None = None) -> pl.DataFrame:
    """``sizes`` (columns ``customers`` and optionally ``revenue``) with ``share`` and
    ``revenue_share`` placed after them, by the rules of this module. Totals default to the
    column sums (use that for tables that list every segment, empty ones included).

    >>> with_shares(pl.DataFrame({"customers": [1, 3], "revenue": [5.0, -5.0]}))["revenue_share"].to_list()
    [None, None]
    """
    n = int(sizes["customers"].sum()) if customers_total is None else int(customers_total)
    cols = [(pl.col("customers") / n if n else pl.lit(None, pl.Float64)).alias("share")]
    if "revenue" in sizes.columns:
        r = float(sizes["revenue"].sum()) if revenue_total is None else float(revenue_total)
        cols.append((pl.col("revenue") / r if r > 0 else pl.lit(None, pl.Float64)).alias("revenue_share"))
    out = sizes.with_columns(cols)
    lead = [c for c in out.columns if c not in ("customers", "revenue", "share", "revenue_share")][:1]
    order = lead + [c for c in ("customers", "revenue", "share", "revenue_share") if c in out.columns]
    return out.select(order + [c for c in out.columns if c not in order])
