"""Is the predicted-value model right? Fit on the calibration period, predict the holdout, compare.

On the split of :func:`~segmentation_lib.validate.predictive.split_calibration_holdout` (calibration
``t < cutoff``; holdout ``cutoff <= t < cutoff + holdout_days``; customers first seen in the holdout
excluded), the count model and Gamma-Gamma are fitted on the calibration BTYD summary (observation
end = the cutoff) and every calibration customer gets predicted holdout purchases
(``E[X(holdout) | history]``) and predicted holdout spend (predicted purchases x expected spend per
purchase). Actual holdout purchases count the holdout periods with a transaction (the summary's
convention: one purchase per period), actual holdout spend sums the net amounts.

Outputs: the standard calibration plot table (mean predicted vs actual holdout purchases per
calibration frequency bucket 0, 1, ..., 5, 6+), per-segment predicted vs actual holdout spend, and
the error figures (``summary``):

- ``calibration_error``: the mean over the non-empty frequency buckets of |mean predicted - mean
  actual holdout purchases| (purchases per customer; 0 = the calibration plot's two lines coincide);
- ``total_purchases_relative_error``: (total predicted - total actual holdout purchases) / total
  actual (e.g. +0.05 = the model predicts 5% more purchases than happened).

>>> calibration_error_of(pl.DataFrame({"predicted": [0.5, 1.0], "actual": [0.25, 1.5], "customers": [3, 1]}))
0.375
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from segmentation_lib.features.btyd import btyd_summary
from segmentation_lib.features.common import period_index, sort_by_text
from segmentation_lib.predict.common import days_to_periods
from segmentation_lib.predict.counts import COUNT_MODELS
from segmentation_lib.predict.spend import GammaGammaModel
from segmentation_lib.validate.predictive import no_calibration_error, split_calibration_holdout

#: calibration frequency buckets: 0 .. MAX_BUCKET - 1, then "<MAX_BUCKET>+"
MAX_BUCKET = 6


def frequency_bucket(frequency: pl.Expr, top: int = MAX_BUCKET) -> pl.Expr:
    """The calibration-plot bucket of a repeat frequency: ``"0"``, ``"1"``, ..., ``"6+"``.

    >>> pl.DataFrame({"f": [0.0, 2.0, 9.0]}).select(frequency_bucket(pl.col("f")))["bucket"].to_list()
    ['0', '2', '6+']
    """
    f = frequency.cast(pl.Int64)
    return pl.when(f >= top).then(pl.lit(f"{top}+")).otherwise(f.cast(pl.String)).alias("bucket")


def calibration_error_of(buckets: pl.DataFrame) -> float | None:
    """Mean over the non-empty buckets of |predicted - actual| (columns ``predicted``, ``actual``, ``customers``).

    >>> calibration_error_of(pl.DataFrame({"predicted": [1.0], "actual": [1.0], "customers": [0]})) is None
    True
    """
    b = buckets.filter(pl.col("customers") > 0)
    return None if b.is_empty() else float((b["predicted"] - b["actual"]).abs().mean())


@dataclass
class CalibrationResult:
    """``buckets``: bucket, customers, predicted, actual (mean holdout purchases); ``per_customer``: customer_id,
    frequency, predicted_purchases, actual_purchases, predicted_spend, actual_spend; ``segments``: per
    segment predicted vs actual holdout spend (None without segments); ``summary``: the error figures."""

    buckets: pl.DataFrame
    per_customer: pl.DataFrame
    segments: pl.DataFrame | None
    summary: dict[str, Any] = field(default_factory=dict)


def holdout_calibration(
    transactions: pl.DataFrame | pl.LazyFrame | list[pl.LazyFrame],
    cutoff: str | dt.date | dt.datetime,
    holdout_days: int,
    *,
    model: str = "mbgnbd",
    freq: str = "D",
    segments: pl.DataFrame | None = None,
    segment_col: str = "segment",
) -> CalibrationResult:
    """Fit the count model (``model``) and Gamma-Gamma on the calibration period, predict the holdout, compare.

    ``transactions``: the clean log, or a list of its customer partitions (a large run's ``DataStage.parts``;
    each customer's rows in one part), summarised one part at a time.

    ``segments`` (``customer_id``, ``segment_col``; e.g. segments assigned at the cutoff) adds per-segment
    predicted vs actual holdout spend. Raises the models' DataError / ModelError when the calibration
    period cannot fit them.
    """
    parts = transactions if isinstance(transactions, list) else [transactions]
    summaries, actuals, n_new = [], [], 0
    for part in parts:  # customer partitions of a large log: one in memory at a time
        # a part without rows before the cutoff adds only its customers new in the holdout (counted);
        # only the log as a whole must have calibration rows
        split = split_calibration_holdout(part, cutoff, holdout_days, allow_empty=len(parts) > 1)
        n_new += split.n_new_in_holdout
        cut = split.cutoff
        if split.n_calibration_customers:
            summaries.append(btyd_summary(split.calibration, split.cutoff, freq=freq))
            actuals.append(split.holdout.group_by("customer_id").agg(
                period_index(pl.col("timestamp"), freq).n_unique().cast(pl.Float64).alias("actual_purchases"),
                pl.col("amount").sum().alias("actual_spend")))
        del split
    if not summaries:
        raise no_calibration_error(cut)
    summary = summaries[0] if len(parts) == 1 else sort_by_text(pl.concat(summaries), "customer_id")
    actual = pl.concat(actuals)
    counts = COUNT_MODELS[model](freq=freq).fit(summary)
    spend = GammaGammaModel().fit(summary)
    x, tx, T = (summary[c].to_numpy() for c in ("frequency", "recency", "T"))
    t = days_to_periods(float(holdout_days), freq)
    pred_n = counts.conditional_expected_purchases(t, x, tx, T)
    pred_spend = pred_n * spend.conditional_expected_spend(x, summary["monetary_value"].to_numpy())
    per = (summary.select("customer_id", "frequency")
           .with_columns(pl.Series("predicted_purchases", pred_n), pl.Series("predicted_spend", pred_spend))
           .join(actual, on="customer_id", how="left")
           .with_columns(pl.col("actual_purchases", "actual_spend").fill_null(0.0)))
    order = [str(i) for i in range(MAX_BUCKET)] + [f"{MAX_BUCKET}+"]
    grid = pl.DataFrame({"bucket": order})
    buckets = (grid.join(per.group_by(frequency_bucket(pl.col("frequency"))).agg(
        pl.len().cast(pl.Int64).alias("customers"), pl.col("predicted_purchases").mean().alias("predicted"),
        pl.col("actual_purchases").mean().alias("actual")), on="bucket", how="left", maintain_order="left")
        .with_columns(pl.col("customers").fill_null(0)))
    seg = None
    if segments is not None:
        seg = (per.join(segments.select("customer_id", segment_col), on="customer_id", how="left")
               .with_columns(pl.col(segment_col).fill_null("(not assigned)"))
               .group_by(segment_col).agg(pl.len().cast(pl.Int64).alias("customers"),
                                          pl.col("predicted_spend").sum().alias("predicted_spend"),
                                          pl.col("actual_spend").sum().alias("actual_spend"))
               .with_columns(pl.when(pl.col("actual_spend") != 0).then(
                   (pl.col("predicted_spend") - pl.col("actual_spend")) / pl.col("actual_spend").abs())
                   .alias("relative_error"))
               .sort("actual_spend", descending=True))
    total_pred, total_act = float(per["predicted_purchases"].sum()), float(per["actual_purchases"].sum())
    out_summary = {
        "model": model,
        "freq": freq,
        "cutoff": cut.isoformat(),
        "holdout_days": int(holdout_days),
        "customers": per.height,
        "new_in_holdout_excluded": n_new,
        "params": counts.params_,
        "predicted_purchases": total_pred,
        "actual_purchases": total_act,
        "predicted_spend": float(per["predicted_spend"].sum()),
        "actual_spend": float(per["actual_spend"].sum()),
        "calibration_error": calibration_error_of(buckets),
        "total_purchases_relative_error": (total_pred - total_act) / total_act if total_act > 0 else None,
    }
    return CalibrationResult(buckets, per, seg, out_summary)
