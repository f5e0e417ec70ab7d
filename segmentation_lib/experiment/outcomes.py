"""Outcomes of every exposed customer: what they did in the N days after their own exposure.

From the transaction log (the clean canonical frame): ``converted`` (1 when the customer bought
anything, a row with ``amount > 0``, in ``(exposure_time, exposure_time + window]``), ``revenue``
(net spend in that window, returns netted), ``orders`` (distinct orders, the kit's one order key)
and ``pre_spend`` (net spend in the ``pre_period_days`` before the experiment start, the CUPED
covariate: data the treatment cannot have changed). Outcome columns given in the exposures table
are used as they are; the log then only supplies ``pre_spend``.

>>> import datetime as dt
>>> t0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
>>> ex = pl.DataFrame({"customer_id": ["a", "b"], "variant": ["control", "treatment"], "exposure_time": [t0, t0]})
>>> tx = pl.DataFrame({"customer_id": ["a", "b", "b"], "amount": [10.0, 5.0, 7.0],
...                    "timestamp": [t0 - dt.timedelta(days=3), t0 + dt.timedelta(days=1), t0 + dt.timedelta(days=30)]})
>>> outcomes_from_transactions(ex, tx, window_days=14, pre_period_days=90)[["converted", "revenue", "pre_spend"]].rows()
[(0.0, 0.0, 10.0), (1.0, 5.0, 0.0)]
"""
from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import polars as pl

from segmentation_lib.features.common import order_key, rounded_money, to_utc

_US_PER_DAY = 86_400_000_000


def experiment_start(exposures: pl.DataFrame, start: Any = None) -> dt.datetime:
    """The experiment start: ``start`` when given (a date means midnight UTC), else the first exposure."""
    if start:
        return to_utc(start, "experiment.start")
    return exposures["exposure_time"].min()


def _as_frame(transactions: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    return transactions.lazy() if isinstance(transactions, pl.DataFrame) else transactions


def pre_period_spend(exposures: pl.DataFrame, transactions: pl.DataFrame | pl.LazyFrame, start: dt.datetime,
                     pre_period_days: int) -> pl.DataFrame:
    """``customer_id, pre_spend``: net spend of each exposed customer in ``[start - days, start)`` (0 without any)."""
    lo = start - dt.timedelta(days=int(pre_period_days))
    pre = (_as_frame(transactions).filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < start))
           .join(exposures.lazy().select("customer_id"), on="customer_id", how="semi")
           .group_by("customer_id").agg(rounded_money(pl.col("amount").sum()).alias("pre_spend")).collect())
    return (exposures.select("customer_id").join(pre, on="customer_id", how="left")
            .with_columns(pl.col("pre_spend").fill_null(0.0)))


def outcomes_from_transactions(exposures: pl.DataFrame, transactions: pl.DataFrame | pl.LazyFrame, window_days: int,
                               pre_period_days: int, start: Any = None) -> pl.DataFrame:
    """The exposures with ``converted``, ``revenue``, ``orders`` and ``pre_spend`` added (one row per customer).

    When ``exposures`` holds any outcome column the outcomes are taken as given (only ``pre_spend``
    is added). Customers whose window reaches past
    the last transaction of the log are counted in a warning (their outcome may be incomplete).
    """
    lf = _as_frame(transactions)
    start_t = experiment_start(exposures, start)
    out = exposures.join(pre_period_spend(exposures, lf, start_t, pre_period_days), on="customer_id", how="left")
    if any(c in exposures.columns for c in ("converted", "revenue", "orders")):
        return out  # outcomes given as columns: the log supplies only the pre-period spend
    need = ["converted", "revenue", "orders"]
    window = pl.duration(days=int(window_days))
    cols = lf.collect_schema().names()
    after = (lf.join(exposures.lazy().select("customer_id", "exposure_time"), on="customer_id", how="inner")
             .filter((pl.col("timestamp") > pl.col("exposure_time")) & (pl.col("timestamp") <= pl.col("exposure_time") + window))
             .group_by("customer_id")
             .agg((pl.col("amount") > 0).any().cast(pl.Float64).alias("converted"),
                  rounded_money(pl.col("amount").sum()).alias("revenue"),
                  order_key(cols).filter(pl.col("amount") > 0).n_unique().cast(pl.Float64).alias("orders"))
             .collect())
    out = out.join(after.select("customer_id", *need), on="customer_id", how="left").with_columns(
        [pl.col(c).fill_null(0.0) for c in need])
    last = lf.select(pl.col("timestamp").max()).collect().item()
    if last is not None:
        cut = last - dt.timedelta(days=int(window_days))
        short = int((out["exposure_time"] > cut).sum())
        if short:
            warnings.warn(f"{short:,} exposed customer(s) were exposed less than {window_days} days before the last "
                          f"transaction of the log ({last:%Y-%m-%d}); their {window_days}-day outcome may be incomplete. "
                          "Extend the log or shorten experiment.window_days.", UserWarning, stacklevel=2)
    return out.select(*exposures.columns, *need, "pre_spend")
