"""The BTYD summary: ``frequency, recency, T, monetary_value`` per customer.

Exactly the convention of ``lifetimes.utils.summary_data_from_transaction_data`` /
pymc-marketing ``rfm_summary`` (the *model* sense of recency: last minus first purchase period),
computed lazily in polars.

>>> import polars as pl, datetime as dt
>>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"],
...     "timestamp": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 2)],
...     "amount": [10.0, 5.0, 7.0]}).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
>>> btyd_summary(tx, "2024-01-10")["frequency"].to_list()
[1.0, 0.0]
"""
from __future__ import annotations

import datetime as dt

import polars as pl

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.common import DAY_BITS, FREQS, MONEY_DECIMALS, as_lazy, rounded_money, period_index, period_of, require_columns, require_numeric, sort_by_text, to_utc, ts_expr



# --------------------------------------------------------------------------------------------
# BTYD summary
# --------------------------------------------------------------------------------------------
def btyd_summary(
    transactions: pl.DataFrame | pl.LazyFrame,
    observation_end: str | dt.date | dt.datetime,
    freq: str = "D",
    customer_id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "amount",
    method: str = "auto",
) -> pl.DataFrame:
    """One row per customer with ``frequency, recency, T, monetary_value`` as lifetimes computes them.

    Transactions are bucketed into periods of ``freq`` (UTC calendar days, Monday-based weeks or
    months); amounts in the same period are summed; rows whose period is after the period of
    ``observation_end`` are dropped (as lifetimes does, a row later on the same day as
    ``observation_end`` is kept). ``frequency`` = periods with a transaction - 1, ``recency`` = last
    - first period, ``T`` = period of ``observation_end`` - first period, ``monetary_value`` = mean
    of the per-period sums excluding the first period (0 for one-period customers). Every row
    counts, as in lifetimes: a return on its own day is a period (filter ``amount > 0`` first if
    you want purchases only). Output is sorted by customer id; values are Float64 like lifetimes.
    ``method``: ``"sorted"`` sorts the rows by a packed customer | period key and reads periods and
    customers off the sorted runs; ``"grouped"`` groups by (customer, period) then by customer;
    ``"auto"`` (default) is ``"sorted"`` unless two customers share a key or the log spans more
    than 2**20 periods. Both give the same table (tested).

    >>> import polars as pl, datetime as dt
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "a"], "amount": [1.0, 2.0, 5.0],
    ...     "timestamp": [dt.datetime(2020, 1, 1, 10), dt.datetime(2020, 1, 1, 12), dt.datetime(2020, 1, 5)]})
    >>> btyd_summary(tx, "2020-01-10").row(0)
    ('a', 1.0, 4.0, 9.0, 5.0)
    """
    if freq not in FREQS:
        raise ConfigError(f"btyd_summary: freq={freq!r} is not supported. Fix: use one of {list(FREQS)}.")
    lf = as_lazy(transactions)
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    schema = require_columns(lf, cols, "btyd_summary")
    if monetary_value_col:
        require_numeric(schema, monetary_value_col, "btyd_summary")
    end_p = period_of(to_utc(observation_end, "observation_end"), freq)
    c = pl.col
    amount = c(monetary_value_col).cast(pl.Float64) if monetary_value_col else pl.lit(0.0)
    if method not in ("auto", "sorted", "grouped"):
        raise ConfigError(f"btyd_summary: method={method!r} is not one of 'auto', 'sorted', 'grouped'.")
    rows = lf.select(
        c(customer_id_col).alias("_cid"),
        period_index(ts_expr(datetime_col, schema[datetime_col]), freq).alias("_p"),
        amount.alias("_v"),
    ).filter(c("_p") <= end_p, c("_cid").is_not_null())
    per_customer = _btyd_sorted(rows, end_p) if method != "grouped" else None
    if per_customer is None and method == "sorted":
        raise DataError(
            "btyd_summary: method='sorted' does not apply to this log (two customers share a 44-bit key, or "
            f"it spans more than {(1 << DAY_BITS) - 1:,} periods). Fix: use method='auto'."
        )
    if per_customer is None:
        per_period = (
            rows.group_by("_cid", "_p")
            # rounded: deterministic between runs (see customer_features); a -0.0 here cannot reach the
            # output (monetary_value is a difference with the +0.0-normalised total, or 0.0)
            .agg(c("_v").sum().round(MONEY_DECIMALS))
        )
        per_customer = per_period.group_by("_cid").agg(
            pl.len().alias("_n"),
            c("_p").min().alias("_first"),
            c("_p").max().alias("_last"),
            rounded_money(c("_v").sum()).alias("_total"),
            c("_v").min_by("_p").alias("_first_v"),
        ).collect(engine="streaming")
    out = per_customer.lazy().select(
        c("_cid").alias(customer_id_col),
        (c("_n") - 1).cast(pl.Float64).alias("frequency"),
        (c("_last") - c("_first")).cast(pl.Float64).alias("recency"),
        (pl.lit(end_p) - c("_first")).cast(pl.Float64).alias("T"),
        pl.when(c("_n") > 1)
        .then((c("_total") - c("_first_v")) / (c("_n") - 1))
        .otherwise(0.0)
        .alias("monetary_value"),
    )
    if not monetary_value_col:
        out = out.drop("monetary_value")
    return sort_by_text(out.collect(), customer_id_col)


