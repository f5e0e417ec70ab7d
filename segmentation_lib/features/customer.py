"""The customer feature table: one row per customer for RFM, rules and clustering.

``days_since_last`` is the *marketing* sense of recency; every column is documented in
``docs/features.md``. Two paths give the same table: sorted integer keys (fast) and a grouped
definition (general).

>>> import polars as pl, datetime as dt
>>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"],
...     "timestamp": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 2)],
...     "amount": [10.0, 5.0, 7.0]}).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
>>> customer_features(tx, "2024-01-10")["n_orders"].to_list()
[2, 1]
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.common import (DAY_BITS, TREND_WINDOW, as_lazy, in_threads, order_key, rounded_money,
                                              require_columns, require_numeric, row_pieces, sort_by_text, starts_near,
                                              take_in_threads, to_utc, ts_expr)

#: key the sort-heavy passes by a hash of the customer id (falls back to the text on a collision)
HASH_KEYS = True

#: use the packed path (:func:`_packed_tables`) in the sorted method; False keeps the UInt128 key sorts
PACKED = True

#: at most this many bits of a text id's hash key a customer in the packed sort (tests lower it to
#: make customers share key bits, which the packed path resolves with the whole hash)
HASH_KEY_BITS = 64



#: bits of an order id's 64-bit hash kept in a packed key (two orders of one customer would need equal
#: 44-bit hashes to merge: about 1 chance in 10**11 per customer with 50 orders)
_ORDER_BITS = 64 - DAY_BITS


#: up to this many distinct products, (customer, product) pairs are packed into 64 bits
_MAX_PACKED_PRODUCTS = 1 << DAY_BITS


def _product_codes(e: pl.Expr, dtype: pl.DataType = pl.String) -> pl.Expr:
    """Dense integer codes of a text column, from a private categorical (freed with the result);
    a 64-bit hash where polars has no private categoricals (then the wide product key is used).
    Integer product ids are their own codes (Int64 reinterpreted as UInt64: one code per id).

    >>> pl.select(_product_codes(pl.lit(-1, dtype=pl.Int64), pl.Int64)).item() == 2**64 - 1
    True
    """
    if dtype.is_integer():
        return e if dtype == pl.UInt64 else e.cast(pl.Int64).reinterpret(signed=False)
    try:
        return e.cast(pl.Categorical(pl.Categories.random())).to_physical()
    except (AttributeError, TypeError):  # pragma: no cover - polars without pl.Categories
        return pl.when(e.is_not_null()).then(e.hash(seed=3))


def _u128(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt128)


def _align(keys: pl.Series, table: pl.DataFrame, key: str) -> pl.DataFrame:
    """``table``'s columns (but ``key``) placed on the rows of the sorted, unique ``keys``: a left join
    of sorted tables by position. ``table`` is sorted by ``key`` and its keys are among ``keys``;
    rows without a match get 0 in integer columns and null elsewhere (counts of customers with no
    purchase are 0).

    >>> t = pl.DataFrame({"k": [2, 5], "n": [7, 8], "x": [0.5, None]})
    >>> _align(pl.Series([1, 2, 3, 5]), t, "k").rows()
    [(0, None), (7, 0.5), (0, None), (8, None)]
    """
    values = table.drop(key)
    if table.height == keys.len() and table[key].equals(keys, check_names=False):
        return values
    pos = keys.search_sorted(table[key])
    out = []
    for name, s in values.to_dict().items():
        base = pl.zeros(keys.len(), dtype=s.dtype, eager=True) if s.dtype.is_integer() else pl.repeat(None, keys.len(), dtype=s.dtype, eager=True)
        out.append(base.scatter(pos, s).alias(name))
    return pl.DataFrame(out)


def _run_sums(values: pl.DataFrame, run_lengths: pl.Series) -> pl.DataFrame:
    """Column sums over consecutive runs of rows with the given lengths: cumulative sums read at
    each run's last row, minus the previous run's (no group-by; the runs cover all rows).

    >>> _run_sums(pl.DataFrame({"v": [1, 2, 3, 4, 5, 6]}), pl.Series([2, 1, 3])).rows()
    [(3,), (3,), (15,)]
    """
    ends = run_lengths.cast(pl.Int64).cum_sum() - 1
    at_ends = values.select(pl.all().cum_sum().gather(ends))
    return at_ends.select(pl.all() - pl.all().shift(1, fill_value=0))


def _customer_key(ids: pl.Series):
    """The UInt64 customer key of :func:`_sorted_tables` as a function of an id expression: for
    integer ids spanning fewer than 2**44 values, (id - lowest) * 2**20, exact and in id order (the
    customer part of a customer | day key is the id itself); otherwise a 64-bit hash of the id.

    >>> pl.select(_customer_key(pl.Series([7, 9]))(pl.lit(9))).item() == 2 << DAY_BITS
    True
    """
    if ids.dtype.is_integer() and ids.len():
        lo, hi = ids.min(), ids.max()
        if lo >= -(1 << 62) and hi < (1 << 62) and hi - lo < (1 << (64 - DAY_BITS)):
            return lambda e: (e - lo).cast(pl.UInt64) * (1 << DAY_BITS)
    return lambda e: e.hash(seed=0)


def _sorted_tables(
    base: pl.LazyFrame, as_of_day: int, windows: Sequence[int], tw: int, has_product: bool,
    product_dtype: pl.DataType = pl.String,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame | None] | None:
    """Customer tables of :func:`customer_features` from sorted packed keys.

    One streaming pass over the rows gives the per-customer sums (text key) and, for purchase rows,
    64-bit hashes of customer, order and product plus the day. Orders and purchase days then come
    from sorting packed integers (customer | order | day as one UInt128, customer | day as UInt64),
    where equal neighbours are duplicates and a change of customer bits starts a new customer: no
    hash group-by over ~10 million orders. Valid when ``as_of`` is a UTC midnight (window edges are
    then day edges) and every purchase order lies within one day; returns ``None`` otherwise, or when
    a purchase row has no order id or two customers share a key (caller falls back).
    """
    c = pl.col
    ts, amt = c("_ts"), c("_amt")
    buy = amt > 0
    as_of_lit = pl.lit(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=as_of_day))
    as_of_lit = as_of_lit.dt.cast_time_unit("us")
    cutoff = lambda days: as_of_lit - pl.duration(days=days)  # noqa: E731
    inside = lambda lo, hi=None: (ts >= cutoff(lo)) & (ts < cutoff(hi) if hi else True)  # noqa: E731
    sums = {
        "total_spend": amt,
        "gross_spend": pl.when(buy).then(amt).otherwise(0.0),
        "returned_spend": pl.when(amt < 0).then(-amt).otherwise(0.0),
        "n_returns": (amt < 0).cast(pl.Int64),
        **{f"spend_{w}d": pl.when(inside(w)).then(amt).otherwise(0.0) for w in windows},
        **({} if tw in windows else {f"spend_{tw}d": pl.when(inside(tw)).then(amt).otherwise(0.0)}),
        f"spend_prev_{tw}d": pl.when(inside(2 * tw, tw)).then(amt).otherwise(0.0),
    }
    rows_plan = (
        base.select("customer_id", pl.when(buy).then(ts).alias("_bought"), *(e.alias(n) for n, e in sums.items()))
        .group_by("customer_id")
        .agg(c("_bought").min().alias("first_purchase"), c("_bought").max().alias("last_purchase"), c(list(sums)).sum())
    )
    day0 = as_of_day - (1 << DAY_BITS) + 1  # day offsets of rows before as_of: 0 .. 2**20 - 1
    integer_ids = base.collect_schema()["customer_id"].is_integer()
    keys_plan = base.filter(buy).select(
        # integer ids are keyed by themselves (below, once their range is known); text by a hash
        (c("customer_id") if integer_ids else c("customer_id").hash(seed=0)).alias("_k"),
        (ts.dt.date().cast(pl.Int32) - day0).alias("_d"),
        pl.when(c("_order").is_not_null()).then(c("_order").hash(seed=2)).alias("_o"),
        # products as dense codes of a private categorical (a few thousand distinct values typically)
        *([_product_codes(c("_product"), product_dtype).alias("_p")] if has_product else []),
    )
    rows, keys = pl.collect_all([rows_plan, keys_plan], engine="streaming")
    if keys["_o"].null_count() or (keys.height and keys["_d"].min() < 0):
        return None
    key = _customer_key(rows["customer_id"])
    if integer_ids:
        keys = keys.with_columns(key(c("_k")))
    rows = rows.with_columns(
        *(rounded_money(c(n)).alias(n) for n in sums if n != "n_returns"),
        key(c("customer_id")).alias("_k"),
    )
    day_mask = (1 << DAY_BITS) - 1
    kh = rows["_k"] // (1 << DAY_BITS)  # customer bits of the UInt64 customer | day key
    if kh.n_unique() != rows.height:  # (unique 44-bit prefixes imply unique 64-bit hashes)
        return None  # two customers share (a prefix of) a hash: the grouped path keys by text
    rows = rows.with_columns(kh.alias("_kh"))

    products = None
    if has_product:  # distinct (customer, product) pairs, sorted; runs of one customer counted
        p = keys.select("_k", "_p").filter(c("_p").is_not_null())
        if p.height and p["_p"].max() < _MAX_PACKED_PRODUCTS:  # customer (44) | product code (20)
            z = p.select((c("_k") // (1 << DAY_BITS) * (1 << DAY_BITS) + c("_p").cast(pl.UInt64)).alias("z"))
            customer_bits = c("z") // (1 << DAY_BITS)
        else:  # over a million distinct products: customer (64) | product code (64)
            z = p.select((c("_k").cast(pl.UInt128) * _u128(1 << 64) + c("_p").cast(pl.UInt128)).alias("z"))
            customer_bits = (c("z") // _u128(1 << 64)).cast(pl.UInt64) // (1 << DAY_BITS)
        del p
        z = z["z"].sort().to_frame()
        products = (
            z.filter((c("z") != c("z").shift()).fill_null(True))
            .select(customer_bits.alias("_kh"))["_kh"]
            .rle().struct.unnest()
            .select(c("value").alias("_kh"), c("len").cast(pl.Int64).alias("n_products"))
        )
        del z
        keys = keys.drop("_p")  # memory: the product codes are done with
    # orders: customer (64) | order (44) | day (20) as one UInt128, sorted: equal customer and order
    # bits on neighbouring rows are one order, and its first row holds its (earliest) day
    x = keys.select(
        (c("_k").cast(pl.UInt128) * _u128(1 << 64)
         + (c("_o") // (1 << DAY_BITS)).cast(pl.UInt128) * _u128(1 << DAY_BITS)
         + c("_d").cast(pl.UInt128)).alias("x")
    )["x"].sort()
    del keys
    x = x.to_frame().select(
        (c("x") // _u128(1 << 64)).cast(pl.UInt64).alias("k"), (c("x") % _u128(1 << 64)).cast(pl.UInt64).alias("lo")
    )
    od, d = c("lo") // (1 << DAY_BITS), c("lo") & day_mask
    new_order = ((c("k") != c("k").shift()) | (od != od.shift())).fill_null(True)
    x = x.select(
        new_order.alias("new_order"),
        (~new_order & (d != d.shift())).alias("multi_day"),
        # purchase days: customer bits (44) | day (20), one per order
        (c("k") // (1 << DAY_BITS) * (1 << DAY_BITS) + d).alias("y"),
    )
    if x["multi_day"].any():
        return None  # an order with purchase rows on two days: its time is not its rows' times
    y = x.filter(c("new_order"))["y"].sort()
    del x
    # per customer (runs of equal customer bits): orders = run length; purchase days, gaps and
    # orders per window = sums over the run of per-row values (cumulative sums read at run ends)
    runs = (y // (1 << DAY_BITS)).rle().struct.unnest()
    lens = runs["len"].cast(pl.Int64)
    ends = lens.cum_sum() - 1
    # the gaps of a customer add up to its last purchase day minus its first
    gap_sum = ((y.gather(ends) & day_mask).cast(pl.Int64) - (y.gather(ends - lens + 1) & day_mask).cast(pl.Int64))
    prev = c("y").shift()
    new_day = (c("y") != prev).fill_null(True)
    same_customer = ((c("y") ^ prev) <= day_mask).fill_null(False)
    # the step to the previous key is used only within one customer, where it is below 2**DAY_BITS:
    # masking keeps it exact there and keeps the (unused) steps between customers castable to Int64
    per_row = y.to_frame().with_columns(((c("y") - prev) & day_mask).cast(pl.Int64).alias("_step")).select(
        new_day.cast(pl.Int32).alias("n_purchase_days"),  # (Int32 sums: fewer bytes to add up)
        pl.when(same_customer & new_day).then(c("_step") * c("_step")).otherwise(0).alias("_gap_sq"),
        *[((c("y") & day_mask) >= (1 << DAY_BITS) - 1 - w).cast(pl.Int32).alias(f"orders_{w}d") for w in windows],
    )
    del y
    counts = [c("n_purchase_days"), *[c(f"orders_{w}d") for w in windows]]
    per_customer = pl.concat(
        [runs.select(c("value").alias("_kh"), c("len").cast(pl.Int64).alias("n_orders")),
         _run_sums(per_row, runs["len"]).with_columns(pl.Series("_gap_sum", gap_sum), *(e.cast(pl.Int64) for e in counts))],
        how="horizontal",
    ).with_columns((c("n_purchase_days") - 1).alias("_m")).with_columns(
        # population std of the m = days - 1 gaps from exact integer sums: sqrt(m*S2 - S1^2) / m
        pl.when(c("_m") > 0)
        .then((c("_m") * c("_gap_sq") - c("_gap_sum") * c("_gap_sum")).cast(pl.Float64).sqrt() / c("_m"))
        .alias("std_days_between")
    ).drop("_gap_sum", "_gap_sq", "_m")
    return rows, per_customer, products



# --------------------------------------------------------------------------------------------
# packed path (issue 15): one in-place sort of customer | day | row numbers, segmented sums
# --------------------------------------------------------------------------------------------
_US_PER_DAY = 86_400_000_000


def _changes(a: np.ndarray) -> np.ndarray:
    """``flags[i]``: ``a[i] != a[i - 1]`` (row 0 always True)."""
    flags = np.empty(a.size, dtype=bool)
    if a.size:
        flags[0] = True
        np.not_equal(a[1:], a[:-1], out=flags[1:])
    return flags


def _arange_into(buf: np.ndarray) -> np.ndarray:
    """``buf`` filled with 0, 1, 2, ... in place (no new array: allocating is what costs here).

    >>> _arange_into(np.empty(4, dtype=np.uint64)).tolist()
    [0, 1, 2, 3]
    """
    buf.fill(1)
    if buf.size:
        buf[0] = 0
    return np.cumsum(buf, out=buf)


def _sorted_rows(ids: pl.Series, ts: np.ndarray, time_ordered: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(perm, starts, spare)``: the row permutation that sorts the rows by customer, then day, then
    row number, the positions (in that order) where a customer starts, and a free UInt64 buffer of
    one value per row for the caller to reuse. From one UInt64 per row (customer | day | row number,
    sorted as values; the day is left out when ``ts``, the rows' epoch microseconds, is already in
    time order). The customer part is the id minus the lowest for integer ids, else the top bits of
    a 64-bit hash; customers whose top bits clash are told apart by the whole hash (their few rows
    sorted again), and a second, independent hash must be constant within each customer. ``None``
    when the parts need more than 64 bits or two ids share a 64-bit hash (the caller falls back)."""
    n = ids.len()
    bits_r = max((n - 1).bit_length(), 1)
    part = np.empty(n, dtype=np.uint64)
    bits_d = d_lo = 0
    if not time_ordered:
        day = np.floor_divide(ts, _US_PER_DAY, out=part.view(np.int64))
        d_lo = int(day.min())
        bits_d = int(day.max() - d_lo).bit_length()
    exact = ids.dtype.is_integer() and int(ids.min()) >= -(1 << 62) and int(ids.max()) < (1 << 62)
    if exact:
        lo = int(ids.min())
        bits_c = int(ids.max() - lo).bit_length()
        if bits_c + bits_d + bits_r > 64:
            return None
        key = ids.to_numpy()
        key = key.astype(np.uint64) if key.dtype != np.int64 or not key.flags.writeable else key.view(np.uint64)
        key -= np.uint64(lo % (1 << 64))
    else:
        bits_c = min(64 - bits_d - bits_r, HASH_KEY_BITS)
        if bits_c < 8:
            return None
        h = ids.hash(seed=0).to_numpy()
        key = h >> np.uint64(64 - bits_c)
    shift_c = np.uint64(bits_d + bits_r)
    key <<= shift_c
    if bits_d:
        part -= np.uint64(d_lo % (1 << 64))
        part <<= np.uint64(bits_r)
        key |= part
    key |= _arange_into(part)
    key.sort()
    perm = np.bitwise_and(key, np.uint64((1 << bits_r) - 1), out=part).view(np.int64)
    if exact:
        key >>= shift_c
        starts = np.flatnonzero(_changes(key))
        return perm, starts, key
    hs = np.take(h, perm)
    del h
    top = key >> shift_c
    new_top = _changes(top)
    clash = _changes(hs) & ~new_top  # the whole hash changes inside a run of equal top bits
    if clash.any():  # sort the rows of those runs by the whole hash (they stay in place as a block)
        st = np.flatnonzero(new_top)
        bad = np.unique(np.searchsorted(st, np.flatnonzero(clash), side="right") - 1)
        lo_, hi_ = st[bad], np.append(st[1:], n)[bad]
        lens = hi_ - lo_  # the rows of the bad runs, run after run: lo_[j], lo_[j] + 1, ..., hi_[j] - 1
        idx = np.arange(int(lens.sum())) + np.repeat(lo_ - (np.cumsum(lens) - lens), lens)
        o = np.lexsort((key[idx], hs[idx]))
        perm[idx] = perm[idx][o]
        hs[idx] = hs[idx][o]
    del top, new_top, clash
    new_customer = _changes(hs)
    starts = np.flatnonzero(new_customer)
    h2 = np.take(ids.hash(seed=1).to_numpy(), perm, out=hs, mode="clip")
    if (_changes(h2) & ~new_customer).any():
        return None  # two ids share a 64-bit hash: the grouped path keys by text
    del h2, hs
    return perm, starts, key


