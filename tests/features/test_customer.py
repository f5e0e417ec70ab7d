"""segmentation_lib.features.customer: customer_features hand-computed, the sorted path against the grouped
one, and bit-identical tables between runs and row orders."""
from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.btyd import btyd_summary
from segmentation_lib.features.customer import customer_features
from segmentation_lib.data.demo import make_transactions
from segmentation_lib.segment.rfm import RFMScorer
from segmentation_lib.segment.rfm_maps import assign_rfm_segments
from tests.conftest import random_log as _random_log
from tests.conftest import tx_frame as _tx

UTC = dt.timezone.utc
D = dt.datetime
LOG = _tx([
    ("a", D(2024, 1, 1, 10), 10.0, "O1", "P1"),
    ("a", D(2024, 1, 1, 15), 20.0, "O2", "P2"),   # same day, another order
    ("a", D(2024, 1, 11, 9), 30.0, "O3", "P1"),
    ("a", D(2024, 1, 11, 9), 5.0, "O3", "P3"),    # second line of O3
    ("a", D(2024, 1, 20, 12), -5.0, "O3", "P3"),  # return
    ("a", D(2024, 2, 20, 8), 40.0, "O4", "P2"),
    ("a", D(2024, 3, 5), 100.0, "O5", "P1"),      # after as_of: dropped
    ("b", D(2024, 2, 29, 23), 50.0, "O6", "P1"),
    ("b", D(2024, 2, 29, 23, 30), -50.0, "O6", "P1"),  # full return: net 0
    ("c", D(2024, 2, 10), -10.0, "O7", "P9"),     # only a return
])
AS_OF = "2024-03-01"


def _row(df, cid):
    return df.filter(pl.col("customer_id") == cid).row(0, named=True)


def test_customer_features_hand_computed():
    f = customer_features(LOG, AS_OF)
    assert f["customer_id"].to_list() == ["a", "b", "c"]
    a = _row(f, "a")
    assert a["first_purchase"] == D(2024, 1, 1, 10, tzinfo=UTC)
    assert a["last_purchase"] == D(2024, 2, 20, 8, tzinfo=UTC)
    assert a["days_since_last"] == 10 and a["tenure_days"] == 60  # 2024 is a leap year
    assert a["n_orders"] == 4 and a["n_purchase_days"] == 3
    assert a["total_spend"] == pytest.approx(100.0) and a["gross_spend"] == pytest.approx(105.0)
    assert a["avg_order_value"] == pytest.approx(25.0)
    assert a["mean_days_between"] == pytest.approx(25.0)  # gaps 10 and 40
    assert a["std_days_between"] == pytest.approx(15.0)   # population std of (10, 40)
    assert a["orders_30d"] == 1 and a["spend_30d"] == pytest.approx(40.0)
    assert a["orders_90d"] == 4 and a["spend_90d"] == pytest.approx(100.0)
    assert a["orders_365d"] == 4 and a["spend_365d"] == pytest.approx(100.0)
    assert a["spend_prev_90d"] == 0.0 and a["spend_trend_90d"] == pytest.approx(1.0)
    assert a["returned_spend"] == pytest.approx(5.0) and a["n_returns"] == 1
    assert a["return_rate"] == pytest.approx(5 / 105)
    assert a["n_products"] == 3 and a["nonpositive_net"] is False


def test_full_return_and_return_only_customers_are_kept_and_flagged():
    f = customer_features(LOG, AS_OF)
    b, c = _row(f, "b"), _row(f, "c")
    assert b["n_orders"] == 1 and b["total_spend"] == 0.0 and b["gross_spend"] == 50.0
    assert b["days_since_last"] == 1 and b["tenure_days"] == 1
    assert b["mean_days_between"] is None and b["std_days_between"] is None  # one purchase day
    assert b["spend_trend_90d"] is None  # nothing now, nothing before
    assert b["return_rate"] == 1.0 and b["nonpositive_net"] is True
    assert c["n_orders"] == 0 and c["first_purchase"] is None and c["days_since_last"] is None
    assert c["avg_order_value"] is None and c["return_rate"] is None
    assert c["total_spend"] == -10.0 and c["spend_30d"] == -10.0 and c["n_products"] == 0
    assert c["nonpositive_net"] is True


