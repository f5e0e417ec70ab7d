"""Migration between two snapshots: who moved from which segment to which.

>>> import polars as pl
>>> a = pl.DataFrame({"customer_id": ["x", "y"], "segment": ["Champions", "Loyal"]})
>>> b = pl.DataFrame({"customer_id": ["x", "y"], "segment": ["At Risk", "Loyal"]})
>>> migration(a, b).summary["changed_share"]
0.5
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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
    present_from, present_to = set(both["from_segment"].unique().to_list()), set(both["to_segment"].unique().to_list())
    from_names = [s for s in names if s in present_from]  # (the sets once: a list of a million names per name was slow)
    to_names = [s for s in names if s in present_to]

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


# --------------------------------------------------------------------------------------------
# between two runs: size changes, top flows, movers and their main reason
# --------------------------------------------------------------------------------------------
def segment_changes(before: pl.DataFrame, after: pl.DataFrame, segment_col: str = "segment",
                    order: Sequence[str] | None = None) -> pl.DataFrame:
    """Per segment: customers and revenue before and now, and the changes (segments of either side).

    ``before`` / ``after`` are size tables (``segment_col, customers, revenue``; revenue may be absent).

    >>> b = pl.DataFrame({"segment": ["A", "B"], "customers": [10, 5], "revenue": [100.0, 50.0]})
    >>> a = pl.DataFrame({"segment": ["A", "C"], "customers": [8, 4], "revenue": [90.0, 20.0]})
    >>> segment_changes(b, a).select("segment", "customers_change", "revenue_change").rows()
    [('A', -2, -10.0), ('B', -5, -50.0), ('C', 4, 20.0)]
    """
    def side(t: pl.DataFrame, suffix: str) -> pl.DataFrame:
        rev = pl.col("revenue").cast(pl.Float64) if "revenue" in t.columns else pl.lit(None, pl.Float64)
        return t.select(pl.col(segment_col).cast(pl.String).alias("segment"),
                        pl.col("customers").cast(pl.Int64).alias(f"customers_{suffix}"), rev.alias(f"revenue_{suffix}"))

    out = (side(before, "before").join(side(after, "now"), on="segment", how="full", coalesce=True)
           .with_columns(pl.col("customers_before", "customers_now").fill_null(0))
           .with_columns((pl.col("customers_now") - pl.col("customers_before")).alias("customers_change"),
                         (pl.col("revenue_now").fill_null(0.0) - pl.col("revenue_before").fill_null(0.0)).alias("revenue_change")))
    names = list(order or []) + sorted(set(out["segment"].drop_nulls().to_list()) - set(order or []))
    rank = {s: i for i, s in enumerate(names)}
    return out.sort(pl.col("segment").replace_strict(rank, default=len(rank)))


def top_flows(counts: pl.DataFrame, n: int = 5) -> pl.DataFrame:
    """The ``n`` largest moves between different segments (``from_segment, to_segment, count``), largest first.

    >>> c = pl.DataFrame({"from_segment": ["A", "A", "B"], "to_segment": ["A", "B", "A"], "count": [9, 4, 2]})
    >>> top_flows(c).rows()
    [('A', 'B', 4), ('B', 'A', 2)]
    """
    return (counts.filter(pl.col("from_segment") != pl.col("to_segment"))
            .sort(["count", "from_segment", "to_segment"], descending=[True, False, False]).head(n))


def movers(before: pl.DataFrame | pl.LazyFrame, after: pl.DataFrame | pl.LazyFrame, id_col: str = "customer_id",
           segment_col: str = "segment") -> pl.DataFrame:
    """Customers in both snapshots whose segment changed: ``id_col, from_segment, to_segment``, by id.

    >>> b = pl.DataFrame({"customer_id": ["x", "y"], "segment": ["A", "B"]})
    >>> movers(b, pl.DataFrame({"customer_id": ["x", "y"], "segment": ["A", "C"]})).rows()
    [('y', 'B', 'C')]
    """
    b = _snapshot(before, id_col, segment_col, "before").rename({"segment": "from_segment"})
    a = _snapshot(after, id_col, segment_col, "after").rename({"segment": "to_segment"})
    return (b.join(a, on=id_col, how="inner").filter(pl.col("from_segment") != pl.col("to_segment"))
            .select(id_col, "from_segment", "to_segment").sort(id_col))


#: the RFM score columns behind a mover's main reason, and their words
SCORE_WORDS = {"r_score": "recency score", "f_score": "frequency score", "m_score": "monetary score"}


def main_reason(before_scores: pl.DataFrame, after_scores: pl.DataFrame, id_col: str = "customer_id",
                scores: Mapping[str, str] = SCORE_WORDS) -> pl.DataFrame:
    """Per customer in both tables: the score that changed most, in words (``id_col, reason``).

    Ties go to the first score of ``scores`` (recency before frequency before monetary); no change
    reads "scores unchanged".

    >>> b = pl.DataFrame({"customer_id": ["x"], "r_score": [5], "f_score": [4], "m_score": [4]})
    >>> a = pl.DataFrame({"customer_id": ["x"], "r_score": [2], "f_score": [4], "m_score": [3]})
    >>> main_reason(b, a)["reason"].to_list()
    ['recency score 5 -> 2']
    """
    cols = [c for c in scores if c in before_scores.columns and c in after_scores.columns]
    if not cols:
        return before_scores.select(id_col).with_columns(pl.lit("scores not available").alias("reason"))
    j = before_scores.select(id_col, *cols).join(after_scores.select(id_col, *cols), on=id_col, suffix="_now")
    diffs = [(pl.col(f"{c}_now").cast(pl.Int64) - pl.col(c).cast(pl.Int64)).abs().fill_null(-1) for c in cols]
    best = pl.max_horizontal(diffs)
    expr = pl.lit("scores unchanged")
    for c, d in reversed(list(zip(cols, diffs))):  # the first score of the largest change wins
        text = pl.format(f"{scores[c]} {{}} -> {{}}", pl.col(c), pl.col(f"{c}_now"))
        expr = pl.when((d == best) & (best > 0)).then(text).otherwise(expr)
    return j.select(id_col, expr.alias("reason"))


def retention_by_segment(transactions: pl.DataFrame | pl.LazyFrame, segments: pl.DataFrame, start: Any, end: Any,
                         id_col: str = "customer_id", month_days: int = 30) -> pl.DataFrame:
    """Share of each segment's customers who bought in month 1, 2, 3 ... after ``start`` (up to ``end``).

    ``segments``: ``id_col, segment`` at ``start``; months are ``month_days``-day periods; only whole
    months before ``end`` are reported. Columns ``segment, month, customers, buyers, share``.

    >>> import datetime as dt
    >>> t0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "amount": [1.0, 1.0, 1.0],
    ...                    "timestamp": [t0 + dt.timedelta(days=d) for d in (5, 40, 5)]})
    >>> seg = pl.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["S", "S", "S"]})
    >>> retention_by_segment(tx, seg, t0, t0 + dt.timedelta(days=60))["buyers"].to_list()
    [2, 1]
    """
    months = int((end - start).days // month_days)
    seg = segments.select(pl.col(id_col).cast(pl.String), pl.col("segment").cast(pl.String))
    sizes = seg.group_by("segment").agg(pl.len().alias("customers"))
    if months < 1:
        return pl.DataFrame(schema={"segment": pl.String, "month": pl.Int64, "customers": pl.UInt32,
                                    "buyers": pl.UInt32, "share": pl.Float64})
    bought = (transactions.lazy().filter((pl.col("timestamp") >= start) & (pl.col("amount") > 0))
              .select(pl.col(id_col).cast(pl.String),
                      ((pl.col("timestamp") - pl.lit(start)).dt.total_days() // month_days + 1).cast(pl.Int64).alias("month"))
              .filter(pl.col("month") <= months).unique().collect())
    grid = sizes.join(pl.DataFrame({"month": list(range(1, months + 1))}, schema={"month": pl.Int64}), how="cross")
    buyers = bought.join(seg, on=id_col, how="inner").group_by("segment", "month").agg(pl.len().alias("buyers"))
    return (grid.join(buyers, on=["segment", "month"], how="left").with_columns(pl.col("buyers").fill_null(0))
            .with_columns((pl.col("buyers") / pl.col("customers")).alias("share")).sort("segment", "month")
            .select("segment", "month", "customers", "buyers", "share"))
