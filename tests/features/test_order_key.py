"""One definition of an order (features.common.order_key) behind every order count of the kit."""
from __future__ import annotations

import datetime as dt

import polars as pl

from segmentation_lib.describe.activity import monthly_activity, top_line
from segmentation_lib.features.common import order_key
from segmentation_lib.features.customer import customer_features

T = dt.datetime(2024, 1, 5, 12, 0, 0, tzinfo=dt.timezone.utc)


def _log(with_order_id: bool) -> pl.DataFrame:
    # a and b buy at the same second; a buys again a day later; b returns something
    tx = pl.DataFrame({
        "customer_id": ["a", "b", "a", "b"],
        "timestamp": [T, T, T + dt.timedelta(days=1), T + dt.timedelta(days=2)],
        "amount": [10.0, 20.0, 5.0, -3.0],
    })
    if with_order_id:
        tx = tx.with_columns(pl.Series("order_id", ["1", "1", "2", "R1"]))  # two customers share order id "1"
    return tx


def test_same_second_purchases_of_two_customers_are_two_orders_everywhere() -> None:
    tx = _log(with_order_id=False)
    feats = customer_features(tx, "2024-02-01")
    assert dict(feats.select("customer_id", "n_orders").iter_rows()) == {"a": 2, "b": 1}
    # before the one order_key, the exploration page counted orders per timestamp: 2 here, not 3
    assert top_line(tx, feats)["orders"] == 3 == feats["n_orders"].sum()
    assert monthly_activity(tx)["orders"].to_list() == [3]


def test_order_ids_are_orders_of_their_customer() -> None:
    tx = _log(with_order_id=True)
    feats = customer_features(tx, "2024-02-01")
    assert top_line(tx, feats)["orders"] == 3 == feats["n_orders"].sum()
    assert monthly_activity(tx)["orders"].to_list() == [3]


def test_a_row_without_order_id_has_no_key() -> None:
    tx = pl.DataFrame({"customer_id": ["a", "a"], "order_id": ["7", None], "timestamp": [T, T]})
    assert tx.select(order_key(tx.columns).is_null()).to_series().to_list() == [False, True]