def test_orders_without_order_id_are_distinct_timestamps():
    f = customer_features(LOG.drop("order_id"), AS_OF)
    # a: 10:00, 15:00, Jan 11 09:00 (two lines, one order), Feb 20 -> 4 orders
    assert _row(f, "a")["n_orders"] == 4
    assert "n_products" not in customer_features(LOG.drop("product_id"), AS_OF).columns


def test_lazy_input_and_trend_previous_window():
    log = _tx([
        ("x", D(2024, 1, 1), 30.0, "A", "P"),   # previous 90 days before as_of 2024-05-01
        ("x", D(2024, 4, 1), 10.0, "B", "P"),   # recent 90 days
    ])
    f = customer_features(log.lazy(), "2024-05-01", windows=(30, 90))
    x = f.row(0, named=True)
    assert x["spend_90d"] == 10.0 and x["spend_prev_90d"] == 30.0
    assert x["spend_trend_90d"] == pytest.approx((10 - 30) / 40)
    assert x["orders_30d"] == 1 and "orders_365d" not in f.columns


def test_bad_inputs_raise_friendly_errors():
    with pytest.raises(DataError, match="amount"):
        customer_features(LOG.drop("amount"), AS_OF)
    with pytest.raises(ConfigError):
        customer_features(LOG, "not a date")
    with pytest.raises(ConfigError):
        btyd_summary(LOG, AS_OF, freq="Q")
    text_amount = LOG.with_columns(pl.col("amount").cast(pl.String))
    for call in (customer_features, btyd_summary):
        with pytest.raises(DataError, match="'amount' has dtype String, not a number. Fix"):
            call(text_amount, AS_OF)
    with pytest.raises(ConfigError, match="method"):
        customer_features(LOG, AS_OF, method="fastest")
    with pytest.raises(ConfigError, match="midnight"):
        customer_features(LOG, "2024-03-01T12:00:00", method="sorted")


def test_text_key_fallback_gives_the_same_table(monkeypatch):
    import segmentation_lib.features.customer as F

    hashed = customer_features(LOG, AS_OF)
    monkeypatch.setattr(F, "HASH_KEYS", False)
    assert customer_features(LOG, AS_OF).equals(hashed)


@pytest.mark.parametrize("parts", [2, 3])
def test_partitions_do_not_change_the_table(parts):
    one = customer_features(LOG, AS_OF, partitions=1)
    assert customer_features(LOG.lazy(), AS_OF, partitions=parts).equals(one)


def test_net_zero_money_is_positive_zero_whatever_the_summation_order():
    # 0.3 - 0.1 - 0.2 leaves a float residue of -2.8e-17 in this order; rounded naively it is -0.0,
    # which equals 0.0 but is another bit pattern (bit-identical reruns need a fixed sign)
    rows = [("z", D(2024, 1, 1), 0.3, "O1", "P1"), ("z", D(2024, 1, 2), -0.1, "O1", "P1"),
            ("z", D(2024, 1, 3), -0.2, "O1", "P1")]
    for order in (rows, rows[::-1]):
        f = customer_features(_tx(order), AS_OF)
        for col in ("total_spend", "spend_365d", "avg_order_value"):
            assert f[col][0] == 0.0 and math.copysign(1.0, f[col][0]) == 1.0, col
    same_day = [(z, D(2024, 1, 5), v, o, p) for z, _, v, o, p in rows]  # a net-zero period
    b = btyd_summary(_tx([("z", D(2024, 1, 1), 1.0, "O1", "P1"), *same_day]), AS_OF)
    assert b["monetary_value"][0] == 0.0 and math.copysign(1.0, b["monetary_value"][0]) == 1.0


