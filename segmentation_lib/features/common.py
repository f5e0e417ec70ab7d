"""Shared building blocks of the feature tables: input checks, UTC times, periods, money sums.

>>> import datetime as dt
>>> to_utc("2024-01-10", "as_of")
datetime.datetime(2024, 1, 10, 0, 0, tzinfo=datetime.timezone.utc)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Collection, Sequence, TypeVar

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError, DataError

T = TypeVar("T")
I = TypeVar("I")


#: period units of the configuration's ``predict.freq`` (lifetimes' ``freq``): day, ISO week, month;
#: :func:`btyd_summary` also takes ``"h"`` (hours), see ``features.btyd.BTYD_FREQS``
FREQS = ("D", "W", "M")

#: length in days of the two adjacent windows compared by ``spend_trend``
TREND_WINDOW = 90



# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
#: money sums are rounded to this many decimals: far below a cent, far above float summation noise
MONEY_DECIMALS = 6


def rounded_money(e: pl.Expr) -> pl.Expr:
    """A money sum rounded to ``MONEY_DECIMALS`` with ``-0.0`` made ``+0.0``: a net-zero sum's
    float residue (``-1e-15`` or ``+1e-15``, by summation order) must not leave a sign behind.

    >>> pl.select(rounded_money(pl.lit(-1e-15))).item(), pl.select(rounded_money(pl.lit(0.1) + pl.lit(0.2))).item()
    (0.0, 0.3)
    """
    r = e.round(MONEY_DECIMALS)
    return pl.when(r == 0.0).then(0.0).otherwise(r)  # (``r + 0.0`` is not reliably kept by polars)


def sort_by_text(frame: pl.DataFrame, col: str) -> pl.DataFrame:
    """``frame.sort(col)`` for a text column, about 5x faster for short ASCII ids: ids of up to 16
    bytes are compared as big-endian 128-bit integers of their zero-padded bytes, which orders them
    exactly as the text sort does (longer or non-ASCII ids use the text sort).

    >>> sort_by_text(pl.DataFrame({"id": ["b", "ab", "a", "B"]}), "id")["id"].to_list()
    ['B', 'a', 'ab', 'b']
    """
    s = frame[col]
    if s.dtype != pl.String or frame.height < 2:
        return frame.sort(col)
    n_bytes = s.str.len_bytes()
    if n_bytes.max() > 16 or not (n_bytes == s.str.len_chars()).all() or s.str.contains("\x00", literal=True).any():
        return frame.sort(col)
    key = pl.col(col).str.pad_end(16, "\x00").cast(pl.Binary).bin.reinterpret(dtype=pl.UInt128, endianness="big")
    return frame.sort(key, nulls_last=False)


def as_lazy(transactions: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    if isinstance(transactions, pl.DataFrame):
        return transactions.lazy()
    if isinstance(transactions, pl.LazyFrame):
        return transactions
    raise DataError(
        f"transactions: expected a polars DataFrame or LazyFrame, got {type(transactions).__name__}. "
        "Fix: read the log with segmentation_lib.transactions.read_transactions or pl.scan_parquet."
    )


def require_columns(lf: pl.LazyFrame, columns: Sequence[str], where: str) -> dict[str, pl.DataType]:
    schema = dict(lf.collect_schema())
    missing = [c for c in columns if c not in schema]
    if missing:
        raise DataError(
            f"{where}: column(s) {missing} not found in the transaction frame (it has {list(schema)}). "
            "Fix: map your columns to the canonical names (customer_id, timestamp, amount) with "
            "data.columns in the configuration or the column arguments."
        )
    return schema


def require_numeric(schema: dict[str, pl.DataType], col: str, where: str) -> None:
    """A clear error when the money column is not numeric (e.g. text read from a CSV by hand)."""
    if not schema[col].is_numeric():
        raise DataError(
            f"{where}: column '{col}' has dtype {schema[col]}, not a number. Fix: read the log with "
            "segmentation_lib.transactions.read_transactions (it parses and checks amounts), or cast it "
            f"first, e.g. pl.col('{col}').str.replace_all(',', '').cast(pl.Float64)."
        )


def to_utc(value: str | dt.date | dt.datetime, name: str) -> dt.datetime:
    """Parse ``as_of`` / ``observation_end`` into an aware UTC datetime (dates mean midnight UTC)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(
                f"{name}={value!r} is not a date. Fix: give it as 'YYYY-MM-DD' or an ISO-8601 datetime."
            ) from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    raise ConfigError(f"{name}={value!r} is not a date. Fix: give it as 'YYYY-MM-DD' or a datetime.")


