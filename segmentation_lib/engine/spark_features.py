"""The customer feature table and the BTYD summary on Spark, with the definitions of ``features/``.

:func:`customer_features` follows the *grouped definition* of ``features/customer.py`` step by
step (one row per purchase order and per return moment, then one row per customer; an order's
time is its first purchase row, its date the UTC date of that time; windows by order time,
returns by their own time; ``as_of`` exclusive) and gives every column of ``docs/features.md``;
:func:`btyd_summary` follows ``features/btyd.py`` (periods of :data:`BTYD_FREQS`, per-period
sums, the first period excluded from ``monetary_value``, a net-zero residue snapped to +0.0).

Money is summed as decimals (``spark_read.MONEY_TYPE``), so the sums are exact and do not depend
on the cluster's partitioning; feature money is then rounded to ``MONEY_DECIMALS`` as on one
machine. The spread of the gaps uses the exact integer formula of the sorted path,
``sqrt(m*S2 - S1^2) / m``. Every aggregation is grouped by customer (or customer and order / day),
so the work spreads over the cluster by customer; nothing goes through one partition.

>>> feats = customer_features(clean, "2025-01-01")   # doctest: +SKIP
>>> feats.columns[:4]                                 # doctest: +SKIP
['customer_id', 'first_purchase', 'last_purchase', 'days_since_last']
"""
from __future__ import annotations

import datetime as dt
import warnings
from typing import Sequence

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.btyd import BTYD_FREQS, DefaultObservationEndWarning
from segmentation_lib.features.common import MONEY_DECIMALS, TREND_WINDOW, period_of, to_utc
from segmentation_lib.engine.spark_read import MONEY_TYPE
from segmentation_lib.features.customer import feature_columns

#: a net-zero per-period sum below this share of its gross counts as zero (``features/btyd.py``)
SNAP_SHARE = 2.0**-50


def rounded_money(e):
    """A decimal money sum rounded half-even to ``MONEY_DECIMALS`` as a double (no ``-0.0``)."""
    from pyspark.sql import functions as F

    r = F.bround(e, MONEY_DECIMALS).cast("double")
    return F.when(r == 0.0, F.lit(0.0)).otherwise(r)


def _check(sdf, where: str) -> None:
    from pyspark.sql import types as T

    fields = {f.name: f.dataType for f in sdf.schema.fields}
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in fields]
    if missing:
        raise DataError(f"{where}: column(s) {missing} not found in the transaction frame (it has {list(fields)}). "
                        "Fix: read the log with engine.spark_read.spark_transactions (it maps the columns).")
    if not isinstance(fields["amount"], T.NumericType):
        raise DataError(f"{where}: column 'amount' has type {fields['amount'].simpleString()}, not a number. Fix: "
                        "read the log with engine.spark_read.spark_transactions, which casts and checks amounts.")
    if not isinstance(fields["timestamp"], (T.TimestampType, T.TimestampNTZType)):
        raise DataError(f"{where}: column 'timestamp' has type {fields['timestamp'].simpleString()}, not a timestamp. "
                        "Fix: read the log with engine.spark_read.spark_transactions.")


