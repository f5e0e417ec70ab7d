"""Cohort retention: a complete cohort x period table, zero cells included, up to the data's end.

A customer's *cohort* is the period (month, quarter or week) of their first purchase (a row with
``amount > 0``; rows without a customer id are ignored). For every cohort the table has one row per period from 0 up to the period that
holds the end of the data, whether or not anybody bought in it:

- ``active`` = customers of the cohort with a purchase in that period (0 when nobody returned);
- ``retention`` = ``active / customers`` (period 0 is 1.0 by definition);
- cells after the data end do not exist (they are unknown, not 0). The last period of each cohort
  can be partly observed (the data may end mid-month).

Averages across cohorts (:func:`retention_curve`) pool customers over the cohorts that reached the
period, so cohorts where nobody came back count as 0 instead of being left out.

>>> import datetime as dt, polars as pl
>>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "amount": [5.0, 3.0, 2.0],
...     "timestamp": [dt.datetime(2024, 1, 3), dt.datetime(2024, 3, 9), dt.datetime(2024, 1, 5)]})
>>> cohort_table(tx).select("period_number", "active", "retention").rows()
[(0, 2, 1.0), (1, 0, 0.0), (2, 1, 0.5)]
"""
from __future__ import annotations

import datetime as dt
from typing import Iterable

import polars as pl

from segmentation_lib.errors import ConfigError, DataError


__all__ = ["cohort_table", "retention_curve", "describe_retention", "PERIODS"]

#: supported period lengths
PERIODS = ("month", "quarter", "week")

_EPOCH_MONDAY = dt.date(1970, 1, 5)  # weeks start on Monday (ISO)


def _period_index(ts: pl.Expr, period: str) -> pl.Expr:
    """Integer index of the period holding ``ts`` (consecutive periods differ by 1)."""
    if period == "month":
        return ts.dt.year().cast(pl.Int64) * 12 + ts.dt.month().cast(pl.Int64) - 1
    if period == "quarter":
        return ts.dt.year().cast(pl.Int64) * 4 + (ts.dt.month().cast(pl.Int64) - 1) // 3
    return (ts.dt.date() - pl.lit(_EPOCH_MONDAY)).dt.total_days().cast(pl.Int64) // 7


def _not_after(ts: pl.Expr, end: dt.datetime | dt.date, dtype: pl.DataType) -> pl.Expr:
    """``ts <= end``; a date ``end`` includes its whole day, a naive datetime is read in the column's zone."""
    if not isinstance(end, dt.datetime):
        return ts.dt.date() <= pl.lit(end)
    zone = getattr(dtype, "time_zone", None)
    if end.tzinfo is None and zone:
        return ts <= pl.lit(end).dt.replace_time_zone(zone)
    return ts <= pl.lit(end)