def ts_expr(col: str, dtype: pl.DataType) -> pl.Expr:
    """The timestamp column as UTC ``Datetime('us', 'UTC')`` (naive values are taken as UTC)."""
    e = pl.col(col)
    if dtype == pl.Date:
        e = e.cast(pl.Datetime("us"))
    elif not isinstance(dtype, pl.Datetime):
        raise DataError(
            f"column '{col}' has dtype {dtype}, not a datetime. Fix: parse it with read_transactions "
            "(data.date_format) before computing features."
        )
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return e.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    return e.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def period_index(ts: pl.Expr, freq: str = "D") -> pl.Expr:
    """Integer index of the period containing ``ts`` (UTC): days since 1970-01-01 (``"D"``),
    Monday-based weeks (``"W"``, as pandas' ``W-SUN`` periods used by lifetimes), months (``"M"``)
    or hours since the epoch (``"h"``).

    >>> import polars as pl, datetime as dt
    >>> pl.select(period_index(pl.lit(dt.datetime(1970, 1, 5)), "W")).item()  # a Monday
    1
    """
    if freq == "D":
        return ts.dt.date().cast(pl.Int32)
    if freq == "h":
        return ts.dt.epoch("us") // 3_600_000_000
    if freq == "W":
        return (ts.dt.date().cast(pl.Int32) + 3) // 7
    if freq == "M":
        return ts.dt.year().cast(pl.Int32) * 12 + ts.dt.month().cast(pl.Int32) - 1
    raise ConfigError(f"btyd_summary: freq={freq!r} is not supported. Fix: use one of {list(FREQS)}.")


def period_of(moment: dt.datetime, freq: str) -> int:
    return pl.select(period_index(pl.lit(moment.replace(tzinfo=None)), freq)).item()


# --------------------------------------------------------------------------------------------
# behavioural features
# --------------------------------------------------------------------------------------------
#: bits for a day in a packed sort key: day offsets before ``as_of`` up to 2**20 - 1 (2,870 years)
DAY_BITS = 20


def order_key(columns: Collection[str], timestamp: pl.Expr | None = None) -> pl.Expr:
    """The key of an order, unique across customers: ``(customer_id, order_id)``, or
    ``(customer_id, timestamp)`` when no ``order_id`` is mapped (one order per customer and moment).

    The one definition of an order in the kit: the feature table (orders per customer) and the
    exploration page (orders in total and per month) both count distinct values of this key, so
    two customers buying at the same second are two orders everywhere. ``timestamp`` replaces
    ``pl.col("timestamp")`` where the caller has already converted it to UTC. A row without an
    order id has a null key (it is no order; the feature table's fast path then falls back).

    >>> import datetime as dt
    >>> t = dt.datetime(2024, 1, 1, 12)
    >>> tx = pl.DataFrame({"customer_id": ["a", "b", "b"], "timestamp": [t, t, t]})
    >>> tx.select(order_key(tx.columns).n_unique()).item()
    2
    """
    ts = pl.col("timestamp") if timestamp is None else timestamp
    part = pl.col("order_id") if "order_id" in columns else ts.dt.epoch("us")  # text or integer ids
    return pl.when(part.is_not_null()).then(pl.struct(pl.col("customer_id"), part.alias("order")))



# --------------------------------------------------------------------------------------------
# numpy passes in threads (the sorted paths): numpy releases the GIL inside its loops
# --------------------------------------------------------------------------------------------
#: a piece of a threaded numpy pass has at least this many rows (smaller logs run in one piece)
MIN_ROWS_PER_THREAD = 1_000_000

#: threads of the numpy passes; None: polars' thread-pool size (tests set it to force several pieces)
THREADS: int | None = None