def customer_features(transactions, as_of: str | dt.date | dt.datetime, windows: Sequence[int] = (30, 90, 365),
                      trend_window: int = TREND_WINDOW):
    """One row per customer on Spark: the table of ``features.customer.customer_features``.

    ``transactions`` is a canonical Spark frame (``customer_id``, ``timestamp`` in UTC, ``amount``;
    optional ``order_id``, ``product_id``). Returns a Spark DataFrame (lazy; unsorted) with the
    columns of :func:`segmentation_lib.features.customer.feature_columns` and the single-machine types (counts ``long``, money
    ``double``, times ``timestamp``).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    windows = sorted({int(w) for w in windows})
    tw = int(trend_window)
    if any(w <= 0 for w in windows) or tw <= 0:
        raise ConfigError(f"customer_features: windows={list(windows)} / trend_window={trend_window} must be positive "
                          "numbers of days. Fix: set features.windows to e.g. [30, 90, 365].")
    _check(transactions, "customer_features")
    as_of_dt = to_utc(as_of, "as_of")
    as_of_day = (as_of_dt.date() - dt.date(1970, 1, 1)).days
    columns = set(transactions.columns)
    has_product = "product_id" in columns
    c = F.col
    amount = c("amount").cast("double")
    buy = amount > 0
    ts = c("timestamp").cast("timestamp")
    # the order part of features.common.order_key: the order id, or the moment when there is none
    part = c("order_id").cast("string") if "order_id" in columns else F.unix_micros(ts).cast("string")
    base = transactions.select(
        c("customer_id"), ts.alias("_ts"), amount.alias("_amt"),
        F.when(buy, part).alias("_order"),
        *([F.when(buy, c("product_id").cast("string")).alias("_product")] if has_product else []),
    ).filter((c("_ts") < F.lit(as_of_dt)) & c("customer_id").isNotNull())
    # pass 1: one row per purchase order and one per return moment (customer, time of a non-purchase row)
    orders = base.withColumn("_rts", F.when(~(c("_amt") > 0), c("_ts"))).groupBy("customer_id", "_order", "_rts").agg(
        F.min("_ts").alias("_t"),
        F.sum(c("_amt").cast(MONEY_TYPE)).alias("_v"),
        F.sum((c("_amt") < 0).cast("long")).alias("_nret"),
    )
    t, v = c("_t"), c("_v")
    is_order = c("_order").isNotNull()
    zero = F.lit(0).cast(MONEY_TYPE)
    cutoff = lambda days: F.lit(as_of_dt - dt.timedelta(days=days))  # noqa: E731
    inside = lambda lo, hi=None: (t >= cutoff(lo)) & ((t < cutoff(hi)) if hi else F.lit(True))  # noqa: E731
    spend_in = lambda lo, hi=None: F.sum(F.when(inside(lo, hi), v).otherwise(zero))  # noqa: E731
    money = {
        "total_spend": F.sum(v),
        "gross_spend": F.sum(F.when(is_order, v).otherwise(zero)),
        "returned_spend": F.sum(F.when(is_order, zero).otherwise(F.greatest(-v, zero))),
        **{f"spend_{w}d": spend_in(w) for w in windows},
        **({} if tw in windows else {f"spend_{tw}d": spend_in(tw)}),
        f"spend_prev_{tw}d": spend_in(2 * tw, tw),
    }
    per_customer = orders.groupBy("customer_id").agg(
        F.min(F.when(is_order, t)).alias("first_purchase"),
        F.max(F.when(is_order, t)).alias("last_purchase"),
        F.count(c("_order")).cast("long").alias("n_orders"),
        F.sum(c("_nret")).cast("long").alias("n_returns"),
        *[F.sum((is_order & inside(w)).cast("long")).alias(f"orders_{w}d") for w in windows],
        *[e.alias(f"_m_{n}") for n, e in money.items()],
    ).select(
        "*", *[rounded_money(c(f"_m_{n}")).alias(n) for n in money],
    ).drop(*[f"_m_{n}" for n in money])
    # purchase days: distinct order dates per customer; gaps between consecutive days by a window
    # partitioned by customer (spread over the cluster), then exact integer sums
    days = (orders.filter(is_order).select("customer_id", F.datediff(F.to_date(t), F.lit(dt.date(1970, 1, 1))).alias("_d"))
            .distinct())
    gap = c("_d") - F.lag("_d").over(Window.partitionBy("customer_id").orderBy("_d"))
    per_day = days.select("customer_id", gap.alias("_gap")).groupBy("customer_id").agg(
        F.count(F.lit(1)).cast("long").alias("n_purchase_days"),
        F.sum(F.coalesce(c("_gap"), F.lit(0))).cast("long").alias("_s1"),
        F.sum(F.coalesce(c("_gap") * c("_gap"), F.lit(0))).cast("long").alias("_s2"),
    )
    out = per_customer.join(per_day, on="customer_id", how="left")
    if has_product:
        products = (base.filter((c("_amt") > 0) & c("_product").isNotNull()).groupBy("customer_id")
                    .agg(F.count_distinct("_product").cast("long").alias("n_products")))
        out = out.join(products, on="customer_id", how="left")
    first_day = F.datediff(F.to_date(c("first_purchase")), F.lit(dt.date(1970, 1, 1)))
    last_day = F.datediff(F.to_date(c("last_purchase")), F.lit(dt.date(1970, 1, 1)))
    m = c("n_purchase_days") - 1
    now, prev = c(f"spend_{tw}d"), c(f"spend_prev_{tw}d")
    out = out.select(
        "*",
        (F.lit(as_of_day) - last_day).cast("long").alias("days_since_last"),
        (F.lit(as_of_day) - first_day).cast("long").alias("tenure_days"),
        F.when(c("n_orders") > 0, c("total_spend") / c("n_orders")).alias("avg_order_value"),
        F.when(c("n_purchase_days") > 1, (last_day - first_day) / m).alias("mean_days_between"),
        F.when(c("n_purchase_days") > 1, F.sqrt((m * c("_s2") - c("_s1") * c("_s1")).cast("double")) / m)
        .alias("std_days_between"),
        F.when(F.abs(now) + F.abs(prev) > 0, (now - prev) / (F.abs(now) + F.abs(prev))).alias(f"spend_trend_{tw}d"),
        F.when(c("gross_spend") > 0, c("returned_spend") / c("gross_spend")).alias("return_rate"),
        (c("total_spend") <= 0).alias("nonpositive_net"),
    ).fillna(0, subset=["n_purchase_days"] + (["n_products"] if has_product else []))
    return out.select(*feature_columns(windows, tw, has_product))


def period_column(ts, freq: str):
    """Integer index of the period containing ``ts`` (``features.common.period_index`` on Spark)."""
    from pyspark.sql import functions as F

    day = F.datediff(F.to_date(ts), F.lit(dt.date(1970, 1, 1)))
    if freq == "D":
        return day.cast("long")
    if freq == "h":
        return F.floor(F.unix_micros(ts) / F.lit(3_600_000_000)).cast("long")
    if freq == "W":
        return F.floor((day + 3) / F.lit(7)).cast("long")
    if freq == "M":
        return (F.year(ts) * 12 + F.month(ts) - 1).cast("long")
    raise ConfigError(f"btyd_summary: freq={freq!r} is not supported. Fix: use one of {list(BTYD_FREQS)}.")


def btyd_summary(transactions, observation_end: str | dt.date | dt.datetime | None = None, freq: str = "D", *,
                 freq_multiplier: float = 1, include_first_transaction: bool = False):
    """``frequency, recency, T, monetary_value`` per customer on Spark (``features.btyd.btyd_summary``).

    Every row counts (as lifetimes); rows whose period is after the period of ``observation_end``
    are dropped; ``observation_end=None`` takes the last transaction's time, with a
    :class:`DefaultObservationEndWarning`. Returns a Spark DataFrame (lazy; unsorted); the end used
    is its ``observation_end`` attribute.
    """
    from pyspark.sql import functions as F

    if freq not in BTYD_FREQS:
        raise ConfigError(f"btyd_summary: freq={freq!r} is not supported. Fix: use one of {list(BTYD_FREQS)}.")
    if not (isinstance(freq_multiplier, (int, float)) and freq_multiplier > 0):
        raise ConfigError(f"btyd_summary: freq_multiplier={freq_multiplier!r} must be a positive number.")
    _check(transactions, "btyd_summary")
    c = F.col
    ts = c("timestamp").cast("timestamp")
    if observation_end is None:
        last = transactions.agg(F.max(ts).alias("m")).first()["m"]
        if last is None:
            raise DataError("btyd_summary: the log has no transactions, so there is no default observation_end. "
                            "Fix: pass observation_end.")
        end = to_utc(last, "observation_end")
        warnings.warn(f"btyd_summary: observation_end not given; using the last transaction date, {end.isoformat()} "
                      "(its period, as lifetimes and pymc-marketing do). Pass it to make the choice explicit.",
                      DefaultObservationEndWarning, stacklevel=2)
    else:
        end = to_utc(observation_end, "observation_end")
    end_p = period_of(end, freq)
    rows = transactions.select(
        c("customer_id").alias("_cid"), period_column(ts, freq).alias("_p"), c("amount").cast(MONEY_TYPE).alias("_v"),
    ).filter((c("_p") <= end_p) & c("_cid").isNotNull())
    zero = F.lit(0).cast(MONEY_TYPE)

    def snap(total, gross):
        return F.when(F.abs(total.cast("double")) <= gross.cast("double") * SNAP_SHARE, zero).otherwise(total)

    per_period = rows.groupBy("_cid", "_p").agg(snap(F.sum("_v"), F.sum(F.abs(c("_v")))).alias("_v"))
    per_customer = per_period.groupBy("_cid").agg(
        F.count(F.lit(1)).alias("_n"), F.min("_p").alias("_first"), F.max("_p").alias("_last"),
        F.sum("_v").alias("_total"), F.sum(F.abs(c("_v"))).alias("_gross"), F.min_by("_v", "_p").alias("_first_v"),
    )
    if include_first_transaction:
        frequency = c("_n")
        money = snap(c("_total"), c("_gross")).cast("double") / c("_n")
    else:
        frequency = c("_n") - 1
        net = snap(c("_total") - c("_first_v"), c("_gross") - F.abs(c("_first_v")))
        money = F.when(c("_n") > 1, net.cast("double") / (c("_n") - 1)).otherwise(F.lit(0.0))
    mult = float(freq_multiplier)
    money = money + F.lit(0.0)
    out = per_customer.select(
        c("_cid").alias("customer_id"),
        frequency.cast("double").alias("frequency"),
        ((c("_last") - c("_first")).cast("double") / mult).alias("recency"),
        ((F.lit(end_p) - c("_first")).cast("double") / mult).alias("T"),
        F.when(money == 0.0, F.lit(0.0)).otherwise(money).alias("monetary_value"),
    )
    out.observation_end = end
    return out