def _btyd_sorted(rows: pl.LazyFrame, end_p: int) -> pl.DataFrame | None:
    """Per-customer ``_n, _first, _last, _total, _first_v`` of :func:`btyd_summary` by sorting.

    The rows (``_cid, _p, _v``) are sorted by one UInt64 key, customer (44 bits of a hash) | period
    offset (20 bits); runs of equal keys are the (customer, period) cells and runs of equal customer
    bits the customers, so both aggregations run on sorted keys. A second, independent 64-bit hash
    must be constant within each customer run; otherwise two customers share a key and ``None``
    sends the caller to the grouped path (as does a log spanning more than 2**20 periods).
    """
    c = pl.col
    df = rows.collect(engine="streaming")
    p0 = end_p - (1 << DAY_BITS) + 1  # period offsets 0 .. 2**20 - 1
    if df.height == 0 or df["_p"].min() < p0:
        return None
    index_type = pl.UInt32 if df.height < 2**32 else pl.UInt64
    s = df.select(
        (c("_cid").hash(seed=0) // (1 << DAY_BITS) * (1 << DAY_BITS) + (c("_p") - p0).cast(pl.UInt64)).alias("_kp"),
        c("_v"),
        pl.int_range(pl.len(), dtype=index_type).alias("_i"),
        c("_cid").hash(seed=1).alias("_h2"),
    ).sort("_kp")
    customer = c("_kp") // (1 << DAY_BITS)
    new_customer = (customer != customer.shift()).fill_null(True)
    if s.select((~new_customer & (c("_h2") != c("_h2").shift())).any()).item():
        return None
    first_rows = s.select(new_customer.arg_true().alias("r"))["r"]
    cid = df["_cid"].gather(s["_i"].gather(first_rows))
    s = s.drop("_i", "_h2")
    offset = (c("_kp") % (1 << DAY_BITS)).cast(pl.Int64) + p0
    per_customer = (
        s.lazy()
        .group_by(c("_kp").set_sorted(), maintain_order=True)
        .agg(c("_v").sum().round(MONEY_DECIMALS))
        .group_by(customer.alias("_kh").set_sorted(), maintain_order=True)
        .agg(
            pl.len().alias("_n"),
            offset.first().alias("_first"),
            offset.last().alias("_last"),
            rounded_money(c("_v").sum()).alias("_total"),
            c("_v").first().alias("_first_v"),
        )
        .collect()
    )
    return per_customer.with_columns(cid.alias("_cid"))