@pytest.mark.parametrize("seed,with_order,with_product,windows", [
    (1, True, True, (30, 90, 365)), (2, False, True, (7, 90)), (3, True, False, (30, 60, 365)),
])
def test_sorted_path_gives_the_grouped_table(seed, with_order, with_product, windows):
    log = _random_log(seed, with_order=with_order, with_product=with_product)
    for as_of in ("2024-12-01", "2024-06-15"):
        fast = customer_features(log, as_of, windows=windows, method="sorted")
        slow = customer_features(log, as_of, windows=windows, method="grouped")
        assert fast.height == slow.height == log.filter(pl.col("timestamp") < pl.lit(dt.datetime.fromisoformat(as_of).replace(tzinfo=UTC)))["customer_id"].n_unique()
        assert_frame_equal(fast, slow, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
        assert fast["n_products" if with_product else "n_orders"].sum() > 0
    assert customer_features(log, "2024-12-01", method="auto").equals(customer_features(log, "2024-12-01", method="sorted"))


def test_many_products_use_the_wide_key(monkeypatch):
    import segmentation_lib.features.customer as F

    log = _random_log(4)
    packed = customer_features(log, "2024-12-01", method="sorted")
    monkeypatch.setattr(F, "_MAX_PACKED_PRODUCTS", 1)  # as if there were over a million products
    assert customer_features(log, "2024-12-01", method="sorted").equals(packed)
    assert packed["n_products"].max() > 5


def test_sorted_path_counts_on_the_hand_log():
    f = customer_features(LOG, AS_OF, method="sorted")
    a = _row(f, "a")
    # orders O1, O2 (same day), O3 (two lines), O4; purchase days Jan 1, Jan 11, Feb 20 -> gaps 10, 40
    assert (a["n_orders"], a["n_purchase_days"], a["n_products"]) == (4, 3, 3)
    assert math.isclose(a["std_days_between"], 15.0)  # gaps 10 and 40: mean 25, population std 15
    assert (a["orders_30d"], a["orders_90d"]) == (1, 4)
    assert _row(f, "c")["n_orders"] == 0 and _row(f, "c")["n_products"] == 0


def test_auto_falls_back_where_the_sorted_path_does_not_apply():
    two_day_order = LOG.with_columns(  # O3's second line a day later: order time is its first line's
        pl.when((pl.col("order_id") == "O3") & (pl.col("product_id") == "P3") & (pl.col("amount") > 0))
        .then(pl.col("timestamp") + pl.duration(days=1)).otherwise(pl.col("timestamp")).alias("timestamp")
    )
    with pytest.raises(DataError, match="spans"):
        customer_features(two_day_order, AS_OF, method="sorted")
    auto = customer_features(two_day_order, AS_OF)
    assert auto.equals(customer_features(two_day_order, AS_OF, method="grouped"))
    assert _row(auto, "a")["n_orders"] == 4 and _row(auto, "a")["n_purchase_days"] == 3
    no_order_id = LOG.with_columns(pl.when(pl.col("order_id") == "O1").then(None).otherwise(pl.col("order_id")).alias("order_id"))
    with pytest.raises(DataError, match="no order id"):
        customer_features(no_order_id, AS_OF, method="sorted")
    assert customer_features(no_order_id, AS_OF).equals(customer_features(no_order_id, AS_OF, method="grouped"))
    # as_of not at midnight: window edges are not day edges, so auto uses the grouped path
    noon = "2024-02-20T09:00:00"
    assert customer_features(LOG, noon).equals(customer_features(LOG, noon, method="grouped"))
    assert _row(customer_features(LOG, noon), "a")["orders_30d"] == 1  # O4 at 08:00 is before 09:00


# ------------------------------------------------------------------- determinism
# Same data and parameters give bit-identical tables (parallel float sums must not leak into results).
def test_feature_table_and_rfm_are_bit_identical_between_runs():
    tx = make_transactions(n_customers=3000, seed=11).transactions.drop_nulls("customer_id")
    # many rows per group and a shuffled row order: the cases where thread scheduling changes float sums
    tx = pl.concat([tx] * 3).sample(fraction=1.0, shuffle=True, seed=3)
    cut = dt.datetime(2024, 10, 1, tzinfo=dt.timezone.utc)
    runs = [customer_features(tx.filter(pl.col("timestamp") < cut), cut).sort("customer_id") for _ in range(4)]
    assert all(r.equals(runs[0]) for r in runs[1:])
    scorer = RFMScorer().fit(runs[0])
    segs = [assign_rfm_segments(scorer.transform(r))["rfm_segment"] for r in runs]
    assert all(s.equals(segs[0]) for s in segs[1:])
    b = [btyd_summary(tx, cut) for _ in range(3)]
    assert all(x.equals(b[0]) for x in b[1:])


def test_shuffled_input_rows_give_the_same_features():
    tx = make_transactions(n_customers=1000, seed=5).transactions.drop_nulls("customer_id")
    as_of = "2025-01-01"
    a = customer_features(tx, as_of).sort("customer_id")
    b = customer_features(tx.sample(fraction=1.0, shuffle=True, seed=1), as_of).sort("customer_id")
    assert a.equals(b)


@pytest.mark.parametrize("n_customers", [1, 2, 3])
def test_few_customers_with_any_hashes_give_the_grouped_table(n_customers):
    """Issue 12: the step between the sorted UInt64 keys of two customers overflowed an Int64 cast
    when their hashes were far apart (2 customers failed about one time in four)."""
    for seed in range(40):
        log = _random_log(seed, n_customers=n_customers, with_product=False)
        log = log.filter(pl.col("customer_id") != "R1").with_columns(
            (pl.lit(f"s{seed}-") + pl.col("customer_id")).alias("customer_id"))
        fast = customer_features(log, "2025-01-01", method="sorted")
        assert fast.height == log["customer_id"].n_unique()
        assert_frame_equal(fast, customer_features(log, "2025-01-01", method="grouped"),
                           check_exact=False, rel_tol=1e-9, abs_tol=1e-6)


# --------------------------------------------------------------------------------------------
# issue 15: the warehouse layout (integer ids, rows in time order, several orders per second)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,with_order,with_product", [(6, True, True), (7, False, True)])
def test_warehouse_layout_keeps_integer_ids_and_paths_agree(seed, with_order, with_product):
    from tests.features import as_text_ids, warehouse_log

    log = warehouse_log(seed, with_order=with_order, with_product=with_product)
    fast = customer_features(log, "2024-12-01", method="sorted")
    slow = customer_features(log, "2024-12-01", method="grouped")
    assert_frame_equal(fast, slow, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    assert fast.schema["customer_id"] == pl.Int64 and fast["customer_id"].is_sorted()
    text = customer_features(as_text_ids(log), "2024-12-01")
    assert text.schema["customer_id"] == pl.String
    assert_frame_equal(fast, text.with_columns(pl.col("customer_id").cast(pl.Int64)).sort("customer_id"),
                       check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    # RFM scores and the segment map: the same segments for the same customers, ids still integers
    seg_int = assign_rfm_segments(RFMScorer().fit_transform(fast))
    seg_txt = assign_rfm_segments(RFMScorer().fit_transform(text))
    assert seg_int.schema["customer_id"] == pl.Int64
    both = seg_int.join(seg_txt.with_columns(pl.col("customer_id").cast(pl.Int64)), on="customer_id", suffix="_t")
    assert both.height == fast.height
    assert (both["rfm_segment"] == both["rfm_segment_t"]).all() and both["rfm_segment"].n_unique() > 3


# --------------------------------------------------------------------------------------------
# issue 15: the packed path (one sort of customer | day | row numbers)
# --------------------------------------------------------------------------------------------
def _packed_calls(monkeypatch):
    import segmentation_lib.features.customer as F

    calls = []
    real = F._packed_tables

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(F, "_packed_tables", spy)
    return calls


@pytest.mark.parametrize("layout", ["text", "warehouse", "warehouse_no_order", "warehouse_text", "text_shuffled"])
def test_packed_path_gives_the_uint128_and_grouped_tables(monkeypatch, layout):
    import segmentation_lib.features.customer as F
    from tests.features import as_text_ids, warehouse_log

    log = {"text": lambda: _random_log(8), "warehouse": lambda: warehouse_log(9),
           "warehouse_no_order": lambda: warehouse_log(10, with_order=False),
           "warehouse_text": lambda: as_text_ids(warehouse_log(11)),
           "text_shuffled": lambda: _random_log(12, with_order=False).sample(fraction=1.0, shuffle=True, seed=1)}[layout]()
    calls = _packed_calls(monkeypatch)
    packed = customer_features(log, "2024-12-01", method="sorted")
    assert calls == [True]  # the packed path applied (no fallback)
    monkeypatch.setattr(F, "PACKED", False)
    wide = customer_features(log, "2024-12-01", method="sorted")
    grouped = customer_features(log, "2024-12-01", method="grouped")
    assert_frame_equal(packed, wide, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    assert_frame_equal(packed, grouped, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    assert packed["n_orders"].sum() > packed.height and packed["n_products"].max() > 2


def test_warehouse_orders_one_per_row_are_counted_from_the_rows(monkeypatch):
    """Rising integer order ids (one per purchase row): no order sort, the same counts."""
    from tests.features import warehouse_log

    log = warehouse_log(13, with_order=False).with_row_index("order_id").with_columns(pl.col("order_id").cast(pl.Int64) * 3 + 10)
    assert log["order_id"].is_sorted() and log["order_id"].n_unique() == log.height
    calls = _packed_calls(monkeypatch)
    fast = customer_features(log, "2024-12-01", method="sorted")
    assert calls == [True]
    assert_frame_equal(fast, customer_features(log, "2024-12-01", method="grouped"),
                       check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
    buyers = log.filter((pl.col("amount") > 0) & (pl.col("timestamp") < dt.datetime(2024, 12, 1, tzinfo=UTC)))
    assert fast["n_orders"].sum() == buyers.height


def test_customers_sharing_hash_key_bits_are_told_apart(monkeypatch):
    """Text ids keyed by 9 bits of their hash: 2000 customers share them many times over; the whole
    hash separates them (rows re-sorted within the clashing runs), the table stays the grouped one."""
    import segmentation_lib.features.customer as F

    log = _random_log(14, n_customers=2000)
    grouped = customer_features(log, "2024-12-01", method="grouped")
    monkeypatch.setattr(F, "HASH_KEY_BITS", 9)
    calls = _packed_calls(monkeypatch)
    fast = customer_features(log, "2024-12-01", method="sorted")
    assert calls == [True]
    assert fast.height == grouped.height == log["customer_id"].n_unique()
    assert_frame_equal(fast, grouped, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)


def test_segment_runs_helpers_on_hand_arrays():
    import numpy as np

    import segmentation_lib.features.customer as F

    assert F._segment_counts(np.array([0, 1, 1, 0, 1], dtype=bool), np.array([0, 1, 3]), np.empty(5, dtype=np.int64)).tolist() == [0, 2, 1]
    assert F._segment_sums(np.array([0.5, 1.0, 2.0]), np.array([0, 2])).tolist() == [1.5, 2.0]
    assert F._arange_into(np.empty(3, dtype=np.uint64)).tolist() == [0, 1, 2]


@pytest.mark.parametrize("layout", ["text", "warehouse", "warehouse_codes", "warehouse_text", "text_shuffled"])
def test_packed_path_in_pieces_gives_the_one_piece_table(monkeypatch, layout):
    """The sorted rows cut between customers into three pieces summarised in threads: the same bytes
    as one piece (and the grouped table); each piece has customers, every customer is in one."""
    import segmentation_lib.features.customer as F
    from tests.features import as_text_ids, force_pieces, warehouse_log

    log = {"text": lambda: _random_log(8), "warehouse": lambda: warehouse_log(9),
           # integer order ids not rising in row order: keyed by their exact codes
           "warehouse_codes": lambda: warehouse_log(9).sample(fraction=1.0, shuffle=True, seed=2),
           "warehouse_text": lambda: as_text_ids(warehouse_log(11)),
           "text_shuffled": lambda: _random_log(12, with_order=False).sample(fraction=1.0, shuffle=True, seed=1)}[layout]()
    one = customer_features(log, "2024-12-01", method="sorted")
    sizes = force_pieces(monkeypatch, F, "_packed_piece")
    pieces = customer_features(log, "2024-12-01", method="sorted")
    assert len(sizes) == 3 and min(sizes) > 0 and sum(sizes) == one.height
    assert pieces.equals(one)
    grouped = customer_features(log, "2024-12-01", method="grouped")
    assert_frame_equal(pieces, grouped, check_exact=False, rel_tol=1e-9, abs_tol=1e-6)
