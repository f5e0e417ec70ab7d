"""segmentation_lib.features.customer: order counts of the packed path do not depend on hash luck.

The packed key of a purchase row is customer run | order part | day, with ``bits_o = 64 - bits_run -
bits_d`` bits for the order. A log of 4096 customers (12 run bits) whose purchase days span year 1 to
2024 (20 day bits) leaves 32 order bits: two order ids of one customer whose seed-2 hashes share their
top 32 bits are then found among a few hundred thousand candidates, and keying orders by those hash
bits (as before) counted them as one order. Integer ids are keyed by exact codes now (id minus the
lowest) where they fit; text ids and wider integer ids by the hash bits, with the whole hashes of each
customer's day compared (a clash sends the log to the grouped path). Known answer: the hand count and
the grouped path.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

import segmentation_lib.features.customer as F
from segmentation_lib.features.customer import customer_features

UTC = dt.timezone.utc
N_CUSTOMERS = 4096
DAY = dt.datetime(2024, 6, 1, 12, tzinfo=UTC)
AS_OF = "2024-06-02"
FAR = dt.datetime(1, 1, 2, tzinfo=UTC)  # one purchase day in year 1 widens the day part to 20 bits


def _bits_o() -> int:
    """The order bits of the packed key for the log of :func:`_log` (as ``_packed_tables`` computes them)."""
    span = (DAY.date() - FAR.date()).days
    return 64 - (N_CUSTOMERS - 1).bit_length() - span.bit_length()


def _colliding_pair(candidates: pl.Series) -> tuple:
    """Two different candidates whose ``hash(seed=2)`` share the top ``_bits_o()`` bits."""
    top = candidates.hash(seed=2) // (1 << (64 - _bits_o()))
    frame = pl.DataFrame({"v": candidates, "top": top})
    dup = frame.filter(pl.col("top").is_duplicated()).sort("top", "v").head(2)
    assert dup.height == 2 and dup["top"].n_unique() == 1, "no colliding pair among the candidates"
    return tuple(dup["v"].to_list())


def _log(pair: tuple, other_ids: list) -> pl.DataFrame:
    """Customer 0 buys twice on DAY with the two colliding orders (two lines of the first one) and
    once in year 1; customers 1.. buy once on DAY (their orders ``other_ids``)."""
    cust = [0, 0, 0, 0] + list(range(1, N_CUSTOMERS))
    ts = [DAY, DAY, DAY + dt.timedelta(hours=1), FAR] + [DAY] * (N_CUSTOMERS - 1)
    amount = [10.0, 5.0, 20.0, 7.0] + [3.0] * (N_CUSTOMERS - 1)
    orders = [pair[1], pair[1], pair[0], other_ids[0]] + list(other_ids[1:N_CUSTOMERS])
    return pl.DataFrame({
        "customer_id": [f"C{i:05d}" for i in cust], "timestamp": ts, "amount": amount, "order_id": orders,
    }, schema_overrides={"timestamp": pl.Datetime("us", "UTC")})


def _spy(monkeypatch) -> list:
    """Records what each ``_packed_tables`` call gave: 'table', None, or 'clash' (it raised)."""
    calls, real = [], F._packed_tables

    def spy(*args, **kwargs):
        try:
            out = real(*args, **kwargs)
        except F._OrderClash:
            calls.append("clash")
            raise
        calls.append("table" if out is not None else None)
        return out

    monkeypatch.setattr(F, "_packed_tables", spy)
    return calls


def _check(log: pl.DataFrame, pair: tuple) -> pl.DataFrame:
    # the premise: both orders' seed-2 hashes share the packed key's order bits, and are not equal
    h = log.filter(pl.col("order_id").is_in(list(pair)))["order_id"].unique().hash(seed=2).to_list()
    assert len(h) == 2 and h[0] != h[1] and h[0] >> (64 - _bits_o()) == h[1] >> (64 - _bits_o())
    fast = customer_features(log, AS_OF, method="sorted")  # (a clash is grouped by the ids)
    grouped = customer_features(log, AS_OF, method="grouped")
    assert_frame_equal(fast, grouped, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    row = fast.filter(pl.col("customer_id") == "C00000").row(0, named=True)
    # by hand: orders pair[1] (two lines), pair[0] on DAY and one in year 1; two purchase days
    assert (row["n_orders"], row["orders_30d"], row["n_purchase_days"], row["total_spend"]) == (3, 2, 2, 42.0)
    assert fast["n_orders"].sum() == N_CUSTOMERS + 2
    return fast


def test_text_order_ids_with_colliding_hash_bits_are_two_orders(monkeypatch):
    """Text ids are keyed by hash bits; the whole hashes of one customer's day tell the clash, and
    the grouped path counts the orders."""
    pair = _colliding_pair(pl.Series([f"O{i:07d}" for i in range(400_000)]))
    log = _log(pair, [f"Q{i:05d}" for i in range(N_CUSTOMERS)])
    calls = _spy(monkeypatch)
    _check(log, pair)
    assert calls == ["clash"]


def test_text_order_ids_without_clash_keep_the_packed_path(monkeypatch):
    """Two lines of one order and two orders on one day, hashes not sharing the key bits: packed."""
    _packed_equals_grouped(monkeypatch, _log(("O1", "O2"), [f"Q{i:05d}" for i in range(N_CUSTOMERS)]))


def _packed_equals_grouped(monkeypatch, log: pl.DataFrame) -> None:
    """The packed path applies (no clash) and gives the grouped table; customer C00000 has 3 orders."""
    calls = _spy(monkeypatch)
    fast = customer_features(log, AS_OF, method="sorted")
    assert calls == ["table"]
    assert_frame_equal(fast, customer_features(log, AS_OF, method="grouped"), check_exact=False, rel_tol=1e-9,
                       abs_tol=1e-6)
    assert fast.filter(pl.col("customer_id") == "C00000")["n_orders"].item() == 3


def test_integer_order_ids_with_colliding_hash_bits_are_two_orders(monkeypatch):
    pair = _colliding_pair(pl.Series(np.arange(1_000_000, 1_400_000, dtype=np.int64)))
    log = _log(pair, list(range(N_CUSTOMERS, 0, -1)))  # falling ids: not one order per row
    calls = _spy(monkeypatch)
    _check(log, pair)
    assert calls == ["table"]  # the offsets from the lowest id fit in the order bits: exact


def test_wide_integer_order_ids_clash_falls_back_to_grouped(monkeypatch):
    """Ids spread over 2**62 do not fit as offsets: the hash is used, its clash detected, and the
    grouped path counts the orders."""
    rng = np.random.default_rng(5)
    pair = _colliding_pair(pl.Series(rng.integers(0, 1 << 62, 400_000, dtype=np.int64)))
    log = _log(pair, [int(x) for x in rng.integers(0, 1 << 62, N_CUSTOMERS, dtype=np.int64)])
    assert log["order_id"].n_unique() == N_CUSTOMERS + 2
    calls = _spy(monkeypatch)
    _check(log, pair)
    assert calls == ["clash"]


def test_wide_integer_order_ids_without_clash_keep_the_packed_path(monkeypatch):
    rng = np.random.default_rng(6)
    ids = [int(x) for x in rng.integers(0, 1 << 62, N_CUSTOMERS + 2, dtype=np.int64)]
    _packed_equals_grouped(monkeypatch, _log((ids[-2], ids[-1]), ids[:N_CUSTOMERS]))