def _codes(s: pl.Series, out: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Dense-enough UInt64 codes of a product column, written into ``out`` (a UInt64 buffer of its
    length), and their bits: integer ids minus the lowest, text as codes of a private categorical
    (see :func:`_product_codes`); nulls get any code (the caller masks them); None if unavailable.

    >>> _codes(pl.Series([5, None, 7]), np.empty(3, dtype=np.uint64))[0][[0, 2]].tolist()
    [0, 2]
    """
    if s.len() == s.null_count():
        out.fill(0)
        return out, 1
    if s.dtype.is_integer():
        lo, hi = int(s.min()), int(s.max())
        np.subtract(s.fill_null(lo).to_numpy(), lo, out=out.view(np.int64), casting="unsafe")
        return out, max((hi - lo).bit_length(), 1)
    try:
        codes = s.cast(pl.Categorical(pl.Categories.random())).to_physical().fill_null(0).to_numpy()
    except (AttributeError, TypeError):  # pragma: no cover - polars without pl.Categories
        return None
    np.copyto(out, codes, casting="unsafe")
    return out, max(int(codes.max()).bit_length(), 1) if codes.size else 1


def _segment_sums(values: np.ndarray, starts: np.ndarray, dtype: type | None = None) -> np.ndarray:
    """Sums of ``values`` over the runs starting at ``starts`` (sequential, so the same every run).

    >>> _segment_sums(np.array([1, 2, 3, 4]), np.array([0, 1])).tolist()
    [1, 9]
    """
    if starts.size == 0:
        return np.zeros(0, dtype=dtype or values.dtype)
    return np.add.reduceat(values, starts, dtype=dtype)


def _segment_counts(flags: np.ndarray, starts: np.ndarray, buf: np.ndarray) -> np.ndarray:
    """True ``flags`` per run (runs start at ``starts`` and cover all rows), from one cumulative sum
    written into ``buf`` (an Int64 buffer of the rows' length, reused).

    >>> _segment_counts(np.array([1, 0, 1, 1], dtype=bool), np.array([0, 2]), np.empty(4, dtype=np.int64)).tolist()
    [1, 2]
    """
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    cs = np.cumsum(flags, out=buf)
    ends = np.append(starts[1:], flags.size) - 1
    return cs[ends] - cs[starts] + flags[starts]


def _rising(orders: pl.Series, buy: np.ndarray) -> bool:
    """Whether the purchase rows' integer order ids rise in row order (a warehouse export numbering
    its orders): then every purchase row is its own order and orders need no sort.

    >>> _rising(pl.Series([7, None, 9]), np.array([True, False, True])), _rising(pl.Series([3, 3]), np.array([True, True]))
    (True, False)
    """
    if not orders.dtype.is_integer():
        return False
    ob = orders.filter(pl.Series(buy)).to_numpy()
    return ob.size < 2 or bool(np.all(ob[1:] > ob[:-1]))


#: (``np.take(..., out=buf)`` below passes ``mode="clip"``: the indices are valid, and numpy's default
#: ``mode="raise"`` would first gather into a new array and then copy it into ``buf``)


def _writable(a: np.ndarray) -> np.ndarray:
    """``a`` itself when it may be written to (a buffer to reuse), else a copy (a view of polars memory)."""
    return a if a.flags.writeable else a.copy()


class _OrderClash(Exception):
    """Two orders of one customer share their hashed key bits in :func:`_packed_tables` (the caller
    then takes the grouped path, which keys orders by their ids)."""


def _top_bits_clash(h: np.ndarray, new_day: np.ndarray, drop: int) -> bool:
    """Whether two purchase rows of one customer and day (``h``: their 64-bit order hashes in
    customer | day order; ``new_day``: True where a customer's day starts) have different hashes
    with the same top ``64 - drop`` bits, i.e. would be merged into one order by a key holding only
    those bits. Only days with 2+ purchase rows can clash: days of two rows compare their pair,
    days of more rows are sorted by day, then hash (few rows: no sort of all rows).

    >>> nd = np.array([True, False, True, False, False])  # a day of two rows, a day of three
    >>> h1, h2 = (np.array(v, dtype=np.uint64) for v in ([16, 17, 33, 48, 64], [16, 32, 33, 48, 32]))
    >>> [_top_bits_clash(h, nd, drop) for h in (h1, h2) for drop in (0, 1)]
    [False, True, False, True]
    """
    several = ~new_day  # rows continuing a day, and the rows they continue
    several[:-1] |= ~new_day[1:]
    idx = np.flatnonzero(several)
    del several
    if idx.size < 2:
        return False
    hs = h[idx]
    st = np.flatnonzero(new_day[idx])  # each day's first row among them (each day has 2+ rows)
    size = np.diff(np.append(st, idx.size))
    drop_ = np.uint64(drop)

    def clash(a: np.ndarray, b: np.ndarray) -> bool:
        return bool(((a != b) & ((a >> drop_) == (b >> drop_))).any())

    two = st[size == 2]
    if clash(hs[two], hs[two + 1]):
        return True
    big = size > 2
    if not big.any():
        return False
    lens, firsts = size[big], st[big]
    offsets = np.cumsum(lens) - lens
    rows = np.arange(int(lens.sum())) + np.repeat(firsts - offsets, lens)  # the rows of those days
    day = np.repeat(np.arange(lens.size), lens)
    hb = hs[rows]
    hb = hb[np.lexsort((hb, day))]
    same_day = day[1:] == day[:-1]  # (the day order stays: the sort is by day first)
    return bool((same_day & (hb[1:] != hb[:-1]) & ((hb[1:] >> drop_) == (hb[:-1] >> drop_))).any())


def _order_keys(
    z: np.ndarray, drop: int, run_b: np.ndarray, day_b: np.ndarray, d_lo: int, bits_run: int, bits_d: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | tuple[None, None, None]:
    """``(order_run, order_day, order_starts)``: one entry per order (its customer run number and its
    day) in customer | order | day order, and where each customer's orders start, from one sort of
    run (``bits_run``) | order value >> ``drop`` | day - ``d_lo`` (``bits_d``), packed in place in
    ``z`` (one UInt64 order value per purchase row, in customer | day order, with run numbers
    ``run_b`` and days ``day_b``; after the shift the value fits in the bits the run and the day
    leave). ``(None,) * 3`` when an order has purchase rows on two days.

    >>> r, d, st = _order_keys(np.array([5, 5, 9], dtype=np.uint64), 0, np.array([0, 0, 1]), np.array([3, 3, 4]),
    ...                        3, 1, 1)
    >>> r.tolist(), d.tolist(), st.tolist()
    ([0, 1], [3, 4], [0, 1])
    """
    if drop:
        z >>= np.uint64(drop)
    z <<= np.uint64(bits_d)
    z |= run_b.view(np.uint64) << np.uint64(64 - bits_run)
    z |= (day_b - d_lo).view(np.uint64)
    z.sort()
    new_order = _changes(z >> np.uint64(bits_d))
    if (~new_order & _changes(z)).any():
        return None, None, None
    zo = z[new_order]
    order_run = (zo >> np.uint64(64 - bits_run)).view(np.int64)
    order_day = (zo & np.uint64((1 << bits_d) - 1)).view(np.int64) + d_lo
    return order_run, order_day, np.flatnonzero(_changes(order_run))


def _packed_tables(
    box: list[pl.DataFrame], as_of_day: int, windows: Sequence[int], tw: int, has_product: bool,
    hashed_orders: bool = False,
) -> pl.DataFrame | None:
    """The pass columns of :func:`customer_features` (one row per customer, in customer order) from
    the collected rows ``customer_id, _ts, _amt, _order[, _product]`` in ``box`` (rows before
    ``as_of``, a UTC midnight; emptied here, so the rows are freed once read into arrays): one sort
    of packed row numbers (:func:`_sorted_rows`) puts each customer's rows together in day order;
    money sums are sums over those runs (sequential: the same table every run), purchase days and
    their gaps come from day changes, orders from the purchase rows themselves when every purchase
    row is its own order (checked), else from one sort of customer | order code | day, and products
    from one sort of customer | product code. Integer order ids are keyed exactly by their offset
    from the lowest id where it fits beside the customer and day bits; text ids (``_order`` then
    holds their 64-bit hash: ``hashed_orders``) and wider integer ids by the top bits of a 64-bit
    hash, checked exactly (:func:`_top_bits_clash`): two orders of one customer on one day whose
    hashes share those bits raise :class:`_OrderClash` (the caller then groups by the ids).
    ``None`` where it does not apply (an order spanning two days, a purchase row without an order id,
    keys over 64 bits): the caller reads the rows again. After the sort, the sorted rows are cut
    between customers into one piece per thread (:func:`~segmentation_lib.features.common.n_threads`)
    and each piece's customers are summarised in a thread (:func:`_packed_piece`); the pieces' tables
    follow each other in customer order, so the table is the same for any number of pieces. Page
    faults cost more than arithmetic on these arrays, so the few row-sized buffers are reused (each
    piece works in its slice of them).
    """
    df = box.pop()
    n = df.height
    if n == 0:
        return None
    # each column is read into an array when it is needed and dropped from the frame then (the peak
    # holds the frame's remaining columns and a few arrays, not both copies of every column)
    time_ordered = df["_ts"].is_sorted()
    ts = df["_ts"].dt.epoch("us").to_numpy()
    buy0 = (df["_amt"] > 0).fill_null(False).to_numpy()
    orders = df["_order"]
    if orders.null_count() != n - int(np.count_nonzero(buy0)):
        return None  # a purchase row without an order id
    one_per_row = not hashed_orders and _rising(orders, buy0)
    del buy0
    df = df.drop("_ts", "_order")
    # the widest day span of any piece's purchases (all rows' span bounds it)
    bits_d_all = max(int(ts.max() // _US_PER_DAY - ts.min() // _US_PER_DAY).bit_length(), 1)
    out = _sorted_rows(df["customer_id"], ts, time_ordered)
    if out is None:
        return None
    perm, starts, spare = out
    first_rows = np.take(perm, starts)  # (before the pieces reuse perm's buffer)
    amt = df["_amt"].fill_null(0.0).to_numpy()
    df = df.drop("_amt")
    amt_s = take_in_threads(amt, perm)
    tmp = _writable(amt)  # a free float buffer from here on
    del amt
    ts_s = take_in_threads(ts, perm, out=spare.view(np.int64))  # (the sort keys are done with)
    day_buf = _writable(ts)
    del ts, spare
    # what the pieces read of the rows in log order (row numbers from perm): order and product codes
    order_codes = order_hash = product = None
    if not one_per_row:
        # exact codes: integer order id minus the lowest, where it fits in the order bits of every piece
        codes = None if hashed_orders else _codes(orders, np.empty(n, dtype=np.uint64))
        if codes is not None and codes[1] <= 64 - max(int(starts.size - 1).bit_length(), 1) - bits_d_all:
            order_codes = codes[0]
        else:  # text ids, or codes too wide for the key: a 64-bit hash, its top bits checked in the piece
            order_hash = (orders.fill_null(0) if hashed_orders else orders.hash(seed=2)).to_numpy()
        del codes
    del orders
    if has_product:
        p = df["_product"]
        df = df.drop("_product")
        product_ok = p.is_not_null().to_numpy()
        codes = _codes(p, np.empty(n, dtype=np.uint64))
        del p
        if codes is None:
            return None
        product = (codes[0], codes[1], product_ok)
        del codes
    pieces = row_pieces(n, starts_near(starts, n))
    bounds = np.searchsorted(starts, [s.start for s in pieces] + [n])

    def piece(j: int) -> dict[str, np.ndarray] | None:
        s = pieces[j]
        return _packed_piece(
            starts[bounds[j]:bounds[j + 1]] - s.start, perm[s], amt_s[s], tmp[s], ts_s[s], day_buf[s],
            order_codes, order_hash, product, one_per_row, as_of_day, windows, tw)

    tables = in_threads(piece, range(len(pieces)), trim=True)
    del perm, amt_s, tmp, ts_s, day_buf, order_codes, order_hash, product
    if any(t is None for t in tables):
        return None
    cols = {key: np.concatenate([t[key] for t in tables]) if len(tables) > 1 else tables[0][key] for key in tables[0]}
    del tables
    ids = df["customer_id"].gather(pl.Series(first_rows))
    del df
    if ids.dtype.is_integer():
        ids = ids.set_sorted()
    c = pl.col
    utc = pl.Datetime("us", "UTC")
    first, last, has = cols.pop("_first"), cols.pop("_last"), cols.pop("_has")
    frame = pl.DataFrame({"customer_id": ids, "first_purchase": first, "last_purchase": last, "_has": has, **cols})
    money = [k for k in cols if "spend" in k]
    return frame.with_columns(
        *(pl.when(c("_has")).then(c(x).cast(utc)).alias(x) for x in ("first_purchase", "last_purchase")),
        *(rounded_money(c(k)).alias(k) for k in money),
        *(c(k).cast(pl.Int64) for k in cols if k not in money and k != "std_days_between"),
        c("std_days_between").fill_nan(None),
    ).drop("_has")


def _packed_piece(
    starts: np.ndarray, perm: np.ndarray, amt_s: np.ndarray, tmp: np.ndarray, ts_s: np.ndarray, day_buf: np.ndarray,
    order_codes: np.ndarray | None, order_hash: np.ndarray | None, product: tuple | None, one_per_row: bool,
    as_of_day: int, windows: Sequence[int], tw: int,
) -> dict[str, np.ndarray] | None:
    """The per-customer columns (and ``_first``, ``_last``, ``_has``) of :func:`_packed_tables` for one
    piece of the sorted rows (whole customers; ``starts``: where each starts in the piece): its
    slices of the row permutation, the amounts and times in sorted order, and two free buffers
    (``tmp`` Float64, ``day_buf`` Int64), all written to; the order codes or hashes and the product
    codes are the whole log's, in log order (read only). None / :class:`_OrderClash` as there."""
    n_cust = starts.size
    day_s = np.floor_divide(ts_s, _US_PER_DAY, out=day_buf)
    buy = amt_s > 0
    cols: dict[str, np.ndarray] = {"total_spend": _segment_sums(amt_s, starts)}
    np.multiply(amt_s, buy, out=tmp)
    cols["gross_spend"] = _segment_sums(tmp, starts)
    neg = amt_s < 0
    np.negative(amt_s, out=tmp)
    tmp *= neg
    cols["returned_spend"] = _segment_sums(tmp, starts)
    np.copyto(tmp, neg)
    cols["n_returns"] = _segment_sums(tmp, starts)  # (exact: counts far below 2**53)
    del neg

    def spend_between(lo: int, hi: int | None = None) -> np.ndarray:
        inside = day_s >= as_of_day - lo
        if hi is not None:
            inside &= day_s < as_of_day - hi
        np.multiply(amt_s, inside, out=tmp)
        return _segment_sums(tmp, starts)

    for w in windows:
        cols[f"spend_{w}d"] = spend_between(w)
    if tw not in windows:
        cols[f"spend_{tw}d"] = spend_between(tw)
    cols[f"spend_prev_{tw}d"] = spend_between(2 * tw, tw)
    # first and last purchase: the extremes of each customer's purchase times (others masked)
    not_buy = ~buy
    big = np.iinfo(np.int64).max
    ts_s[not_buy] = big
    cols["_first"] = np.minimum.reduceat(ts_s, starts)
    ts_s[not_buy] = -big
    cols["_last"] = np.maximum.reduceat(ts_s, starts)
    del not_buy
    # the purchase rows, in customer | day order, each with its customer's run number, written into
    # the buffers that are free now (rows of the log: day -> amt_s, run -> tmp, perm -> day_s)
    b = np.flatnonzero(buy)
    nb = b.size
    del buy
    day_b = np.take(day_s, b, out=amt_s.view(np.int64)[:nb], mode="clip")
    run = ts_s  # (the times are done with)
    run.fill(0)
    run[starts[1:]] = 1
    np.cumsum(run, out=run)
    run_b = np.take(run, b, out=tmp.view(np.int64)[:nb], mode="clip")
    perm_b = np.take(perm, b, out=day_s[:nb], mode="clip")
    del b
    spare_a, spare_b = run, perm.view(np.uint64)  # two free row-sized buffers from here on
    del ts_s, perm, amt_s, tmp
    new_cust = _changes(run_b)
    sb = np.flatnonzero(new_cust)  # each buyer's first purchase row (days in order)
    buyers = run_b[sb]
    has = np.zeros(n_cust, dtype=bool)
    has[buyers] = True
    cols["_has"] = has

    def per_buyer(values: np.ndarray) -> np.ndarray:
        full = np.zeros(n_cust, dtype=np.int64)
        if sb.size:
            full[buyers] = _segment_sums(values, sb)
        return full

    def per_buyer_count(flags: np.ndarray, buf: np.ndarray) -> np.ndarray:
        full = np.zeros(n_cust, dtype=np.int64)
        if sb.size:
            full[buyers] = _segment_counts(flags, sb, buf)
        return full

    new_day = new_cust | _changes(day_b)
    step = spare_a.view(np.int64)[:nb]
    if nb:
        step[0] = 0
        np.subtract(day_b[1:], day_b[:-1], out=step[1:])
    step *= new_day & ~new_cust  # a gap: a new day of the same customer
    step *= step
    gap_sq = per_buyer(step)
    n_days = per_buyer_count(new_day, step)
    gap_sum = np.zeros(n_cust, dtype=np.int64)
    if sb.size:
        gap_sum[buyers] = day_b[np.append(sb[1:], nb) - 1] - day_b[sb]
    # orders: the purchase rows themselves when each is its own order, else customer | order | day
    if one_per_row:
        order_day, order_run, order_starts = day_b, run_b, sb
    else:
        d_lo = int(day_b.min()) if nb else 0
        bits_d = max(int(day_b.max() - d_lo).bit_length(), 1) if nb else 1
        bits_run = max(int(n_cust - 1).bit_length(), 1)
        bits_o = 64 - bits_run - bits_d
        if order_codes is not None:  # (the caller checked that they fit)
            z = np.take(order_codes, perm_b, out=spare_b[:nb], mode="clip")
            drop = 0
        elif bits_o < 24:
            return None
        else:  # the top bits_o bits of a 64-bit hash, checked
            drop = 64 - bits_o
            z = np.take(order_hash, perm_b, out=spare_b[:nb], mode="clip")
            if _top_bits_clash(z, new_day, drop):
                raise _OrderClash
        order_run, order_day, order_starts = _order_keys(z, drop, run_b, day_b, d_lo, bits_run, bits_d)
        del z
        if order_run is None:
            return None  # an order with purchase rows on two days: its time is not its rows' times
    order_buyers = order_run[order_starts]
    cols["n_orders"] = np.zeros(n_cust, dtype=np.int64)
    cols["n_orders"][order_buyers] = np.diff(np.append(order_starts, order_run.size))
    count_buf = spare_a.view(np.int64)[:order_run.size]  # (the gap steps are done with)
    for w in windows:
        full = np.zeros(n_cust, dtype=np.int64)
        if order_starts.size:
            full[order_buyers] = _segment_counts(order_day >= as_of_day - w, order_starts, count_buf)
        cols[f"orders_{w}d"] = full
    del count_buf
    del order_run, order_day
    m = n_days - 1
    with np.errstate(invalid="ignore", divide="ignore"):  # population std of the m gaps from integer sums
        std = np.sqrt((m * gap_sq - gap_sum * gap_sum).astype(np.float64)) / m
    std[m <= 0] = np.nan
    cols["n_purchase_days"] = n_days
    cols["std_days_between"] = std
    if product is not None:  # distinct (customer, product) pairs: one sort of run | product code + 1 (0: none)
        product_code, bits_p, product_ok = product
        bits_run = max(int(n_cust - 1).bit_length(), 1)
        if bits_run + bits_p + 1 > 64:
            return None
        z = np.left_shift(run_b.view(np.uint64), np.uint64(bits_p + 1), out=spare_b[:nb])
        code = np.take(product_code, perm_b, out=spare_a.view(np.uint64)[:nb], mode="clip")
        code += np.uint64(1)
        code *= np.take(product_ok, perm_b)
        z |= code
        z.sort()
        new = _changes(z)
        new &= (z & np.uint64((1 << (bits_p + 1)) - 1)) != 0
        cols["n_products"] = per_buyer_count(new, code.view(np.int64))
    return cols


#: rows of the log per customer partition in :func:`customer_features` (memory bound: a partition's
#: columns are held in memory while its passes run; 4M rows keep a 10M-row log under ~1.2 GB)
ROWS_PER_PARTITION = 4_000_000

#: the same for the packed path (:func:`_packed_tables`), which holds about 50 bytes per row plus
#: what polars keeps of the read columns: a 10M-row log in two partitions peaks near 1.1 GB with the
#: RFM step (one partition: 1.25-1.7 GB, at about the same time on the warehouse layout, 12% less on
#: the demo's text ids; each partition reads the log once more)
PACKED_ROWS_PER_PARTITION = 8_000_000


def _n_partitions(lf: pl.LazyFrame, partitions: int | None, rows_per_partition: int = ROWS_PER_PARTITION) -> int:
    if partitions is not None:
        if int(partitions) < 1:
            raise ConfigError(f"customer_features: partitions={partitions} must be >= 1.")
        return int(partitions)
    try:
        n_rows = lf.select(pl.len()).collect().item()  # Parquet: from the metadata
    except pl.exceptions.PolarsError:
        return 1
    return max(1, -(-int(n_rows) // rows_per_partition))


def customer_features(
    transactions: pl.DataFrame | pl.LazyFrame,
    as_of: str | dt.date | dt.datetime,
    windows: Sequence[int] = (30, 90, 365),
    trend_window: int = TREND_WINDOW,
    partitions: int | None = None,
    method: str = "auto",
) -> pl.DataFrame:
    """One row per customer: recency, orders, spend, spacing, recent windows, trend and returns.

    Only rows with ``timestamp < as_of`` are used (``as_of`` is exclusive, e.g. the day after the
    last transaction). A *purchase* is a row with ``amount > 0``; a *return* a row with
    ``amount < 0``. Spend columns are net of returns unless named ``gross_``. Customers whose net
    total is <= 0 are kept and flagged by ``nonpositive_net``. Day counts use UTC calendar dates.
    See ``docs/features.md`` for the full table of definitions. ``partitions`` splits the
    customers into that many hash partitions processed one after the other (bounded memory;
    default: one per ``ROWS_PER_PARTITION`` rows of the log, counted cheaply for Parquet, or per
    ``PACKED_ROWS_PER_PARTITION`` where the packed sorted path applies).
    ``method``: ``"sorted"`` computes the order and day statistics from sorted integer keys (fast;
    valid when ``as_of`` is a UTC midnight and no purchase order spans two days), ``"grouped"``
    groups the log by order (general); ``"auto"`` (default) uses ``"sorted"`` when it is valid and
    falls back to ``"grouped"`` otherwise. Both give the same table (tested).

    >>> import polars as pl, datetime as dt
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "a"], "amount": [10.0, 20.0, -5.0],
    ...     "timestamp": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 5), dt.datetime(2024, 1, 6)]})
    >>> f = customer_features(tx, "2024-01-11")
    >>> f.select("days_since_last", "n_orders", "total_spend", "mean_days_between").row(0)
    (6, 2, 25.0, 4.0)
    """
    windows = sorted({int(w) for w in windows})
    if any(w <= 0 for w in windows) or int(trend_window) <= 0:
        raise ConfigError(
            f"customer_features: windows={list(windows)} / trend_window={trend_window} must be positive "
            "numbers of days. Fix: set features.windows to e.g. [30, 90, 365]."
        )
    lf = as_lazy(transactions)
    schema = require_columns(lf, ["customer_id", "timestamp", "amount"], "customer_features")
    require_numeric(schema, "amount", "customer_features")
    as_of_dt = to_utc(as_of, "as_of")
    as_of_day = (as_of_dt.date() - dt.date(1970, 1, 1)).days
    has_product = "product_id" in schema
    c = pl.col

    ts = ts_expr("timestamp", schema["timestamp"])
    buy = c("amount") > 0
    cols = [
        c("customer_id"),
        ts.alias("_ts"),
        c("amount").cast(pl.Float64).alias("_amt"),
        # orders are counted per customer here, so the order part of the key is enough
        pl.when(buy).then(order_key(schema, ts).struct.field("order")).alias("_order"),
    ]
    if has_product:
        product = c("product_id") if schema["product_id"].is_integer() else c("product_id").cast(pl.String)
        cols.append(pl.when(buy).then(product).alias("_product"))
    as_of_lit = pl.lit(as_of_dt).dt.cast_time_unit("us")
    base = lf.select(cols).filter(c("_ts") < as_of_lit, c("customer_id").is_not_null())
    buy = c("_amt") > 0
    cutoff = lambda days: as_of_lit - pl.duration(days=days)  # noqa: E731
    tw = int(trend_window)

    def sorted_passes(base: pl.LazyFrame) -> pl.DataFrame | None:
        """The same table from one streaming pass plus sorts of packed integer keys (no group-by on
        orders or days); ``None`` when it does not apply to this data (then ``grouped_passes``)."""
        if PACKED:
            # text order and product ids are read as what the packed path needs of them (a 64-bit
            # hash, checked there for clashes; dense codes): fewer bytes held than the text. (Dense
            # codes of text order ids cost 1.7x the time and +27% memory on 10M rows of ~10M orders.)
            text_order = not base.collect_schema()["_order"].is_integer()
            coded = base.with_columns(
                *([pl.when(c("_order").is_not_null()).then(c("_order").hash(seed=2)).alias("_order")] if text_order else []),
                *([_product_codes(c("_product"), schema["product_id"]).alias("_product")] if has_product else []),
            )
            box = [coded.collect(engine="streaming")]
            try:
                packed = _packed_tables(box, as_of_day, windows, tw, has_product, hashed_orders=text_order)
            except _OrderClash:  # (the UInt128 path keys orders by hash bits too: group by the ids, also
                return grouped_passes(base)  # for method="sorted", whose table it is)
            if packed is not None:
                return packed
        tables = _sorted_tables(base, as_of_day, windows, tw, has_product,
                                schema["product_id"] if has_product else pl.String)
        if tables is None:
            return None
        rows, per_customer, products = tables
        rows = rows.sort("_kh")  # the per-customer tables are sorted by _kh: align instead of joining
        parts = [rows, _align(rows["_kh"], per_customer, "_kh")]
        if products is not None:
            parts.append(_align(rows["_kh"], products, "_kh"))
        return pl.concat(parts, how="horizontal").drop("_kh")

    def grouped_passes(base: pl.LazyFrame) -> pl.DataFrame:
        """Passes 1-3 over the rows of one partition of the customers."""
        # the partition's few columns are read once and held in memory: passes 1 and 3 then both
        # run on it instead of each scanning (and decoding) the source again
        base = base.collect(engine="streaming").lazy()
        # pass 1: one row per purchase order (customer, order) and one per return moment
        # (customer, timestamp of a non-purchase row), with just its time, net amount and number of
        # return rows; pass 2 then only needs plain counts / sums / min / max per customer.
        orders = base.with_columns(pl.when(~buy).then(c("_ts")).alias("_rts")).group_by(
            "customer_id", "_order", "_rts"
        ).agg(
            c("_ts").min().alias("_t"),
            c("_amt").sum().alias("_v"),
            (c("_amt") < 0).sum().alias("_nret"),
        )
        # pass 2: per customer. An order counts in a window by its time (its first purchase row);
        # a return by its own time.
        is_order = c("_order").is_not_null()
        t, v = c("_t"), c("_v")
        ots = pl.when(is_order).then(t)
        inside = lambda lo, hi=None: (t >= cutoff(lo)) & (t < cutoff(hi) if hi else True)  # noqa: E731
        spend_in = lambda lo, hi=None: pl.when(inside(lo, hi)).then(v).otherwise(0.0).sum()  # noqa: E731
        aggs = [
            ots.min().alias("first_purchase"),
            ots.max().alias("last_purchase"),
            c("_order").count().cast(pl.Int64).alias("n_orders"),
            t.filter(is_order).dt.date().cast(pl.Int32).alias("_days"),  # one list per customer
            v.sum().alias("total_spend"),
            pl.when(is_order).then(v).otherwise(0.0).sum().alias("gross_spend"),
            pl.when(is_order).then(0.0).otherwise(-v).clip(lower_bound=0.0).sum().alias("returned_spend"),
            c("_nret").sum().cast(pl.Int64).alias("n_returns"),
            *[(is_order & inside(w)).sum().cast(pl.Int64).alias(f"orders_{w}d") for w in windows],
            *[spend_in(w).alias(f"spend_{w}d") for w in windows],
            *([] if tw in windows else [spend_in(tw).alias(f"spend_{tw}d")]),
            spend_in(2 * tw, tw).alias(f"spend_prev_{tw}d"),
        ]
        # parallel float sums depend on thread scheduling in their last bits; rounding money to
        # MONEY_DECIMALS makes the table bit-identical between runs (same data -> same segments)
        money = [str(e.meta.output_name()) for e in aggs if "spend" in str(e.meta.output_name())]
        # distinct purchase days in order, from the per-customer lists of order dates (vectorised
        # list kernels; much cheaper than sorting the log): their count and the spread of the gaps
        days = c("_days").list.unique().list.sort()
        # pass 3 (products) is keyed by a 64-bit hash of the customer id (numeric keys group faster
        # than text); a collision among the customers is detected and the text key used instead
        key = c("customer_id").hash(seed=0)
        out = (
            orders.group_by("customer_id").agg(aggs)
            .with_columns(*(rounded_money(c(n)).alias(n) for n in money), days.alias("_days"), key.alias("_k"))
            .with_columns(
                c("_days").list.len().cast(pl.Int64).alias("n_purchase_days"),
                c("_days").list.diff(null_behavior="drop").list.std(ddof=0).alias("std_days_between"),
            )
            .drop("_days")
            .collect(engine="streaming")
        )
        use_hash = HASH_KEYS and out["_k"].n_unique() == out.height
        kcol = "_k" if use_hash else "customer_id"
        keyed = base.with_columns(key.alias("_k")) if use_hash else base
        if has_product:  # pass 3: distinct (customer, product) pairs, then a count
            n_products = (
                keyed.filter(buy, c("_product").is_not_null()).select(kcol, "_product").unique()
                .group_by(kcol).agg(pl.len().cast(pl.Int64).alias("n_products"))
                .collect(engine="streaming")
            )
            out = out.join(n_products, on=kcol, how="left").with_columns(c("n_products").fill_null(0))
        return out

    if method not in ("auto", "sorted", "grouped"):
        raise ConfigError(f"customer_features: method={method!r} is not one of 'auto', 'sorted', 'grouped'.")
    midnight = as_of_dt == dt.datetime.combine(as_of_dt.date(), dt.time(), dt.timezone.utc)
    if method == "sorted" and not midnight:
        raise ConfigError(
            f"customer_features: method='sorted' needs as_of at a UTC midnight (got {as_of_dt.isoformat()}). "
            "Fix: give as_of as a date, or use method='auto'."
        )

    def passes(base: pl.LazyFrame) -> pl.DataFrame:
        if method != "grouped" and midnight:
            out = sorted_passes(base)
            if out is not None:
                return out
            if method == "sorted":
                raise DataError(
                    "customer_features: method='sorted' does not apply to this log: a purchase order spans "
                    "two calendar days, a purchase row has no order id, or the log spans more than "
                    f"{(1 << DAY_BITS) - 1:,} days. Fix: use method='auto' (it falls back to 'grouped')."
                )
        return grouped_passes(base)

    # customers are split into partitions by a hash of their id when the log is large, so the
    # per-order state stays small (bounded memory); results do not depend on it
    n_parts = _n_partitions(lf, partitions, PACKED_ROWS_PER_PARTITION if PACKED and method != "grouped" and midnight
                            else ROWS_PER_PARTITION)
    if n_parts == 1:
        out = passes(base)
    else:
        part = c("customer_id").hash(seed=1) % n_parts
        parts = [passes(base.filter(part == i)) for i in range(n_parts)]
        same = all(p.schema == parts[0].schema for p in parts)  # else a partition took the other path
        out = pl.concat(parts, rechunk=False, how="vertical" if same else "diagonal_relaxed")

    # sorted by id before the derived columns are added (fewer columns to reorder)
    out = sort_by_text(out.drop("_k", strict=False), "customer_id").lazy()
    first_day = c("first_purchase").dt.date().cast(pl.Int32)
    last_day = c("last_purchase").dt.date().cast(pl.Int32)
    now, prev = c(f"spend_{tw}d"), c(f"spend_prev_{tw}d")
    out = out.with_columns(
        (pl.lit(as_of_day) - last_day).cast(pl.Int64).alias("days_since_last"),
        (pl.lit(as_of_day) - first_day).cast(pl.Int64).alias("tenure_days"),
        pl.when(c("n_orders") > 0).then(c("total_spend") / c("n_orders")).alias("avg_order_value"),
        pl.when(c("n_purchase_days") > 1)
        .then((last_day - first_day) / (c("n_purchase_days") - 1))
        .alias("mean_days_between"),
        pl.when(c("n_purchase_days") > 1).then(c("std_days_between")).alias("std_days_between"),
        pl.when(now.abs() + prev.abs() > 0)
        .then((now - prev) / (now.abs() + prev.abs()))
        .alias(f"spend_trend_{tw}d"),
        pl.when(c("gross_spend") > 0).then(c("returned_spend") / c("gross_spend")).alias("return_rate"),
        (c("total_spend") <= 0).alias("nonpositive_net"),
    )
    return out.select(feature_columns(windows, tw, has_product)).collect()


def with_usage_features(features: pl.DataFrame, config: dict, as_of: dt.datetime) -> tuple[pl.DataFrame, dict | None]:
    """Join the usage features of the configured event log (``data.events``) onto the feature table,
    with the event quality report (None, and the table unchanged, when no event log is configured).

    >>> with_usage_features(pl.DataFrame({"customer_id": ["a"]}), {"data": {}}, dt.datetime(2024, 1, 1))[1] is None
    True
    """
    from segmentation_lib.data.events import clean_events, load_events
    from segmentation_lib.features.usage import join_usage, usage_features

    lf = load_events(config)
    if lf is None:
        return features, None
    events, report = clean_events(lf, as_of, config.get("quality"))
    feats = config.get("features") or {}
    usage = usage_features(events, as_of, windows=feats.get("windows") or (30, 90, 365),
                           key_features=feats.get("key_features") or ())
    report = {**report, "as_of": report["as_of"].isoformat() if report["as_of"] else None,
              "customers_with_events": usage.height}
    return join_usage(features, usage), report


# --------------------------------------------------------------------------- purchase mix (features/purchase_mix.py)
def with_purchase_mix(features: pl.DataFrame, transactions: pl.DataFrame | pl.LazyFrame, config: dict,
                      as_of: dt.datetime) -> tuple[pl.DataFrame, dict | None]:
    """Join the category and discount features (``data.columns.category`` / ``discount`` /
    ``list_price``, ``data.products``) onto the feature table, with their report (None, and the
    table unchanged, when none of them is configured). Lines left uncategorised or not read as a
    discount are counted in the report and named in one warning (the run notes).

    >>> with_purchase_mix(pl.DataFrame({"customer_id": ["a"]}), pl.DataFrame(), {"data": {}}, dt.datetime(2024, 1, 1))[1] is None
    True
    """
    import warnings

    from segmentation_lib.data.read import load_products
    from segmentation_lib.features.purchase_mix import join_purchase_mix, mix_notes, mix_settings, purchase_mix_features

    mapped, top, names = mix_settings(config)
    loaded = load_products(config)
    if not mapped and loaded is None:
        return features, None
    mix, report = purchase_mix_features(transactions, as_of, products=None if loaded is None else loaded[0],
                                        top=top, columns=mapped, categories=names)
    if loaded is not None:
        report["product_table"] = {**report.get("product_table", {}), **loaded[1]}
    note = mix_notes(report)
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    return join_purchase_mix(features, mix), report


def feature_columns(windows: Sequence[int], trend_window: int = TREND_WINDOW, has_product: bool = True) -> list[str]:
    """The columns of the feature table in order (``docs/features.md``).

    >>> feature_columns([30], 90, False)[-4:]
    ['returned_spend', 'return_rate', 'n_returns', 'nonpositive_net']
    """
    order = ["customer_id", "first_purchase", "last_purchase", "days_since_last", "tenure_days",
             "n_orders", "n_purchase_days", "total_spend", "gross_spend", "avg_order_value",
             "mean_days_between", "std_days_between"]
    for w in windows:
        order += [f"orders_{w}d", f"spend_{w}d"]
    if trend_window not in windows:
        order.append(f"spend_{trend_window}d")
    order += [f"spend_prev_{trend_window}d", f"spend_trend_{trend_window}d", "returned_spend", "return_rate", "n_returns"]
    if has_product:
        order.append("n_products")
    order.append("nonpositive_net")
    return order
