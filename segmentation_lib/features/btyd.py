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
import re
import warnings

import numpy as np
import polars as pl

from segmentation_lib.data.quality import MONEY_FRACTION_BITS, money_units, units_to_money
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.common import (DAY_BITS, FREQS, as_lazy, in_threads, period_index, period_of, require_columns,
                                              require_numeric, row_pieces, run_starts_near, sort_by_text, take_in_threads,
                                              to_utc, ts_expr)

#: period units of :func:`btyd_summary`: the configuration's ``FREQS`` plus hours (lifetimes ``freq="h"``)
BTYD_FREQS = ("h",) + tuple(FREQS)

#: money is summed exactly as integers of ``2**-MONEY_FRACTION_BITS`` (Int128): the sums are
#: independent of row order and partitioning, and exact for every amount whose magnitude is between
#: ``2**-60`` (about 8.7e-19, smaller parts are truncated) and ``2**66`` (about 7.4e19)
_SCALE = float(2**MONEY_FRACTION_BITS)  # MONEY_FRACTION_BITS: data.quality, the one definition of exact money
_MAX_AMOUNT = float(2**66)


class DefaultObservationEndWarning(UserWarning):
    """``observation_end`` was not given: the last transaction's period is used (as lifetimes does)."""


def _fixed(e: pl.Expr) -> pl.Expr:
    """An amount as an exact Int128 count of ``2**-60`` units (``data.quality.money_units``)."""
    return money_units(e)


def _snap(total: pl.Expr, gross: pl.Expr) -> pl.Expr:
    """An exact sum set to 0 when it is below 2**-50 of the gross (sum of magnitudes): the float
    residue of a net-zero sum of decimal amounts (0.3 - 0.1 - 0.2 = -2.8e-17 exactly) counts as zero,
    with no sign left behind. Everything else stays exact."""
    return pl.when(total.cast(pl.Float64).abs() <= gross.cast(pl.Float64) * 2.0**-50).then(pl.lit(0, dtype=pl.Int128)).otherwise(total)


def _to_float(e: pl.Expr) -> pl.Expr:
    """An exact Int128 sum back to Float64, rounded once (``data.quality.units_to_money``)."""
    return units_to_money(e)


_MONTH = re.compile(r"^\s*(\d{4})-(\d{2})\s*$")


def _moment(value, name: str) -> dt.datetime:
    """``observation_end`` / ``calibration_end`` as an aware UTC datetime: a date, a datetime (naive =
    UTC), an ISO date/datetime string, a month string ``"YYYY-MM"`` or a period (an object with
    ``to_timestamp()``, e.g. ``pandas.Period``: its start, as lifetimes does)."""
    if hasattr(value, "to_timestamp") and not isinstance(value, (dt.date, str)):
        value = value.to_timestamp().to_pydatetime()
    if isinstance(value, str):
        m = _MONTH.match(value)
        if m:
            value = dt.datetime(int(m.group(1)), int(m.group(2)), 1)
    return to_utc(value, name)


