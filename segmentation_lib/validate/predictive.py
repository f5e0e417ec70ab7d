"""Predictive validity: segments from the history before a cutoff, compared with the holdout period after it.

Customers first seen in the holdout are excluded (as lifetimes' ``calibration_and_holdout_data``
does) and counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import polars as pl

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.validate.common import Assignments, check_columns



# --------------------------------------------------------------------------------------------
# predictive validity
# --------------------------------------------------------------------------------------------
@dataclass
class HoldoutSplit:
    """Calibration rows (before ``cutoff``), holdout rows (``cutoff <= t < holdout_end``) of
    customers seen in calibration, and the count of customers first seen in the holdout (excluded)."""

    calibration: pl.DataFrame
    holdout: pl.DataFrame
    cutoff: datetime
    holdout_end: datetime | None
    n_calibration_customers: int
    n_new_in_holdout: int
    summary: dict[str, Any] = field(default_factory=dict)


def _to_datetime(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{name}: '{value}' is not a date. Fix: give it as 'YYYY-MM-DD' (or a date/datetime).")


def _time_literal(value: datetime, dtype: pl.DataType) -> pl.Expr:
    """A literal comparable with a column of ``dtype`` (Datetime with or without zone, or Date)."""
    if dtype == pl.Date:
        return pl.lit(value.date())
    tz = getattr(dtype, "time_zone", None)
    if tz is None:
        naive = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        return pl.lit(naive)
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return pl.lit(aware.astimezone(timezone.utc)).dt.convert_time_zone(tz)




def no_calibration_error(cut: datetime) -> DataError:
    """The error of a log (all its customer partitions together) with no transaction before the cutoff.

    >>> "before the cutoff 2024-02-01" in str(no_calibration_error(datetime(2024, 2, 1)))
    True
    """
    return DataError(
        f"split_calibration_holdout: no transactions before the cutoff {cut.date()}, so the holdout covers the "
        f"whole history. Fix: in a report run lower validation.holdout_days (the cutoff is the run's as_of minus "
        f"it), or set a later run.as_of; in the library pass a later cutoff."
    )


def split_calibration_holdout(
    transactions: pl.DataFrame | pl.LazyFrame,
    cutoff: str | date | datetime,
    holdout_days: int | None = None,
    id_col: str = "customer_id",
    time_col: str = "timestamp",
    allow_empty: bool = False,
) -> HoldoutSplit:
    """Split a transaction log at ``cutoff``: calibration ``t < cutoff``; holdout ``cutoff <= t <
    cutoff + holdout_days`` (all later rows when None) restricted to calibration customers; the
    customers first seen in the holdout are excluded and counted (as lifetimes'
    ``calibration_and_holdout_data``). A cutoff without a time zone is read in UTC. No row before the
    cutoff raises :func:`no_calibration_error`, unless ``allow_empty`` (one customer partition of a
    log: the caller decides on all of them together).

    >>> from datetime import datetime
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "timestamp": [datetime(2024, 1, 1), datetime(2024, 3, 1), datetime(2024, 3, 2)]})
    >>> s = split_calibration_holdout(tx, "2024-02-01")
    >>> (s.calibration.height, s.holdout.height, s.n_new_in_holdout)
    (1, 1, 1)
    """
    lf = transactions.lazy()
    schema = lf.collect_schema()
    check_columns(schema, [id_col, time_col], "split_calibration_holdout (transactions)")
    cut = _to_datetime(cutoff, "validation cutoff")
    if holdout_days is not None and holdout_days <= 0:
        raise ConfigError(f"validation.holdout_days is {holdout_days}. Fix: use a positive number of days, e.g. 90.")
    end = cut + timedelta(days=holdout_days) if holdout_days is not None else None
    tcol = pl.col(time_col)
    cut_lit = _time_literal(cut, schema[time_col])
    calibration = lf.filter(tcol < cut_lit).collect()
    later = tcol >= cut_lit
    if end is not None:
        later = later & (tcol < _time_literal(end, schema[time_col]))
    holdout_all = lf.filter(later).collect()
    cal_ids = calibration.select(pl.col(id_col).unique())
    holdout = holdout_all.join(cal_ids, on=id_col, how="semi")
    n_new = holdout_all.select(pl.col(id_col)).unique().join(cal_ids, on=id_col, how="anti").height
    n_cal = cal_ids.height
    if n_cal == 0 and not allow_empty:
        raise no_calibration_error(cut)
    summary = {
        "cutoff": cut.isoformat(),
        "holdout_end": end.isoformat() if end else None,
        "calibration_rows": calibration.height,
        "holdout_rows": holdout.height,
        "calibration_customers": n_cal,
        "holdout_customers": holdout.select(pl.col(id_col).n_unique()).item(),
        "new_in_holdout_excluded": n_new,
    }
    return HoldoutSplit(calibration, holdout, cut, end, n_cal, n_new, summary)


@dataclass
class PredictiveResult:
    """``segments``: per method and segment holdout behaviour; ``separation``: one row per method
    (eta-squared of holdout spend, purchase-rate spread, ...), side by side; ``summary``: dict."""

    segments: pl.DataFrame
    separation: pl.DataFrame
    summary: dict[str, Any]


def _assignment_table(value: pl.DataFrame, method: str, id_col: str) -> pl.DataFrame:
    if isinstance(value, pl.LazyFrame):
        value = value.collect()
    if not isinstance(value, pl.DataFrame):
        raise ConfigError(
            f"predictive_validity: segmenter '{method}' returned {type(value).__name__}. Fix: return a polars "
            f"DataFrame with columns {id_col} and segment."
        )
    if id_col not in value.columns:
        raise DataError(f"predictive_validity: assignments of '{method}' have no column '{id_col}'. Fix: include the customer id.")
    if "segment" in value.columns:
        seg = "segment"
    else:
        others = [c for c in value.columns if c != id_col]
        if len(others) != 1:
            raise DataError(
                f"predictive_validity: assignments of '{method}' have no 'segment' column (columns: "
                f"{value.columns}). Fix: name the segment column 'segment'."
            )
        seg = others[0]
    return value.select(pl.col(id_col).cast(pl.String), pl.col(seg).cast(pl.String).alias("segment")).unique(
        subset=id_col, keep="first", maintain_order=True
    )


def holdout_outcomes(
    split: HoldoutSplit,
    id_col: str = "customer_id",
    time_col: str = "timestamp",
    amount_col: str = "amount",
    retention_days: int | None = None,
) -> pl.DataFrame:
    """One row per calibration customer: holdout_spend, holdout_purchase (any row with amount > 0),
    and active_before (a purchase in the ``retention_days`` before the cutoff; retention denominator)."""
    cal, hold = split.calibration, split.holdout
    check_columns(cal.schema, [amount_col], "predictive_validity (transactions)")
    days = retention_days or (
        (split.holdout_end - split.cutoff).days if split.holdout_end is not None else 90
    )
    start = _time_literal(split.cutoff - timedelta(days=days), cal.schema[time_col])
    base = cal.group_by(id_col).agg(
        ((pl.col(time_col) >= start) & (pl.col(amount_col) > 0)).any().alias("active_before")
    )
    out = hold.group_by(id_col).agg(
        pl.col(amount_col).sum().alias("holdout_spend"),
        (pl.col(amount_col) > 0).any().alias("holdout_purchase"),
    )
    return (
        base.join(out, on=id_col, how="left")
        .with_columns(
            pl.col(id_col).cast(pl.String),
            pl.col("holdout_spend").fill_null(0.0).cast(pl.Float64),
            pl.col("holdout_purchase").fill_null(False),
        )
    )


def _eta_squared(value: pl.Expr, group: str) -> pl.Expr:
    """Share of the variance of ``value`` explained by ``group`` (a polars expression over the frame)."""
    grand = value.mean()
    ss_total = ((value - grand) ** 2).sum()
    ss_between = ((value.mean().over(group) - grand) ** 2).sum()
    return pl.when(ss_total > 0).then(ss_between / ss_total).otherwise(None)


def predictive_validity(
    transactions: pl.DataFrame | pl.LazyFrame | list[pl.LazyFrame],
    cutoff: str | date | datetime,
    segmenters: Mapping[str, Assignments],
    holdout_days: int | None = 90,
    feature_fn: Callable[[pl.DataFrame, Any], pl.DataFrame] | None = None,
    id_col: str = "customer_id",
    time_col: str = "timestamp",
    amount_col: str = "amount",
    min_segment_size: int = 30,
) -> PredictiveResult:
    """Segment on the calibration period, score on the holdout: does the segmentation predict value?

    ``segmenters`` maps a method name ("clusters", "rfm", ...) to either a callable
    ``calibration_features -> DataFrame(customer_id, segment)`` or precomputed assignments. The
    calibration features come from ``feature_fn(calibration_transactions, as_of=cutoff)``
    (default :func:`segmentation_lib.features.customer_features`), computed once and only if a
    callable is given. Per method and segment: customers, share, holdout purchase rate, mean
    holdout spend, retention (share of customers active in the ``holdout_days`` before the cutoff
    who bought again in the holdout). Per method: ``eta_squared_spend`` (share of holdout spend
    variance explained by segment), the same on log1p spend and on the purchase flag, the highest
    minus the lowest purchase rate (``purchase_rate_spread``) and ``best_segment`` /
    ``worst_segment`` by mean holdout spend (the order of ``rank_by_spend``), all among segments with
    at least ``min_segment_size`` customers (all segments when none is that large), so a handful of
    customers cannot make the spread. Segments of a callable are those of the calibration refit,
    named by it: they need not match the names of the full-period segmentation.
    """
    if not segmenters:
        raise ConfigError("predictive_validity: no segmentations given. Fix: pass e.g. {'rfm': assign_fn, 'clusters': table}.")
    parts = transactions if isinstance(transactions, list) else [transactions]
    outcome_parts, summaries = [], []
    for part in parts:  # customer partitions of a large log (each customer in one part): one in memory at a time
        # a part without rows before the cutoff adds nothing but its customers new in the holdout
        split = split_calibration_holdout(part, cutoff, holdout_days, id_col, time_col, allow_empty=len(parts) > 1)
        outcome_parts.append(holdout_outcomes(split, id_col, time_col, amount_col))
        summaries.append(split.summary)
        cut, holdout_end = split.cutoff, split.holdout_end
        calibration = split.calibration if len(parts) == 1 else None
        del split
    counted = ("calibration_rows", "holdout_rows", "calibration_customers", "holdout_customers", "new_in_holdout_excluded")
    split_summary = {**summaries[0], **{k: sum(x[k] for x in summaries) for k in counted}}
    if split_summary["calibration_customers"] == 0:  # (only the log as a whole decides)
        raise no_calibration_error(cut)
    if split_summary["calibration_rows"] == 0 or split_summary["holdout_rows"] == 0:
        empty = "calibration period (before the cutoff)" if split_summary["calibration_rows"] == 0 else "holdout period"
        raise DataError(
            f"Predictive validity: the {empty} has no transactions (cutoff {cut:%Y-%m-%d}"
            + (f", holdout end {holdout_end:%Y-%m-%d}" if holdout_end else "")
            + "), so future value cannot be measured. Fix: set run.as_of to a date "
            "within the data (or null for the day after the last transaction), or change validation.holdout_days."
        )
    outcomes = outcome_parts[0] if len(parts) == 1 else pl.concat(outcome_parts)
    if calibration is None:  # the calibration rows of every part, read only if a feature_fn needs them
        calibration = pl.concat([p.lazy().filter(pl.col(time_col) < _time_literal(cut, p.lazy().collect_schema()[time_col]))
                                 for p in parts])
    features = None
    seg_tables, sep_rows = [], []
    unassigned: dict[str, int] = {}
    for method, seg in segmenters.items():
        if callable(seg) and not isinstance(seg, pl.DataFrame):
            if features is None:
                if feature_fn is None:
                    from segmentation_lib.features.customer import customer_features as feature_fn
                features = feature_fn(calibration, cut)
                if isinstance(features, pl.LazyFrame):
                    features = features.collect()
            assign = _assignment_table(seg(features), method, id_col)
        else:
            assign = _assignment_table(seg, method, id_col)
        joined = (
            outcomes.join(assign, on=id_col, how="inner")
            .with_columns(pl.col("segment").fill_null("(null)"))
            .sort(id_col)  # fixed row order: sums (and so the figures) do not depend on join order
        )
        unassigned[method] = outcomes.height - joined.height
        if joined.height == 0:
            raise DataError(
                f"predictive_validity: none of the calibration customers has a segment in '{method}'. Fix: "
                f"segment the calibration features (customers before the cutoff {cut.date()})."
            )
        per_seg = (
            joined.group_by("segment")
            .agg(
                pl.len().alias("customers"),
                pl.col("holdout_purchase").mean().alias("purchase_rate"),
                pl.col("holdout_spend").mean().alias("mean_holdout_spend"),
                pl.col("holdout_spend").sum().alias("total_holdout_spend"),
                pl.col("active_before").sum().alias("active_before"),
                (pl.col("holdout_purchase") & pl.col("active_before")).sum().alias("_retained"),
            )
            .with_columns(
                pl.lit(method).alias("method"),
                (pl.col("customers") / joined.height).alias("share"),
                pl.when(pl.col("active_before") > 0)
                .then(pl.col("_retained") / pl.col("active_before"))
                .otherwise(None)
                .alias("retention"),
            )
            .drop("_retained")
            .sort(["mean_holdout_spend", "segment"], descending=[True, False])
            .with_columns(pl.int_range(1, pl.len() + 1).alias("rank_by_spend"))
        )
        seg_tables.append(per_seg)
        eligible = per_seg.filter(pl.col("customers") >= min_segment_size)
        eligible = eligible if eligible.height else per_seg
        # best / worst by mean holdout spend, the measure the segments are ranked by (rank_by_spend)
        best = eligible.sort(["mean_holdout_spend", "purchase_rate", "segment"],
                             descending=[True, True, False]).row(0, named=True)
        worst = eligible.sort(["mean_holdout_spend", "purchase_rate", "segment"],
                              descending=[False, False, False]).row(0, named=True)
        rates = eligible["purchase_rate"]
        etas = joined.select(
            _eta_squared(pl.col("holdout_spend"), "segment").alias("eta_squared_spend"),
            _eta_squared(pl.col("holdout_spend").clip(0).log1p(), "segment").alias("eta_squared_log_spend"),
            _eta_squared(pl.col("holdout_purchase").cast(pl.Float64), "segment").alias("eta_squared_purchase"),
        ).row(0, named=True)
        sep_rows.append(
            {
                "method": method,
                "n_segments": per_seg.height,
                "customers": joined.height,
                **etas,
                "purchase_rate_spread": float(rates.max()) - float(rates.min()),
                "best_segment": best["segment"],
                "worst_segment": worst["segment"],
                "overall_purchase_rate": float(joined["holdout_purchase"].mean()),
                "overall_mean_holdout_spend": float(joined["holdout_spend"].mean()),
            }
        )
    cols = ["method", "segment", "customers", "share", "purchase_rate", "mean_holdout_spend",
            "total_holdout_spend", "retention", "active_before", "rank_by_spend"]
    segments = pl.concat([t.select(cols) for t in seg_tables], how="vertical_relaxed")
    separation = pl.DataFrame(sep_rows).with_columns(
        pl.col("eta_squared_spend", "eta_squared_log_spend", "eta_squared_purchase").cast(pl.Float64)
    )
    summary = {**split_summary, "unassigned_calibration_customers": unassigned}
    return PredictiveResult(segments, separation, summary)