def n_threads(n_rows: int) -> int:
    """Threads for a numpy pass over ``n_rows`` rows: polars' thread-pool size (``POLARS_MAX_THREADS``
    sets both), at most one per ``MIN_ROWS_PER_THREAD`` rows and at least 1.

    >>> n_threads(10)
    1
    """
    threads = pl.thread_pool_size() if THREADS is None else THREADS
    return max(1, min(threads, n_rows // max(MIN_ROWS_PER_THREAD, 1)))


def row_pieces(n_rows: int, cuts: Sequence[int] | None = None) -> list[slice]:
    """Slices covering ``0 .. n_rows`` in order: one per thread of :func:`n_threads`, or split at
    ``cuts`` (sorted positions, e.g. where a customer starts, so no customer spans two pieces).

    >>> row_pieces(10), row_pieces(10, [4, 4, 0])
    ([slice(0, 10, None)], [slice(0, 4, None), slice(4, 10, None)])
    """
    if cuts is None:
        k = n_threads(n_rows)
        cuts = [i * n_rows // k for i in range(1, k)]
    bounds = [0] + sorted({int(x) for x in cuts if 0 < x < n_rows}) + [n_rows]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def run_starts_near(sorted_keys: np.ndarray, shift: int) -> list[int]:
    """Cut positions for :func:`row_pieces`: near each ``i / k`` of the rows (``k`` =
    :func:`n_threads`), the first row of the run of equal ``key >> shift`` (the customer part of a
    sorted packed key) holding that row, so pieces split the rows between customers.

    >>> run_starts_near(np.array([0, 1, 2, 3], dtype=np.uint64), 1)
    []
    """
    n = sorted_keys.size
    k = n_threads(n)
    shift_u = np.uint64(shift)
    cuts = []
    for i in range(1, k):
        run = (sorted_keys[i * n // k] >> shift_u) << shift_u  # the smallest key of that customer
        cuts.append(int(np.searchsorted(sorted_keys, run, side="left")))
    return cuts


def starts_near(starts: np.ndarray, n_rows: int) -> list[int]:
    """Cut positions for :func:`row_pieces` from where each customer starts (``starts``, sorted): near
    each ``i / k`` of the rows (``k`` = :func:`n_threads`), the first customer start at or after it.

    >>> starts_near(np.array([0, 3, 5]), 10)
    []
    """
    k = n_threads(n_rows)
    at = np.searchsorted(starts, [i * n_rows // k for i in range(1, k)])
    return starts[np.minimum(at, starts.size - 1)].tolist()


def in_threads(fn: Callable[[I], T], pieces: Sequence[I], trim: bool = False) -> list[T]:
    """``[fn(piece) for piece in pieces]`` (slices of rows, or piece numbers), in threads when there
    are several (results in the pieces' order, so the outcome does not depend on which thread
    finishes first). ``trim``: then give the memory the threads freed back to the system (the last
    threaded pass of a step: trimming between passes would only make the next one fault it in again).

    >>> in_threads(lambda s: s.stop - s.start, row_pieces(10))
    [10]
    """
    if len(pieces) <= 1:
        return [fn(p) for p in pieces]
    with ThreadPoolExecutor(max_workers=len(pieces)) as pool:
        out = list(pool.map(fn, pieces))
    if trim:
        _return_freed_memory()
    return out


def _return_freed_memory() -> None:
    """Give the memory the threads freed back to the system (glibc keeps it in per-thread arenas,
    which added ~160 MB to a report page's peak); a no-op where ``malloc_trim`` is not available."""
    global _MALLOC_TRIM
    if _MALLOC_TRIM is None:
        try:
            _MALLOC_TRIM = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
        except (OSError, AttributeError, TypeError):
            _MALLOC_TRIM = False
    if _MALLOC_TRIM:
        _MALLOC_TRIM(0)


_MALLOC_TRIM = None


def take_in_threads(values: np.ndarray, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``values[index]`` (into ``out`` when given), the gather split over threads.

    >>> take_in_threads(np.array([5, 6, 7]), np.array([2, 0])).tolist()
    [7, 5]
    """
    if out is None:
        out = np.empty(index.size, dtype=values.dtype)

    def take(s: slice) -> None:
        np.take(values, index[s], out=out[s], mode="clip")  # (valid indices; "clip" writes straight into out)

    in_threads(take, row_pieces(index.size))
    return out
