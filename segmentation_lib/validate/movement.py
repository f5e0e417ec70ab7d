"""Migration between two snapshots: who moved from which segment to which.

>>> import polars as pl
>>> a = pl.DataFrame({"customer_id": ["x", "y"], "segment": ["Champions", "Loyal"]})
>>> b = pl.DataFrame({"customer_id": ["x", "y"], "segment": ["At Risk", "Loyal"]})
>>> migration(a, b).summary["changed_share"]
0.5
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.validate.common import DEFAULT_AT_RISK, check_columns



# --------------------------------------------------------------------------------------------
# migration
# --------------------------------------------------------------------------------------------
@dataclass
class MigrationResult:
    """Transition tables between two snapshots. ``counts`` / ``shares`` long (from_segment,
    to_segment, count, share) over customers in both; ``counts_wide`` / ``shares_wide`` (rows =
    before); ``moved_to_at_risk`` customers; ``sankey_data`` (source, target, count) with "(new)"
    and "(gone)" nodes for customers who appeared / disappeared; ``summary`` dict."""

    counts: pl.DataFrame
    shares: pl.DataFrame
    counts_wide: pl.DataFrame
    shares_wide: pl.DataFrame
    moved_to_at_risk: pl.DataFrame
    sankey_data: pl.DataFrame
    summary: dict[str, Any]


def _snapshot(df: pl.DataFrame | pl.LazyFrame, id_col: str, segment_col: str, name: str) -> pl.DataFrame:
    lf = df.lazy()
    check_columns(lf.collect_schema(), [id_col, segment_col], f"migration ({name} snapshot)")
    out = lf.select(pl.col(id_col).cast(pl.String), pl.col(segment_col).cast(pl.String).alias("segment")).collect()
    dup = out.filter(pl.col(id_col).is_duplicated())
    if dup.height:
        raise DataError(
            f"migration: the {name} snapshot has {dup[id_col].n_unique()} customer(s) with more than one row "
            f"(e.g. '{dup[id_col][0]}') in column '{id_col}'. Fix: pass one segment per customer."
        )
    return out.with_columns(pl.col("segment").fill_null("(null)"))


def _in_set(col: pl.Expr, names: Sequence[str]) -> pl.Expr:
    return col.str.to_lowercase().is_in([s.lower() for s in names])


def migration(
    before: pl.DataFrame | pl.LazyFrame,
    after: pl.DataFrame | pl.LazyFrame,
    id_col: str = "customer_id",
    segment_col: str = "segment",
    at_risk: Sequence[str] = DEFAULT_AT_RISK,
    order: Sequence[str] | None = None,
) -> MigrationResult:
    """Segment transitions between two snapshots assigned with the same frozen model / RFM edges.

    >>> b = pl.DataFrame({"customer_id": ["a", "b"], "segment": ["Champions", "Champions"]})
    >>> a = pl.DataFrame({"customer_id": ["a", "b"], "segment": ["Champions", "At Risk"]})
    >>> migration(b, a).summary["changed_share"]
    0.5
    """
    b = _snapshot(before, id_col, segment_col, "before")
    a = _snapshot(after, id_col, segment_col, "after")
    both = b.join(a, on=id_col, how="inner", suffix="_after").rename(
        {"segment": "from_segment", "segment_after": "to_segment"}
    )
    appeared = a.join(b, on=id_col, how="anti")
    gone = b.join(a, on=id_col, how="anti")
    names = order or sorted(set(b["segment"].unique().to_list()) | set(a["segment"].unique().to_list()))
    rank = {s: i for i, s in enumerate(names)}
    counts = (
        both.group_by("from_segment", "to_segment").agg(pl.len().cast(pl.Int64).alias("count"))
        .with_columns((pl.col("count") / pl.col("count").sum().over("from_segment")).alias("share"))
        .sort(pl.col("from_segment").replace_strict(rank, default=len(rank)),
              pl.col("to_segment").replace_strict(rank, default=len(rank)))
    )
    from_names = [s for s in names if s in set(both["from_segment"].to_list())]
    to_names = [s for s in names if s in set(both["to_segment"].to_list())]

    def wide(value: str) -> pl.DataFrame:
        if counts.height == 0:
            return pl.DataFrame({"from_segment": pl.Series([], dtype=pl.String)})
        w = counts.pivot(on="to_segment", index="from_segment", values=value).fill_null(0)
        w = w.select("from_segment", *[c for c in to_names if c in w.columns])
        return w.sort(pl.col("from_segment").replace_strict(rank, default=len(rank)))

    moved = (
        both.filter(_in_set(pl.col("to_segment"), at_risk) & ~_in_set(pl.col("from_segment"), at_risk))
        .sort(id_col)
    )
    sankey = pl.concat(
        [
            counts.select(pl.col("from_segment").alias("source"), pl.col("to_segment").alias("target"), "count"),
            appeared.group_by("segment").agg(pl.len().cast(pl.Int64).alias("count"))
            .select(pl.lit("(new)").alias("source"), pl.col("segment").alias("target"), "count").sort("target"),
            gone.group_by("segment").agg(pl.len().cast(pl.Int64).alias("count"))
            .select(pl.col("segment").alias("source"), pl.lit("(gone)").alias("target"), "count").sort("source"),
        ]
    )
    n_both = both.height
    changed = int((both["from_segment"] != both["to_segment"]).sum()) if n_both else 0
    summary = {
        "customers_before": b.height,
        "customers_after": a.height,
        "customers_in_both": n_both,
        "appeared": appeared.height,
        "disappeared": gone.height,
        "changed": changed,
        "changed_share": changed / n_both if n_both else None,
        "moved_to_at_risk": moved.height,
        "moved_to_at_risk_share": moved.height / n_both if n_both else None,
        "segments_before": from_names,
        "segments_after": to_names,
    }
    return MigrationResult(
        counts.select("from_segment", "to_segment", "count"),
        counts.select("from_segment", "to_segment", "share"),
        wide("count"),
        wide("share"),
        moved,
        sankey,
        summary,
    )
