"""Segment summary table: size, revenue and typical R/F/M per segment.

>>> import polars as pl
>>> t = pl.DataFrame({"seg": ["A", "A", "B"], "total_spend": [100.0, 300.0, 100.0],
...                   "days_since_last": [5, 15, 100], "n_orders": [2, 4, 1]})
>>> segment_summary(t, "seg").select("seg", "customers", "share", "revenue_share").rows()
[('A', 2, 0.6666666666666666, 0.8), ('B', 1, 0.3333333333333333, 0.2)]
"""
from __future__ import annotations

from typing import Mapping, Sequence

import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.segment.sizes import segment_sizes, with_shares


__all__ = ["segment_summary", "with_actions", "describe_summary", "MEDIAN_COLUMNS", "UNASSIGNED"]

#: feature columns whose per-segment median is reported when present in the table
MEDIAN_COLUMNS = ("days_since_last", "n_orders", "total_spend")

#: label used for customers without a segment (null in ``segment_col``)
UNASSIGNED = "(unassigned)"


def segment_summary(
    table: pl.DataFrame | pl.LazyFrame,
    segment_col: str,
    revenue_col: str = "total_spend",
    with_total: bool = False,
    median_cols: Sequence[str] | None = None,
) -> pl.DataFrame:
    """One row per segment: ``customers, share, revenue, revenue_share`` and ``median_<col>``.

    ``share`` = customers / all customers; ``revenue`` = sum of ``revenue_col`` (net, so it can
    be negative); ``revenue_share`` = revenue / total revenue (null when the total is <= 0); the
    size columns come from :func:`segmentation_lib.segment.sizes.segment_sizes`.
    Medians are of ``median_cols`` (default ``days_since_last, n_orders, total_spend``; pass the
    configured R, F, M measures) where present in the table.
    Customers with a null segment are reported as ``(unassigned)``. Rows are sorted by revenue,
    then customers (both descending), then name. ``with_total`` appends a ``Total`` row whose
    counts and sums equal the column totals (shares 1.0; medians over all customers).
    """
    lf = table.lazy()
    schema = lf.collect_schema()
    for c in (segment_col, revenue_col):
        if c not in schema:
            raise DataError(
                f"segment_summary: column '{c}' not in the table (columns: {list(schema)}). "
                "Fix: pass the segment column produced by the segmentation step and a revenue column."
            )
    medians = [c for c in dict.fromkeys(MEDIAN_COLUMNS if median_cols is None else median_cols) if c in schema]
    median_aggs = [pl.col(c).cast(pl.Float64).median().alias(f"median_{c}") for c in medians]
    filled = lf.with_columns(pl.col(segment_col).cast(pl.String).fill_null(UNASSIGNED))
    out = segment_sizes(filled, segment_col, revenue_col, aggs=median_aggs)
    if with_total:
        n, rev = int(out["customers"].sum()), float(out["revenue"].sum())
        total = filled.select(pl.lit("Total").alias(segment_col), pl.len().cast(pl.Int64).alias("customers"),
                              pl.col(revenue_col).cast(pl.Float64).sum().alias("revenue"), *median_aggs).collect()
        out = pl.concat([out, with_shares(total, n, rev).select(out.columns)], how="vertical_relaxed")
    order = [segment_col, "customers", "share", "revenue", "revenue_share"] + [f"median_{c}" for c in medians]
    out = out.select(order).with_columns((pl.col(segment_col) == "Total").alias("_is_total") if with_total else pl.lit(False).alias("_is_total"))
    out = out.sort(["_is_total", "revenue", "customers", segment_col], descending=[False, True, True, False])
    return out.drop("_is_total")


def with_actions(summary: pl.DataFrame, actions: Mapping[str, str], segment_col: str = "segment",
                 col: str = "suggested_action") -> pl.DataFrame:
    """``summary`` with a ``col`` column: each segment's action from ``actions`` ("" when it has none).

    >>> import polars as pl
    >>> with_actions(pl.DataFrame({"segment": ["A", "B"]}), {"A": "call"})["suggested_action"].to_list()
    ['call', '']
    """
    if segment_col not in summary.columns:
        raise DataError(f"with_actions: column '{segment_col}' not in the summary (columns: {summary.columns}). "
                        "Fix: pass the segment column of the summary table.")
    return summary.with_columns(
        pl.col(segment_col).cast(pl.String).replace_strict(dict(actions), default="", return_dtype=pl.String).alias(col))


def describe_summary(summary: pl.DataFrame, segment_col: str = "segment") -> str:
    """One Markdown sentence: the largest segment and the one bringing the most revenue.

    Uses ``customers, share, revenue_share`` of :func:`segment_summary`; a ``Total`` row is ignored.

    >>> import polars as pl
    >>> t = pl.DataFrame({"seg": ["A", "A", "A", "B"], "total_spend": [1.0, 1.0, 1.0, 7.0]})
    >>> describe_summary(segment_summary(t, "seg"), "seg")
    'The largest segment is **A** (75% of customers). **B** brings the most revenue: 70% of the total from 25% of customers.'
    """
    body = summary.filter(pl.col(segment_col) != "Total")
    if body.height == 0:
        return "No customers to summarise."
    big = body.sort(["customers", segment_col], descending=[True, False]).row(0, named=True)
    text = f"The largest segment is **{big[segment_col]}** ({big['share']:.0%} of customers)."
    if body["revenue_share"].null_count() < body.height:
        rich = body.sort(["revenue_share", segment_col], descending=[True, False], nulls_last=True).row(0, named=True)
        text += (f" **{rich[segment_col]}** brings the most revenue: {rich['revenue_share']:.0%} of the total "
                 f"from {rich['share']:.0%} of customers.")
    return text