def _period_start(index: pl.Expr, period: str) -> pl.Expr:
    """First day of the period with this index (inverse of :func:`_period_index`)."""
    if period == "month":
        return pl.date(index // 12, index % 12 + 1, 1)
    if period == "quarter":
        return pl.date(index // 4, (index % 4) * 3 + 1, 1)
    return pl.lit(_EPOCH_MONDAY) + pl.duration(weeks=index)


def _period_label(start: pl.Expr, period: str) -> pl.Expr:
    """Readable cohort label: '2024-03' (month), '2024-Q1' (quarter), '2024-03-04' (week's Monday)."""
    if period == "month":
        return start.dt.strftime("%Y-%m")
    if period == "quarter":
        return pl.format("{}-Q{}", start.dt.year(), start.dt.quarter())
    return start.dt.strftime("%Y-%m-%d")


def cohort_table(
    transactions: pl.DataFrame | pl.LazyFrame,
    period: str = "month",
    end: dt.datetime | dt.date | None = None,
) -> pl.DataFrame:
    """Complete long table ``cohort, cohort_start, period_number, customers, active, retention``.

    One row per (cohort, period_number) for ``period_number`` = 0 .. (period of ``end`` - cohort),
    zero cells included; ``customers`` is the cohort size. ``end`` defaults to the last timestamp
    of the log (any row, returns included); purchases after ``end`` are ignored. ``period`` is
    ``month``, ``quarter`` or ``week`` (Monday-based). Sorted by cohort, then period_number.

    >>> import datetime as dt, polars as pl
    >>> tx = pl.DataFrame({"customer_id": ["a", "b", "b"], "amount": [1.0, 1.0, 1.0],
    ...     "timestamp": [dt.datetime(2024, 1, 9), dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 1)]})
    >>> cohort_table(tx).select("cohort", "period_number", "active").rows()
    [('2024-01', 0, 1), ('2024-01', 1, 0), ('2024-01', 2, 0), ('2024-02', 0, 1), ('2024-02', 1, 1)]
    """
    if period not in PERIODS:
        raise ConfigError(f"cohort_table: period={period!r} is not supported. Fix: use one of {list(PERIODS)}.")
    lf = transactions.lazy()
    schema = lf.collect_schema()
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in schema]
    if missing:
        raise DataError(
            f"cohort_table: column(s) {missing} not in the transactions (columns: {list(schema)}). "
            "Fix: pass the cleaned canonical transaction frame (customer_id, timestamp, amount)."
        )
    ts = pl.col("timestamp")
    if end is not None:
        lf = lf.filter(_not_after(ts, end, schema["timestamp"]))
    # one streaming group-by over the log: a cell per (customer, period) with any row, and whether it
    # holds a purchase; the period index grows with the timestamp, so the last cell is the data's end
    cells = (lf.group_by("customer_id", _period_index(ts, period).alias("p"))
             .agg((pl.col("amount") > 0).any().alias("bought"))
             .collect(engine="streaming"))
    end_idx = cells["p"].max() if end is None else pl.select(_period_index(pl.lit(end), period)).item()
    if end_idx is None:  # no rows at all
        return _empty()
    counts = (cells.lazy().filter(pl.col("bought") & pl.col("customer_id").is_not_null())
              .with_columns(pl.col("p").min().over("customer_id").alias("c"))
              .group_by("c", (pl.col("p") - pl.col("c")).alias("period_number"))
              .agg(pl.len().cast(pl.Int64).alias("active"))
              .collect().lazy())
    # every customer buys in the period of their first purchase: the cohort sizes are the period-0 cells
    sizes = counts.filter(pl.col("period_number") == 0).select("c", pl.col("active").alias("customers"))
    grid = (sizes.with_columns(pl.int_ranges(0, pl.lit(int(end_idx), pl.Int64) - pl.col("c") + 1).alias("period_number"))
            .explode("period_number")
            .drop_nulls("period_number")
            .with_columns(pl.col("period_number").cast(pl.Int64)))
    out = (grid.join(counts, on=["c", "period_number"], how="left")
           .with_columns(pl.col("active").fill_null(0))
           .with_columns((pl.col("active") / pl.col("customers")).alias("retention"),
                         _period_start(pl.col("c"), period).alias("cohort_start"))
           .with_columns(_period_label(pl.col("cohort_start"), period).alias("cohort"))
           .sort("c", "period_number")
           .select("cohort", "cohort_start", "period_number", "customers", "active", "retention"))
    return out.collect()


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"cohort": pl.String, "cohort_start": pl.Date, "period_number": pl.Int64,
                                "customers": pl.Int64, "active": pl.Int64, "retention": pl.Float64})


def retention_curve(table: pl.DataFrame, max_cohorts: int | None = None) -> pl.DataFrame:
    """Average retention per period across cohorts: ``period_number, cohorts, customers, active, retention``.

    Pooled: ``retention = sum(active) / sum(customers)`` over the cohorts that reached the period
    (zero cells count). ``max_cohorts`` keeps only the latest cohorts.

    >>> import polars as pl
    >>> t = pl.DataFrame({"cohort": ["A", "A", "B", "B"], "period_number": [0, 1, 0, 1],
    ...                   "customers": [2, 2, 3, 3], "active": [2, 1, 3, 0]})
    >>> retention_curve(t).select("period_number", "retention").rows()
    [(0, 1.0), (1, 0.2)]
    """
    t = table
    if max_cohorts is not None:
        keep = t["cohort"].unique().sort().tail(int(max_cohorts))
        t = t.filter(pl.col("cohort").is_in(keep.implode()))
    return (t.group_by("period_number")
            .agg(pl.len().cast(pl.Int64).alias("cohorts"), pl.col("customers").sum().cast(pl.Int64),
                 pl.col("active").sum().cast(pl.Int64))
            .with_columns((pl.col("active") / pl.col("customers")).alias("retention"))
            .sort("period_number"))


def describe_retention(curve: pl.DataFrame, periods: Iterable[int] = (1, 3, 12), period: str = "month") -> str:
    """One sentence on the pooled retention at the given periods (those the data reaches).

    >>> import polars as pl
    >>> c = pl.DataFrame({"period_number": [0, 1], "cohorts": [2, 2], "customers": [5, 5],
    ...                   "active": [5, 1], "retention": [1.0, 0.2]})
    >>> describe_retention(c)
    'Of the customers whose first purchase lies far enough back, **20%** buy again 1 month after their first purchase (2 cohorts).'
    """
    rows = {r["period_number"]: r for r in curve.iter_rows(named=True)}
    parts = [f"**{rows[p]['retention']:.0%}** buy again {p} {period}{'s' if p != 1 else ''} after their first purchase "
             f"({rows[p]['cohorts']} cohort{'s' if rows[p]['cohorts'] != 1 else ''})" for p in periods if p in rows]
    if not parts:
        return f"The data does not reach {max(periods, default=1)} {period}s after any first purchase yet."
    return "Of the customers whose first purchase lies far enough back, " + ", ".join(parts) + "."