def _period_start(p: pl.Expr, freq: str) -> pl.Expr:
    """The UTC start of period index ``p`` (the inverse of :func:`period_index`)."""
    if freq == "M":
        return pl.datetime(p // 12, p % 12 + 1, 1, time_unit="us", time_zone="UTC")
    unit_us = {"h": 3_600_000_000, "D": 86_400_000_000, "W": 7 * 86_400_000_000}[freq]
    shift = 3 * 86_400_000_000 if freq == "W" else 0
    return pl.from_epoch(p.cast(pl.Int64) * unit_us - shift, time_unit="us").dt.replace_time_zone("UTC")



# --------------------------------------------------------------------------------------------
# BTYD summary
# --------------------------------------------------------------------------------------------
def btyd_summary(
    transactions: pl.DataFrame | pl.LazyFrame,
    observation_end: str | dt.date | dt.datetime | None = None,
    freq: str = "D",
    customer_id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "amount",
    method: str = "auto",
    *,
    freq_multiplier: float = 1,
    include_first_transaction: bool | str = False,
    id_col: str | None = None,
) -> pl.DataFrame:
    """One row per customer with ``frequency, recency, T, monetary_value`` as lifetimes computes them.

    Transactions are bucketed into periods of ``freq`` (UTC hours ``"h"``, calendar days ``"D"``,
    Monday-based weeks ``"W"`` or months ``"M"``); amounts in the same period are summed; rows whose
    period is after the period of ``observation_end`` are dropped (as lifetimes does, a row later on
    the same day as ``observation_end`` is kept). ``frequency`` = periods with a transaction - 1,
    ``recency`` = last - first period, ``T`` = period of ``observation_end`` - first period,
    ``monetary_value`` = mean of the per-period sums excluding the first period (0 for one-period
    customers). Every row counts, as in lifetimes: a return on its own day is a period (filter
    ``amount > 0`` first if you want purchases only). Output is sorted by customer id; values are
    Float64 like lifetimes.

    Options (lifetimes' / pymc-marketing's names in brackets, see docs/features.md):

    * ``observation_end`` (``observation_period_end``): a date, a datetime, an ISO string, a month
      ``"YYYY-MM"`` or a period object (``pandas.Period``: its start). **Default: the period of the
      last transaction** (as lifetimes and pymc-marketing); a :class:`DefaultObservationEndWarning`
      states the date chosen. The end used is on the result as ``result.observation_end``.
    * ``freq_multiplier`` (lifetimes ``freq_multiplier``, pymc-marketing ``time_scaler``): recency
      and T are divided by it (``freq="h", freq_multiplier=24`` gives days to the hour).
    * ``include_first_transaction`` (same name in both peers, two meanings, so the value names the
      peer): ``True`` or ``"lifetimes"`` counts the first period in ``frequency`` (= periods with a
      transaction) and in ``monetary_value`` (mean of all per-period sums), recency and T
      unchanged, as lifetimes' ``summary_data_from_transaction_data``; ``"pymc-marketing"`` is
      pymc-marketing's ``rfm_summary(include_first_transaction=True)``, the *segmentation* view:
      the same frequency and monetary value, ``recency`` = T - (last - first) = periods from the
      last purchase to the observation end, and no ``T`` column. Do not feed either table to the
      BTYD models.
    * ``id_col`` (``customer_id_col``): the caller's id column, kept under its name in the output
      (``customer_id`` by default; ``customer_id_col`` is the older spelling of the same argument).

    Money is summed exactly (Int128 multiples of 2**-60, see ``MONEY_FRACTION_BITS``), so the
    result equals lifetimes' to float rounding (tested at 1e-12 relative) and is the same bytes for
    any row order or partitioning. One deliberate difference: a sum below 2**-50 of its gross
    (the residue of a net-zero sum such as 0.3 - 0.1 - 0.2) is reported as +0.0, where lifetimes
    gives the residue (e.g. -2.8e-17). ``method``: ``"sorted"`` sorts the rows by a packed customer | period key and
    reads periods and customers off the sorted runs (one UInt64 per row: integer id | period |
    amount in cents or row number, or text-id hash bits | period | row number; sums as int64 limbs
    per run, Int128 only for multi-row or negative cells); ``"grouped"`` groups by (customer, period)
    then by customer; ``"auto"`` (default) is ``"sorted"`` unless two customers share a key or the
    log spans more than 2**20 periods. Both give the same table (tested).

    >>> import polars as pl, datetime as dt
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "a"], "amount": [1.0, 2.0, 5.0],
    ...     "timestamp": [dt.datetime(2020, 1, 1, 10), dt.datetime(2020, 1, 1, 12), dt.datetime(2020, 1, 5)]})
    >>> btyd_summary(tx, "2020-01-10").row(0)
    ('a', 1.0, 4.0, 9.0, 5.0)
    """
    if id_col is not None:
        customer_id_col = id_col
    first_view = _first_transaction_view(include_first_transaction)
    if freq not in BTYD_FREQS:
        raise ConfigError(f"btyd_summary: freq={freq!r} is not supported. Fix: use one of {list(BTYD_FREQS)}.")
    if not (isinstance(freq_multiplier, (int, float)) and freq_multiplier > 0):
        raise ConfigError(f"btyd_summary: freq_multiplier={freq_multiplier!r} must be a positive number.")
    if method not in ("auto", "sorted", "grouped"):
        raise ConfigError(f"btyd_summary: method={method!r} is not one of 'auto', 'sorted', 'grouped'.")
    lf = as_lazy(transactions)
    cols = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    schema = require_columns(lf, cols, "btyd_summary")
    if monetary_value_col:
        require_numeric(schema, monetary_value_col, "btyd_summary")
    ts = ts_expr(datetime_col, schema[datetime_col])
    end = _resolve_end(lf, ts, observation_end, "btyd_summary")
    end_p = period_of(end, freq)
    c = pl.col
    rows = lf.select(
        c(customer_id_col).alias("_cid"),
        period_index(ts, freq).cast(pl.Int64).alias("_p"),
        (c(monetary_value_col).cast(pl.Float64) if monetary_value_col else pl.lit(0.0)).alias("_a"),
    )
    keep = (c("_p") <= end_p) & c("_cid").is_not_null()
    per_customer = None
    if method != "grouped":
        # one streaming read of the three columns; the amount check runs on them (no second scan)
        df = rows.collect(engine="streaming")
        if monetary_value_col and _bad_amounts(df["_a"]):
            raise _amount_error(monetary_value_col, "btyd_summary")
        if df.height and (df["_p"].null_count() or df["_cid"].null_count() or df["_p"].max() > end_p):
            df = df.filter(keep)
        box = [df]  # memory: the sorted path may free the rows once it has what it needs
        del df
        per_customer = _btyd_sorted(box, end_p)
        rows = box[0].lazy() if box else None
    else:
        if monetary_value_col:
            _check_amounts(lf, monetary_value_col, "btyd_summary")
        rows = rows.filter(keep)
    if per_customer is None and method == "sorted":
        raise DataError(
            "btyd_summary: method='sorted' does not apply to this log (two customers share a 44-bit key, or "
            f"it spans more than {(1 << DAY_BITS) - 1:,} periods). Fix: use method='auto'."
        )
    if per_customer is None:  # exact Int128 sums: the same result whatever the order the engine sums in
        per_customer = _grouped_per_customer(rows)
    if first_view:
        frequency = c("_n")
        money = _to_float(_snap(c("_total"), c("_gross"))) / c("_n")
    else:
        frequency = c("_n") - 1
        net = _snap(c("_total") - c("_first_v"), c("_gross") - c("_first_v").abs())
        money = pl.when(c("_n") > 1).then(_to_float(net) / (c("_n") - 1)).otherwise(0.0)
    m = float(freq_multiplier)
    out = per_customer.lazy().select(
        c("_cid").alias(customer_id_col),
        frequency.cast(pl.Float64).alias("frequency"),
        ((c("_last") - c("_first")).cast(pl.Float64) / m).alias("recency"),
        ((pl.lit(end_p) - c("_first")).cast(pl.Float64) / m).alias("T"),
        (money + 0.0).alias("monetary_value"),
    ).with_columns(  # an exact zero sum is +0.0 already; keep no -0.0 from a division
        pl.when(c("monetary_value") == 0.0).then(0.0).otherwise(c("monetary_value")).alias("monetary_value")
    )
    if first_view == "pymc-marketing":  # recency to the observation end, no T (pymc-marketing's segmentation view)
        out = out.with_columns((c("T") - c("recency")).alias("recency")).drop("T")
    if not monetary_value_col:
        out = out.drop("monetary_value")
    result = sort_by_text(out.collect(), customer_id_col)
    result.observation_end = end
    return result


#: the values of ``include_first_transaction`` and the convention each names
FIRST_TRANSACTION_VIEWS = {False: None, True: "lifetimes", "lifetimes": "lifetimes", "pymc-marketing": "pymc-marketing"}


def _first_transaction_view(value) -> str | None:
    """``include_first_transaction`` as ``None``, ``"lifetimes"`` or ``"pymc-marketing"``."""
    try:
        return FIRST_TRANSACTION_VIEWS[value]
    except (KeyError, TypeError):
        raise ConfigError(
            f"btyd_summary: include_first_transaction={value!r} is not supported. Fix: use False (the model "
            "view), True or 'lifetimes' (first period counted, recency and T unchanged) or 'pymc-marketing' "
            "(first period counted, recency = periods since the last purchase, no T column)."
        ) from None


def _resolve_end(lf: pl.LazyFrame, ts: pl.Expr, value, where: str, name: str = "observation_end") -> dt.datetime:
    """The observation end given, or (``None``) the last transaction's time, with a warning."""
    if value is not None:
        return _moment(value, name)
    last = lf.select(ts.max()).collect().item()
    if last is None:
        raise DataError(f"{where}: the log has no transactions, so there is no default {name}. Fix: pass {name}.")
    warnings.warn(
        f"{where}: {name} not given; using the last transaction date, {last.isoformat()} "
        "(its period, as lifetimes and pymc-marketing do). Pass it to make the choice explicit.",
        DefaultObservationEndWarning, stacklevel=3,
    )
    return last


def _bad_amounts(a: pl.Series) -> bool:
    """Whether a Float64 amount column has NaN or a magnitude of 2**66 or more (not exact in Int128)."""
    return bool(a.is_nan().any() or (a.abs() >= _MAX_AMOUNT).any())


def _amount_error(col: str, where: str) -> DataError:
    return DataError(f"{where}: column '{col}' has NaN or an amount of magnitude >= 2**66. Fix: clean the amounts first.")


def _check_amounts(lf: pl.LazyFrame, col: str, where: str) -> None:
    big = lf.select((pl.col(col).cast(pl.Float64).abs() >= _MAX_AMOUNT).any() | pl.col(col).cast(pl.Float64).is_nan().any()).collect().item()
    if big:
        raise _amount_error(col, where)


def _btyd_sorted(box: list[pl.DataFrame], end_p: int) -> pl.DataFrame | None:
    """Per-customer ``_n, _first, _last, _total, _gross, _first_v`` of :func:`btyd_summary` by sorting.

    The rows (``_cid, _p, _a``: id, period, Float64 amount) are put in customer, then period order;
    runs of equal customer and period are the (customer, period) cells, runs of equal customer the
    customers. Integer ids spanning few enough values are packed with the period and the row number
    into one UInt64 (customer | period | row, as many bits as each needs) and sorted as plain values
    (no argsort; the row number fetches the amount), the customer part being the id itself (minus
    the lowest): exact, no hash. Otherwise the rows are sorted by a key of customer (the id, or 44
    bits of a hash) | period offset (20 bits); with a hash, a second, independent 64-bit hash must
    be constant within each customer run, otherwise two customers share a key and ``None`` sends
    the caller to the grouped path (as does a log spanning more than 2**20 periods). ``box`` holds
    the rows; the packed path empties it (frees them) once it no longer needs them.
    """
    c = pl.col
    df = box[0]
    p0 = end_p - (1 << DAY_BITS) + 1  # period offsets 0 .. 2**20 - 1
    if df.height == 0 or df["_p"].min() < p0:
        return None
    direct = _direct_ids(df["_cid"])
    if direct is not None:
        lo, dtype, _ = direct
        fast = _int_runs(df, lo, p0)
        if fast is not None:
            box.clear()
            return fast.with_columns((c("_kh").cast(pl.Int64) + lo).cast(dtype).set_sorted().alias("_cid")).drop("_kh")
        del df
        packed = _packed_runs(box, lo, p0)
        df = box[0] if box else None
        if packed is not None:
            return packed.with_columns((c("_kh").cast(pl.Int64) + lo).cast(dtype).set_sorted().alias("_cid"))
    elif df["_cid"].dtype == pl.String:
        fast = _text_runs(df, p0)
        if fast is not None:
            return fast
        hashed = _hashed_runs(df, p0)
        if hashed is not False:
            return hashed
    offset = (c("_p") - p0).cast(pl.UInt64)
    if direct is not None and direct[2] < (1 << (64 - DAY_BITS)):  # the id itself is the key (no hash, no check)
        lo, dtype, _ = direct
        s = df.select(((c("_cid") - lo).cast(pl.UInt64) * (1 << DAY_BITS) + offset).alias("_kp"), c("_a")).sort("_kp")
        per_customer = _per_customer_runs(_split_key(s), p0)
        # runs come in key order, so the ids are sorted (the final sort by id then costs nothing)
        return per_customer.with_columns((c("_kh").cast(pl.Int64) + lo).cast(dtype).set_sorted().alias("_cid"))
    index_type = pl.UInt32 if df.height < 2**32 else pl.UInt64
    s = df.select(
        (c("_cid").hash(seed=0) // (1 << DAY_BITS) * (1 << DAY_BITS) + offset).alias("_kp"),
        c("_a"),
        pl.int_range(pl.len(), dtype=index_type).alias("_i"),
        c("_cid").hash(seed=1).alias("_h2"),
    ).sort("_kp")
    customer = c("_kp") // (1 << DAY_BITS)
    new_customer = (customer != customer.shift()).fill_null(True)
    if s.select((~new_customer & (c("_h2") != c("_h2").shift())).any()).item():
        return None
    first_rows = s.select(new_customer.arg_true().alias("r"))["r"]
    cid = df["_cid"].gather(s["_i"].gather(first_rows))
    return _per_customer_runs(_split_key(s.select("_kp", "_a")), p0).with_columns(cid.alias("_cid"))


def _split_key(s: pl.DataFrame) -> pl.DataFrame:
    """Rows ``_kp, _a`` (customer | 20-bit period offset) as ``_kh, _off, _a``."""
    c = pl.col
    return s.select((c("_kp") // (1 << DAY_BITS)).alias("_kh"), (c("_kp") % (1 << DAY_BITS)).cast(pl.Int64).alias("_off"), "_a")


def _packed_runs(box: list[pl.DataFrame], lo: int, p0: int) -> pl.DataFrame | None:
    """:func:`_per_customer_runs` of integer-id rows (``box[0]``) from one UInt64 per row, customer |
    period | row number, sorted as values; None when the three need more than 64 bits together.
    Empties ``box`` (frees the rows) once the sorted keys and amounts are made."""
    df = box[0]
    n = df.height
    p_lo = int(df["_p"].min())
    bits_c = int(df["_cid"].max() - lo).bit_length()
    bits_p = int(df["_p"].max() - p_lo).bit_length()
    bits_r = (n - 1).bit_length()
    if bits_c + bits_p + bits_r > 64:
        return None
    shift_p, shift_c = np.uint64(bits_r), np.uint64(bits_r + bits_p)
    # in place, modulo 2**64: id - lowest and period - lowest are >= 0, so the wrap-around is exact
    key = df["_cid"].to_numpy().astype(np.uint64)
    key -= np.uint64(lo % (1 << 64))
    key <<= shift_c
    part = _sort_rows(key, df["_p"], p_lo, shift_p, bits_r)  # the row numbers, in key order
    amount = df["_a"].fill_null(0.0) if df["_a"].null_count() else df["_a"]
    amount = amount.to_numpy()[part]
    box.clear()
    del df
    np.right_shift(key, shift_c, out=part)  # the customer part
    key >>= shift_p
    key &= np.uint64((1 << bits_p) - 1)  # the period part
    key += np.uint64(p_lo - p0)
    s = pl.DataFrame({"_kh": part, "_off": key.view(np.int64), "_a": amount})
    del key, part, amount
    return _per_customer_runs(s, p0)


_ROW_BLOCK = 1 << 20


def _sort_rows(key: np.ndarray, periods: pl.Series, p_lo: int, shift_p: int, bits_r: int) -> np.ndarray:
    """Sort ``key`` (UInt64, the customer bits already in place) in place after OR-ing in each row's
    period offset (at ``shift_p``) and row number (the low ``bits_r`` bits); return the row numbers in
    key order (a UInt64 buffer the caller may reuse).

    >>> key = np.array([1 << 4, 0], dtype=np.uint64)
    >>> _sort_rows(key, pl.Series([7, 7]), 7, 1, 1).tolist(), key.tolist()
    ([1, 0], [1, 16])
    """
    part = periods.to_numpy().astype(np.uint64)
    part -= np.uint64(p_lo % (1 << 64))
    part <<= np.uint64(shift_p)
    key |= part
    for lo in range(0, key.size, _ROW_BLOCK):  # the row numbers, a block at a time (no second full-size array)
        key[lo:lo + _ROW_BLOCK] |= np.arange(lo, min(lo + _ROW_BLOCK, key.size), dtype=np.uint64)
    key.sort()
    return np.bitwise_and(key, np.uint64((1 << bits_r) - 1), out=part)


def _bits(df: pl.DataFrame) -> tuple[int, int, int]:
    """(lowest period, bits of the period span, bits of a row number) of rows ``_p``."""
    p_lo = int(df["_p"].min())
    return p_lo, int(df["_p"].max() - p_lo).bit_length(), (df.height - 1).bit_length()


def _starts(flags: np.ndarray) -> np.ndarray:
    """Positions where a run starts (``flags[i]``: row i differs from row i - 1; row 0 always starts)."""
    flags[0] = True
    return np.flatnonzero(flags)


def _hash_keys(df: pl.DataFrame, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int, int, int] | None:
    """The sorted UInt64 keys of text-id rows ``df`` (``_p``: periods) from their 64-bit id hashes
    ``h``: the hash's top bits | period offset | row number (:func:`_sort_rows`); returns ``(key, row,
    p_lo, bits_p, shift_p, shift_c)``, ``row`` the rows in key order, or None when fewer than 16 bits
    would be left for the hash."""
    p_lo, bits_p, bits_r = _bits(df)
    bits_c = 64 - bits_p - bits_r
    if bits_c < 16:
        return None
    shift_p, shift_c = bits_r, bits_r + bits_p
    key = h >> np.uint64(64 - bits_c)
    key <<= np.uint64(shift_c)
    return key, _sort_rows(key, df["_p"], p_lo, shift_p, bits_r).view(np.int64), p_lo, bits_p, shift_p, shift_c


def _hashed_runs(df: pl.DataFrame, p0: int) -> pl.DataFrame | None | bool:
    """:func:`_btyd_sorted` for text ids without an argsort: one UInt64 per row, the top bits of a
    64-bit hash of the id | period | row number, sorted as values. Customers whose top bits clash
    (expected now and then: the hash keeps only what the period and row number leave) are told
    apart by the whole hash, their few rows sorted by it separately; a second, independent hash must
    then be constant within every customer (else ``None``: two ids share a 64-bit hash). False when
    fewer than 16 bits would be left for the hash (the caller sorts by a 44-bit hash instead)."""
    c = pl.col
    n = df.height
    h = df.select(c("_cid").hash(seed=0)).to_series().to_numpy()
    keys = _hash_keys(df, h)
    if keys is None:
        return False
    key, row, p_lo, bits_p, shift_p, shift_c = keys
    shift_p, shift_c = np.uint64(shift_p), np.uint64(shift_c)
    hs = h[row]  # the whole hash, in key order
    del h
    top = key >> shift_c
    key >>= shift_p
    key &= np.uint64((1 << bits_p) - 1)
    key += np.uint64(p_lo - p0)
    off = key.view(np.int64)
    amount = (df["_a"].fill_null(0.0) if df["_a"].null_count() else df["_a"]).to_numpy()[row]
    h2 = df.select(c("_cid").hash(seed=1)).to_series().to_numpy()[row]
    flags = np.empty(n, dtype=bool)
    np.not_equal(top[1:], top[:-1], out=flags[1:])
    runs = _starts(flags)
    clash = np.zeros(n, dtype=bool)
    np.not_equal(hs[1:], hs[:-1], out=clash[1:])
    clash[1:] &= ~flags[1:]  # the whole hash changes inside a run of equal top bits
    mark = np.zeros(n + 1, dtype=np.int32)
    if clash.any():
        run_no = np.searchsorted(runs, np.flatnonzero(clash), side="right") - 1
        bad = np.unique(run_no)
        ends = np.append(runs[1:], n)
        np.add.at(mark, runs[bad], 1)
        np.add.at(mark, ends[bad], -1)
    odd = np.cumsum(mark[:-1]) > 0  # rows of runs with clashing top bits
    parts = []
    main = pl.DataFrame({"_kh": top, "_off": off, "_a": amount, "_h2": h2, "_i": row})
    del top, off, amount, h2, row
    if odd.any():
        sub = main.filter(pl.Series(odd)).with_columns(pl.Series(hs[odd]).alias("_kh")).sort("_kh", "_off")
        main = main.filter(pl.Series(~odd))
        parts.append(sub)
    del hs
    parts.insert(0, main)
    out = []
    for s in parts:
        new_customer = (c("_kh") != c("_kh").shift()).fill_null(True)
        if s.select((~new_customer & (c("_h2") != c("_h2").shift())).any()).item():
            return None
        first_rows = s.select(new_customer.arg_true().alias("r"))["r"]
        cid = df["_cid"].gather(s["_i"].gather(first_rows))
        out.append(_per_customer_runs(s.select("_kh", "_off", "_a"), p0).with_columns(cid.alias("_cid")))
    return pl.concat(out)


def _direct_ids(ids: pl.Series) -> tuple[int, pl.DataType, int] | None:
    """``(lowest id, dtype, highest - lowest)`` when integer customer ids lie within +-2**62 (then
    the id minus the lowest is the customer part of a sort key, exact and collision-free); else None.

    >>> _direct_ids(pl.Series([5, 9, 7]))
    (5, Int64, 4)
    >>> _direct_ids(pl.Series(["a"])) is None
    True
    """
    if not ids.dtype.is_integer() or ids.len() == 0:
        return None
    lo, hi = ids.min(), ids.max()
    if lo is None or lo < -(1 << 62) or hi >= (1 << 62):
        return None
    return int(lo), ids.dtype, int(hi - lo)


def _per_customer_runs(s: pl.DataFrame, p0: int) -> pl.DataFrame:
    """Per customer (``_kh``) ``_n, _first, _last, _total, _gross, _first_v`` from rows ``_kh, _off,
    _a`` (customer key, period offset, Float64 amount) sorted by customer, then period.

    No group-by over the rows: customers and cells (customer, period) are runs of the sorted keys,
    found by comparing neighbours, and a customer's sums are differences of exact Int128 running sums
    read at its run ends. A cell's sum differs from the sum of its rows' values (by :func:`_snap`, and
    in ``_gross``, a sum of cell magnitudes) only when the cell has two rows or more, so cell sums are
    formed for those rows alone (a few percent of a log, typically) and correct the customer's sums.

    >>> s = pl.DataFrame({"_kh": [0, 0, 0, 1], "_off": [5, 5, 6, 2], "_a": [1.0, -2.0, 4.0, 8.0]})
    >>> r = _per_customer_runs(s.with_columns(pl.col("_kh").cast(pl.UInt64)), 0)
    >>> r.select("_n", "_first", "_last", *(_to_float(pl.col(k)) for k in ("_total", "_gross", "_first_v"))).rows()
    [(2, 5, 6, 3.0, 5.0, -1.0), (1, 2, 2, 8.0, 8.0, 8.0)]
    """
    c = pl.col
    n = s.height
    kh, off, v = c("_kh"), c("_off"), _fixed(c("_a")).fill_null(0)
    new_cust = (kh != kh.shift()).fill_null(True)
    same_cell = ~new_cust & (off == off.shift()).fill_null(False)
    runs = s.select(new_cust.arg_true().alias("_start")).to_series()
    rows = s.select(v.alias("_v"), same_cell.alias("_same")).select(
        c("_v").cum_sum().alias("_cs"),
        c("_v").abs().cum_sum().alias("_ca"),
        (~c("_same")).cast(pl.UInt32).cum_sum().alias("_cn"),  # cells up to this row (1-based cell number)
        "_same",
    )
    ends = pl.concat([runs.slice(1) - 1, pl.Series([n - 1], dtype=runs.dtype)])
    cell_starts = rows.select((~c("_same")).arg_true()).to_series()
    cell_starts = pl.concat([cell_starts, pl.Series([n], dtype=cell_starts.dtype)])
    # the customer's first cell ends just before its second cell starts (or at the log's last row)
    first_end = cell_starts.gather(rows["_cn"].gather(runs)) - 1

    def run_sums(cum: pl.Series) -> pl.Series:  # running sums at the customers' last rows -> per-customer sums
        at_end = cum.gather(ends)
        return at_end - at_end.shift(1, fill_value=0)

    before = rows["_cs"].gather(ends).shift(1, fill_value=0)  # running sum before each customer
    out = pl.DataFrame({
        "_kh": s["_kh"].gather(runs),
        "_n": run_sums(rows["_cn"]).cast(pl.UInt32),
        "_first": s["_off"].gather(runs) + p0,
        "_last": s["_off"].gather(ends) + p0,
        "_total": run_sums(rows["_cs"]),
        "_gross": run_sums(rows["_ca"]),
        "_first_v": rows["_cs"].gather(first_end) - before,
    })
    multi = s.filter(rows["_same"] | rows["_same"].shift(-1, fill_value=False))
    del rows
    if multi.height == 0:
        return out
    # cells of two rows or more (sorted like the rows): exact sum and gross, snapped, by runs again;
    # the change each makes to its customer's sums, placed on the customer's row by position
    new_k = (kh != kh.shift()).fill_null(True)
    m = multi.select("_kh", "_off", new_k.alias("_nk"), ((off != off.shift()).fill_null(True) | new_k).alias("_nc"),
                     v.cum_sum().alias("_cs"), v.abs().cum_sum().alias("_ca"))
    cell_end = pl.concat([m.select(c("_nc").arg_true()).to_series().slice(1) - 1,
                          pl.Series([m.height - 1], dtype=pl.get_index_type())])
    at_end = m.select(c("_cs", "_ca").gather(cell_end))
    cells = pl.DataFrame({
        "_kh": m["_kh"].gather(cell_end),
        "_off": m["_off"].gather(cell_end),
        "_raw": at_end["_cs"] - at_end["_cs"].shift(1, fill_value=0),
        "_abs": at_end["_ca"] - at_end["_ca"].shift(1, fill_value=0),
    }).with_columns(_snap(c("_raw"), c("_abs")).alias("_cell"))
    cells = cells.with_columns((c("_cell") - c("_raw")).alias("_d"), (c("_cell").abs() - c("_abs")).alias("_dg"),
                               (c("_kh") != c("_kh").shift()).fill_null(True).alias("_nk"))
    k_end = pl.concat([cells.select(c("_nk").arg_true()).to_series().slice(1) - 1,
                       pl.Series([cells.height - 1], dtype=pl.get_index_type())])
    k_start = cells.select(c("_nk").arg_true()).to_series()
    sums = cells.select(c("_d", "_dg").cum_sum().gather(k_end))
    fix = pl.DataFrame({
        "_kh": cells["_kh"].gather(k_start),
        "_dt": sums["_d"] - sums["_d"].shift(1, fill_value=0),
        "_dg": sums["_dg"] - sums["_dg"].shift(1, fill_value=0),
        "_df": cells["_d"].gather(k_start),
        "_fo": cells["_off"].gather(k_start),
    })
    pos = out["_kh"].search_sorted(fix["_kh"])  # out is sorted by _kh, and holds every customer of fix
    zero = pl.lit(0, dtype=pl.Int128)
    first = out["_first"].gather(pos)
    add_first = fix.select(pl.when(c("_fo") + p0 == first).then(c("_df")).otherwise(zero)).to_series()
    return out.with_columns(
        out["_total"].scatter(pos, out["_total"].gather(pos) + fix["_dt"]),
        out["_gross"].scatter(pos, out["_gross"].gather(pos) + fix["_dg"]),
        # the correction of a customer's earliest multi-row cell applies when that cell is its first
        out["_first_v"].scatter(pos, out["_first_v"].gather(pos) + add_first),
    )


# --------------------------------------------------------------------------------------------
# first transactions (lifetimes' _find_first_transactions)
# --------------------------------------------------------------------------------------------
def first_transactions(
    transactions: pl.DataFrame | pl.LazyFrame,
    observation_end: str | dt.date | dt.datetime | None = None,
    freq: str = "D",
    id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "amount",
) -> pl.DataFrame:
    """One row per (customer, period with a transaction) up to ``observation_end``'s period, as
    lifetimes' ``_find_first_transactions`` (pymc-marketing ``_find_first_transactions``): the
    customer id, ``datetime_col`` = the period's UTC start, the period's summed amount (exact) and
    ``first`` = True on each customer's first period. Sorted by customer, then period. Default
    ``observation_end``: the last transaction (stated by a warning), as :func:`btyd_summary`.
    """
    if freq not in BTYD_FREQS:
        raise ConfigError(f"first_transactions: freq={freq!r} is not supported. Fix: use one of {list(BTYD_FREQS)}.")
    lf = as_lazy(transactions)
    cols = [id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    schema = require_columns(lf, cols, "first_transactions")
    if monetary_value_col:
        require_numeric(schema, monetary_value_col, "first_transactions")
        _check_amounts(lf, monetary_value_col, "first_transactions")
    ts = ts_expr(datetime_col, schema[datetime_col])
    end = _resolve_end(lf, ts, observation_end, "first_transactions")
    end_p = period_of(end, freq)
    c = pl.col
    v = _fixed(c(monetary_value_col)) if monetary_value_col else None
    aggs = [_to_float(_snap(v.sum(), v.abs().sum())).alias(monetary_value_col)] if monetary_value_col else []
    out = (
        lf.select(c(id_col), period_index(ts, freq).cast(pl.Int64).alias("_p"), *([c(monetary_value_col)] if monetary_value_col else []))
        .filter(c("_p") <= end_p, c(id_col).is_not_null())
        .group_by(id_col, "_p")
        .agg(*aggs)
        .sort(id_col, "_p")
        .with_columns((c("_p") == c("_p").min().over(id_col)).alias("first"), _period_start(c("_p"), freq).alias(datetime_col))
        .select(id_col, datetime_col, *([monetary_value_col] if monetary_value_col else []), "first")
        .collect()
    )
    out.observation_end = end
    return out


# --------------------------------------------------------------------------------------------
# calibration / holdout (lifetimes' calibration_and_holdout_data)
# --------------------------------------------------------------------------------------------
def calibration_and_holdout_summary(
    transactions: pl.DataFrame | pl.LazyFrame,
    calibration_end: str | dt.date | dt.datetime,
    observation_end: str | dt.date | dt.datetime | None = None,
    freq: str = "D",
    *,
    freq_multiplier: float = 1,
    include_first_transaction: bool | str = False,
    id_col: str = "customer_id",
    datetime_col: str = "timestamp",
    monetary_value_col: str | None = "amount",
) -> pl.DataFrame:
    """Per calibration customer: the calibration summary (``frequency_cal, recency_cal, T_cal,
    monetary_value_cal``) plus ``frequency_holdout, monetary_value_holdout, duration_holdout``, the
    contract of lifetimes ``calibration_and_holdout_data`` (pymc-marketing ``rfm_train_test_split``).

    As lifetimes: the calibration rows are those with time <= ``calibration_end`` (a moment: a
    date means its midnight, so a row later that day is in the holdout), summarised with
    :func:`btyd_summary` at ``calibration_end``; the holdout rows have ``calibration_end`` < time
    <= ``observation_end`` (default: the last transaction, with a warning). ``frequency_holdout`` =
    holdout periods with a transaction, ``monetary_value_holdout`` = mean of the holdout
    *transactions'* amounts (lifetimes does not sum them per period here), both 0 for a customer
    without holdout rows; ``duration_holdout`` = period of ``observation_end`` - period of
    ``calibration_end``, divided by ``freq_multiplier``. Customers first seen in the holdout are
    excluded; their number is ``result.holdout_only_customers`` (and the ends used are
    ``result.calibration_end`` / ``result.observation_end``).
    """
    if freq not in BTYD_FREQS:
        raise ConfigError(f"calibration_and_holdout_summary: freq={freq!r} is not supported. Fix: use one of {list(BTYD_FREQS)}.")
    where = "calibration_and_holdout_summary"
    lf = as_lazy(transactions)
    cols = [id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    schema = require_columns(lf, cols, where)
    if monetary_value_col:
        require_numeric(schema, monetary_value_col, where)
        _check_amounts(lf, monetary_value_col, where)
    ts = ts_expr(datetime_col, schema[datetime_col])
    cal_end = _moment(calibration_end, "calibration_end")
    end = _resolve_end(lf, ts, observation_end, where)
    if end <= cal_end:
        raise ConfigError(f"{where}: observation_end ({end.isoformat()}) must be after calibration_end ({cal_end.isoformat()}).")
    c = pl.col
    lf = lf.with_columns(ts.alias(datetime_col)).filter(c(id_col).is_not_null())
    cal = btyd_summary(
        lf.filter(c(datetime_col) <= cal_end), cal_end, freq, id_col, datetime_col, monetary_value_col,
        freq_multiplier=freq_multiplier, include_first_transaction=include_first_transaction,
    )
    cal = cal.rename({k: f"{k}_cal" for k in cal.columns if k != id_col})
    hold_rows = lf.filter(c(datetime_col) > cal_end, c(datetime_col) <= end)
    hold = (
        hold_rows.group_by(id_col)
        .agg(
            period_index(c(datetime_col), freq).n_unique().cast(pl.Float64).alias("frequency_holdout"),
            *([(_to_float(_snap(_fixed(c(monetary_value_col)).sum(), _fixed(c(monetary_value_col)).abs().sum())) / pl.len())
               .alias("monetary_value_holdout")] if monetary_value_col else []),
        )
        .collect()
    )
    if hold.height == 0:
        raise DataError(f"{where}: no transactions between calibration_end and observation_end. Fix: check the two dates.")
    holdout_only = hold.join(cal.select(id_col), on=id_col, how="anti").height
    hold_cols = ["frequency_holdout"] + (["monetary_value_holdout"] if monetary_value_col else [])
    duration = (period_of(end, freq) - period_of(cal_end, freq)) / float(freq_multiplier)
    out = cal.join(hold, on=id_col, how="left", maintain_order="left").with_columns(
        *[c(k).fill_null(0.0) for k in hold_cols], pl.lit(duration, dtype=pl.Float64).alias("duration_holdout")
    )
    out.holdout_only_customers = holdout_only
    out.calibration_end = cal_end
    out.observation_end = end
    return out


# --------------------------------------------------------------------------------------------
# sorted keys -> per-customer sums with numpy runs and int64 limbs (issue 15: no Int128 per row)
# --------------------------------------------------------------------------------------------
#: amounts with at most this many decimals are packed into the sort key (no gather after the sort)
_KEY_DECIMALS = 2


def _whole_cents(a: np.ndarray) -> np.ndarray | None:
    """``a * 100`` as int64 when every amount is exactly ``k / 100`` for an integer ``k`` (the float
    ``k / 100.0`` gives back the amount bit for bit), else None. In threads over pieces of the rows.

    >>> _whole_cents(np.array([1.25, -0.1, 72.11])).tolist(), _whole_cents(np.array([0.125]))
    ([125, -10, 7211], None)
    """
    if a.size == 0:
        return None
    scale = float(10**_KEY_DECIMALS)
    cents = np.empty(a.size, dtype=np.int64)

    def piece(s: slice) -> bool:
        y = a[s] * scale
        np.rint(y, out=y)
        if not np.abs(y).max() < 2.0**52:
            return False
        np.copyto(cents[s], y, casting="unsafe")
        y /= scale
        return bool(np.array_equal(y, a[s]))

    return cents if all(in_threads(piece, row_pieces(a.size))) else None


def _runs_piece(key: np.ndarray, shift_c: int, shift_p: int, bits_p: int, p_base: int, a: np.ndarray) -> pl.DataFrame | None:
    """Per customer ``_kh, _n, _first, _last, _total, _gross, _first_v`` (as :func:`_per_customer_runs`)
    from sorted UInt64 keys ``customer | period | anything`` (``customer = key >> shift_c``, period
    offset ``= (key >> shift_p) & (2**bits_p - 1)``, period ``= offset + p_base``) and the rows'
    Float64 amounts in key order.

    A row's exact value ``trunc(a * 2**60)`` is split into two int64 limbs, ``q * 2**S + t``, summed
    per customer run with ``np.add.reduceat`` and joined as Int128 once per customer (exact: ``S``
    leaves room for the longest run). Only rows in cells of two or more rows or with a negative
    amount (where the cell's sum is snapped, or its magnitude differs from it) go through an Int128
    group-by, and correct their customers' sums. None when the limbs could overflow (caller falls back).

    >>> key = np.array([0b0_01_0, 0b0_01_1, 0b0_10_0, 0b1_00_0], dtype=np.uint64)  # customer | period | row bit
    >>> r = _runs_piece(key, 3, 1, 2, 10, np.array([1.0, -3.0, 4.0, 8.0]))
    >>> r.select("_kh", "_n", "_first", "_last", *(_to_float(pl.col(k)) for k in ("_total", "_gross", "_first_v"))).rows()
    [(0, 2, 11, 12, 2.0, 6.0, -2.0), (1, 1, 10, 10, 8.0, 8.0, 8.0)]
    """
    c = pl.col
    n = key.size
    work = np.empty(n, dtype=np.uint64)
    np.right_shift(key, np.uint64(shift_c), out=work)
    new_c = np.empty(n, dtype=bool)
    new_c[0] = True
    np.not_equal(work[1:], work[:-1], out=new_c[1:])
    st = np.flatnonzero(new_c)
    del new_c
    kh = work[st]
    ends = np.empty_like(st)
    ends[:-1] = st[1:] - 1
    ends[-1] = n - 1
    longest = int((ends - st).max()) + 1
    amax = max(float(a.max()), -float(a.min())) if n else 0.0  # (no temporary |a|: fresh memory costs page faults)
    bm = longest.bit_length() + 1
    ba = max(int(np.frexp(amax)[1]), 0)  # |a| < 2**ba
    limb = 63 - bm  # |t| < 2**limb, so a run's sum of t fits; the q sums need ba + 60 - limb + bm <= 63
    if ba + 60 - limb + bm > 63 or limb < 1:
        return None
    np.right_shift(key, np.uint64(shift_p), out=work)  # the cell: customer | period
    new_cell = np.empty(n, dtype=bool)
    new_cell[0] = True
    np.not_equal(work[1:], work[:-1], out=new_cell[1:])
    n_cells = np.add.reduceat(new_cell, st, dtype=np.int64)
    mask_p = np.uint64((1 << bits_p) - 1)
    first = (work[st] & mask_p).astype(np.int64) + p_base
    last = (work[ends] & mask_p).astype(np.int64) + p_base
    # the limbs: y = a * 2**(60 - limb), q = trunc(y), t = trunc((y - q) * 2**limb) (all exact: y - q is
    # y's fraction, and q converts back to y itself where |y| >= 2**52); one float and one int buffer
    y = a * 2.0 ** (60 - limb)
    t = np.empty(n, dtype=np.int64)
    np.copyto(t, y, casting="unsafe")  # q (a float to int64 cast truncates)
    sum_q = np.add.reduceat(t, st)
    y -= t
    y *= 2.0**limb
    np.copyto(t, y, casting="unsafe")
    del y
    sum_t = np.add.reduceat(t, st)
    del t
    i128 = pl.Int128
    raw = (pl.Series(sum_q).cast(i128) * pl.Series([1 << limb], dtype=i128) + pl.Series(sum_t).cast(i128))
    out = pl.DataFrame({
        "_kh": kh, "_n": n_cells.astype(np.uint32), "_first": first, "_last": last,
        "_total": raw, "_gross": raw, "_first_v": pl.Series(a[st]),
    }).with_columns(_fixed(c("_first_v")).alias("_first_v"))
    # rows whose cell sum is not their own value (two rows or more) or whose magnitude is not their value
    special = ~new_cell
    special[:-1] |= special[1:]
    special |= a < 0
    idx = np.flatnonzero(special)
    del special, new_cell
    if idx.size == 0:
        return out
    cust = np.searchsorted(st, idx, side="right") - 1
    sp = pl.DataFrame({"_c": cust, "_cell": work[idx], "_a": a[idx], "_r": idx, "_s0": st[cust]})
    del work
    v = _fixed(c("_a"))
    cells = sp.group_by("_cell").agg(
        c("_c").first(), c("_r").first(), c("_s0").first(), _fixed(c("_a").first()).alias("_v0"),
        v.sum().alias("_s"), v.abs().sum().alias("_g"),
    ).with_columns(_snap(c("_s"), c("_g")).alias("_z"))
    zero = pl.lit(0, dtype=i128)
    fix = cells.group_by("_c").agg(
        (c("_z") - c("_s")).sum().alias("_dt"),
        (c("_z").abs() - c("_s")).sum().alias("_dg"),
        pl.when(c("_r") == c("_s0")).then(c("_z") - c("_v0")).otherwise(zero).sum().alias("_df"),
    )
    pos = fix["_c"]
    return out.with_columns(
        out["_total"].scatter(pos, out["_total"].gather(pos) + fix["_dt"]),
        out["_gross"].scatter(pos, out["_gross"].gather(pos) + fix["_dg"]),
        out["_first_v"].scatter(pos, out["_first_v"].gather(pos) + fix["_df"]),
    )


def _int_runs(df: pl.DataFrame, lo: int, p0: int) -> pl.DataFrame | None:
    """:func:`_runs_piece` of integer-id rows: one UInt64 per row, id - lowest | period | amount in
    cents (when every amount is whole cents: nothing to fetch after the sort) or row number (the
    amounts are then fetched in key order); None when that needs more than 64 bits. The passes
    before and after the sort run in threads over pieces of the rows."""
    n = df.height
    ids = df["_cid"].to_numpy()
    p = df["_p"].to_numpy()
    a = (df["_a"].fill_null(0.0) if df["_a"].null_count() else df["_a"]).to_numpy()
    p_lo = int(p.min())
    bits_c = int(ids.max() - lo).bit_length()
    bits_p = int(p.max() - p_lo).bit_length()
    cents = _whole_cents(a)
    c_lo = None
    if cents is not None:
        c_lo = int(cents.min())
        bits_low = int(cents.max() - c_lo).bit_length()
    else:
        bits_low = (n - 1).bit_length()
    if bits_c + bits_p + bits_low > 64:
        if cents is None:
            return None
        cents, c_lo, bits_low = None, None, (n - 1).bit_length()
        if bits_c + bits_p + bits_low > 64:
            return None
    shift_p, shift_c = np.uint64(bits_low), np.uint64(bits_low + bits_p)
    key = np.empty(n, dtype=np.uint64)

    def build(s: slice) -> None:  # id - lowest | period - lowest | cents - lowest (or the row number)
        k = key[s]
        np.copyto(k, ids[s], casting="unsafe")  # (modulo 2**64: the differences below are exact)
        k -= np.uint64(lo % (1 << 64))
        k <<= shift_c
        part = p[s].astype(np.uint64)
        part -= np.uint64(p_lo % (1 << 64))
        part <<= shift_p
        k |= part
        if cents is not None:
            np.subtract(cents[s], c_lo, out=part.view(np.int64))
        else:
            part[:] = np.arange(s.start, s.stop, dtype=np.uint64)
        k |= part

    in_threads(build, row_pieces(n))
    del cents
    key.sort()
    low_mask = np.uint64((1 << bits_low) - 1)

    def piece(s: slice) -> pl.DataFrame | None:
        k = key[s]
        low = np.bitwise_and(k, low_mask).view(np.int64)
        if c_lo is None:
            amount = a[low]
        else:
            low += c_lo
            amount = low / float(10**_KEY_DECIMALS)
        del low
        return _runs_piece(k, int(shift_c), int(shift_p), bits_p, p_lo, amount)

    outs = in_threads(piece, row_pieces(n, run_starts_near(key, int(shift_c))), trim=True)
    if any(o is None for o in outs):
        return None
    return outs[0] if len(outs) == 1 else pl.concat(outs)


def _text_runs(df: pl.DataFrame, p0: int) -> pl.DataFrame | None:
    """:func:`_runs_piece` of text-id rows: one UInt64 per row, the top bits of a 64-bit hash of the
    id | period | row number; a second, independent 64-bit hash must be constant within every
    customer run, else None (two ids share the top bits: the caller uses :func:`_hashed_runs`)."""
    c = pl.col
    n = df.height
    hashes = df.select(c("_cid").hash(seed=0).alias("h"), c("_cid").hash(seed=1).alias("h2"))
    h2_rows = hashes["h2"].to_numpy()
    keys = _hash_keys(df, hashes["h"].to_numpy())
    del hashes  # (the first hash is in the keys now)
    if keys is None:
        return None
    key, row, p_lo, bits_p, shift_p, shift_c = keys
    a_rows = (df["_a"].fill_null(0.0) if df["_a"].null_count() else df["_a"]).to_numpy()

    def piece(s: slice) -> tuple[pl.DataFrame | None, np.ndarray, np.ndarray]:
        """The piece's runs table, where its customers start and where a second hash changes inside
        a run (two ids share the top bits), positions in the whole log."""
        k, r = key[s], row[s]
        h2 = h2_rows[r]
        top = k >> np.uint64(shift_c)
        same = np.empty(k.size, dtype=bool)
        np.equal(top[1:], top[:-1], out=same[1:])
        same[0] = False
        same[1:] &= h2[1:] != h2[:-1]
        del h2
        clash = np.flatnonzero(same) + s.start
        same[1:] = top[1:] != top[:-1]
        same[0] = True
        starts = np.flatnonzero(same) + s.start
        del same, top
        return _runs_piece(k, shift_c, shift_p, bits_p, p_lo, a_rows[r]), starts, clash

    pieces = in_threads(piece, row_pieces(n, run_starts_near(key, shift_c)), trim=True)
    if any(t is None for t, _, _ in pieces):
        return None
    out = pl.concat([t for t, _, _ in pieces]) if len(pieces) > 1 else pieces[0][0]
    starts = np.concatenate([st for _, st, _ in pieces])
    clash = np.concatenate([cl for _, _, cl in pieces])
    del pieces, h2_rows, a_rows
    out = out.with_columns(df["_cid"].gather(pl.Series(row[starts])).alias("_cid")).drop("_kh")
    if clash.size == 0:
        return out
    # the runs holding two ids: their rows summarised apart by the grouped path
    bad = np.unique(np.searchsorted(starts, clash, side="right") - 1)
    ends = np.append(starts[1:], n)
    take = np.concatenate([row[starts[b]:ends[b]] for b in bad])
    keep = np.ones(len(starts), dtype=bool)
    keep[bad] = False
    apart = _grouped_per_customer(df[pl.Series(take)].lazy())
    return pl.concat([out.filter(pl.Series(keep)), apart.select(out.columns)])


def _grouped_per_customer(rows: pl.LazyFrame) -> pl.DataFrame:
    """Per customer ``_cid, _n, _first, _last, _total, _gross, _first_v`` from rows ``_cid, _p, _a``
    by grouping (customer, period), then customer, with exact Int128 sums."""
    c = pl.col
    rows = rows.select("_cid", "_p", _fixed(c("_a")).alias("_v"))
    per_period = rows.group_by("_cid", "_p").agg(_snap(c("_v").sum(), c("_v").abs().sum()).alias("_v"))
    return per_period.group_by("_cid").agg(
        pl.len().alias("_n"),
        c("_p").min().alias("_first"),
        c("_p").max().alias("_last"),
        c("_v").sum().alias("_total"),
        c("_v").abs().sum().alias("_gross"),
        c("_v").min_by("_p").alias("_first_v"),
    ).collect(engine="streaming")
