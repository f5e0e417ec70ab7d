"""Transaction statistics per segment (the openretailscience ``SegTransactionStats`` table, in polars).

:func:`segment_stats` joins the transaction log to the segment assignments on ``customer_id`` and
reports, per segment (and any extra grouping columns, e.g. segment x region):

- ``customers`` (distinct customer ids), ``transactions`` (distinct orders by
  :func:`~segmentation_lib.features.common.order_key`, the one definition of an order),
  ``units`` (sum of ``quantity``, only when the log has that column) and ``spend`` (sum of ``amount``);
- ``spend_per_customer``, ``spend_per_transaction``, ``transactions_per_customer``, and with units
  ``units_per_transaction`` and ``price_per_unit`` (null where the denominator is zero);
- ``customers_share``, ``transactions_share``, ``spend_share``: the row over the whole table (the
  Total row), by the rules of :func:`segmentation_lib.segment.sizes.with_shares` (``spend_share`` is
  null when the total spend is zero or negative). A customer seen in two groups (e.g. two regions)
  counts once in the total, so the group shares can sum to more than 1;
- extra aggregations by name (``extra_aggs={"products": pl.col("product_id").n_unique()}``);
- a ``Total`` row (``total=True``) and, with ``rollup=True``, the subtotals over several grouping
  columns (prefix and suffix rollups, as in openretailscience's ``calc_rollup``): for keys
  ``[a, b, c]`` the groups ``(a, b, Total)``, ``(a, Total, Total)``, ``(Total, b, c)`` and
  ``(Total, Total, c)``. Grouping columns are cast to text when a ``Total`` label is added.

Rows without a customer id ("unknown customers") are not in the table: their transactions are
counted apart in :attr:`SegmentStats.unknown_customer_transactions`.

>>> import datetime as dt
>>> t = dt.datetime(2024, 1, 1)
>>> tx = pl.DataFrame({"customer_id": ["a", "a", "b", None], "timestamp": [t, t, t, t],
...                    "order_id": ["1", "2", "3", "4"], "amount": [10.0, 20.0, 30.0, 5.0]})
>>> seg = pl.DataFrame({"customer_id": ["a", "b"], "s": ["x", "y"]})
>>> r = segment_stats(tx, seg, "s")
>>> r.table.select("s", "customers", "transactions", "spend").rows()
[('x', 1, 2, 30.0), ('y', 1, 1, 30.0), ('Total', 2, 3, 60.0)]
>>> r.unknown_customer_transactions
1
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.features.common import order_key, rounded_money
from segmentation_lib.segment.sizes import with_shares

#: the label of the Total row and of rolled-up grouping columns
TOTAL_LABEL = "Total"


@dataclass
class SegmentStats:
    """The per-segment table and the transactions without a customer id, reported apart."""

    table: pl.DataFrame
    unknown_customer_transactions: int


def _ratio(num: str, den: str, name: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None).cast(pl.Float64).alias(name)


def grouping_sets(keys: Sequence[str], total: bool = True, rollup: bool = False) -> list[tuple[str, ...]]:
    """The groupings :func:`segment_stats` computes, finest first, the grand total (``()``) last.

    >>> grouping_sets(["a", "b", "c"], rollup=True)
    [('a', 'b', 'c'), ('a', 'b'), ('a',), ('b', 'c'), ('c',), ()]
    """
    keys = tuple(keys)
    sets = [keys]
    if rollup and len(keys) > 1:
        sets += [keys[:i] for i in range(len(keys) - 1, 0, -1)]
        sets += [keys[i:] for i in range(1, len(keys))]
    if total:
        sets.append(())
    return list(dict.fromkeys(sets))


def segment_stats(
    transactions: pl.DataFrame | pl.LazyFrame,
    assignments: pl.DataFrame | pl.LazyFrame,
    segment_cols: str | Sequence[str],
    *,
    group_cols: Sequence[str] = (),
    extra_aggs: Mapping[str, pl.Expr] | None = None,
    total: bool = True,
    rollup: bool = False,
) -> SegmentStats:
    """Transaction statistics per segment (see the module docstring for every column).

    ``transactions``: the canonical log (``customer_id``, ``timestamp``, ``amount``, optional
    ``order_id``, ``quantity``). ``assignments``: ``customer_id`` and the ``segment_cols``.
    ``group_cols`` may come from either table (e.g. a ``region`` column of the log). Customers of
    the log without an assignment form the null segment.
    """
    seg_cols = [segment_cols] if isinstance(segment_cols, str) else list(segment_cols)
    keys = seg_cols + [c for c in group_cols if c not in seg_cols]
    tx, asg = transactions.lazy(), assignments.lazy()
    tx_cols, asg_cols = tx.collect_schema().names(), asg.collect_schema().names()
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in tx_cols]
    missing += [f"assignments.{c}" for c in ["customer_id", *seg_cols] if c not in asg_cols]
    missing += [c for c in keys if c not in tx_cols and c not in asg_cols]
    if missing or not seg_cols:
        raise DataError(f"segment_stats: column(s) {missing or ['<segment_cols>']} missing (transactions: {tx_cols}; "
                        f"assignments: {asg_cols}). Fix: pass the clean transaction log, the segment assignments "
                        "with customer_id and the segment column(s), and grouping columns present in one of them.")
    take = ["customer_id", *[c for c in keys if c in asg_cols and c not in tx_cols]]
    known = tx.filter(pl.col("customer_id").is_not_null())
    joined = known.join(asg.select(take).unique("customer_id"), on="customer_id", how="left")
    has_units = "quantity" in tx_cols

    aggs = [pl.col("customer_id").n_unique().cast(pl.Int64).alias("customers"),
            order_key(tx_cols).drop_nulls().n_unique().cast(pl.Int64).alias("transactions")]
    if has_units:
        aggs.append(pl.col("quantity").cast(pl.Float64).sum().alias("units"))
    # rounded like every money sum of the kit: the same data gives the same bytes whatever the threads' summation order
    aggs.append(rounded_money(pl.col("amount").cast(pl.Float64).sum()).alias("spend"))
    aggs += [expr.alias(name) for name, expr in (extra_aggs or {}).items()]

    sets = grouping_sets(keys, total, rollup)
    labelled = len(sets) > 1
    frames = []
    for gs in sets:
        lf = joined.group_by(list(gs)).agg(aggs).sort(list(gs), nulls_last=True) if gs else joined.select(aggs)
        if labelled:
            lf = lf.with_columns([pl.col(c).cast(pl.String) for c in gs]
                                 + [pl.lit(TOTAL_LABEL, pl.String).alias(c) for c in keys if c not in gs])
        frames.append(lf.select(*keys, pl.all().exclude(keys)))
    unknown = tx.filter(pl.col("customer_id").is_null()).select(
        order_key(tx_cols, timestamp=pl.col("timestamp")).drop_nulls().n_unique().cast(pl.Int64).alias("n"))
    *parts, grand, unknown_df = pl.collect_all([*frames, joined.select(aggs), unknown])
    table = pl.concat(parts, how="vertical_relaxed")

    g = grand.row(0, named=True)
    derived = [_ratio("spend", "customers", "spend_per_customer"), _ratio("spend", "transactions", "spend_per_transaction"),
               _ratio("transactions", "customers", "transactions_per_customer")]
    if has_units:
        derived += [_ratio("units", "transactions", "units_per_transaction"), _ratio("spend", "units", "price_per_unit")]
    shared = with_shares(table.rename({"spend": "revenue"}), g["customers"], g["spend"])
    table = (shared.rename({"revenue": "spend", "share": "customers_share", "revenue_share": "spend_share"})
             .with_columns(*derived, (pl.col("transactions") / g["transactions"] if g["transactions"] else
                                     pl.lit(None, pl.Float64)).alias("transactions_share")))
    base = ["customers", "transactions", *(["units"] if has_units else []), "spend"]
    order = [*keys, *base, *[e.meta.output_name() for e in derived],
             "customers_share", "transactions_share", "spend_share", *(extra_aggs or {})]
    return SegmentStats(table.select(order), int(unknown_df.item()))


def unknown_customers_sentence(rows: int, source: str = "the data-quality report") -> str:
    """The sentence under a segment-statistics table about the rows without a customer id.

    >>> unknown_customers_sentence(0)
    'Every transaction row had a customer id.'
    """
    if not rows:
        return "Every transaction row had a customer id."
    return (f"{rows:,} transaction row(s) had no customer id (unknown customers, counted from {source}); "
            "they belong to no segment and are not in the table above.")
