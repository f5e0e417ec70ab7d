"""segmentation_lib.features.purchase_mix: category affinity and discount sensitivity on a hand-computed
log, against a plain group-by written here, the product table's counts and errors, and the join onto the
customer feature table (customer.with_purchase_mix)."""
from __future__ import annotations

import datetime as dt
import warnings
from collections import defaultdict

import numpy as np
import polars as pl
import pytest

from segmentation_lib.config import resolve_config
from segmentation_lib.data.demo import DEMO_CATEGORIES, make_transactions
from segmentation_lib.data.read import read_products
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.customer import customer_features, with_purchase_mix
from segmentation_lib.features.purchase_mix import (category_slug, join_purchase_mix, mix_notes,
                                                    purchase_mix_features, share_columns)
from tests.conftest import check_message

UTC = dt.timezone.utc
AS_OF = dt.datetime(2024, 3, 1, tzinfo=UTC)


def at(month: int, day: int) -> dt.datetime:
    return dt.datetime(2024, month, day, 12, tzinfo=UTC)


# a: two orders, Books 50 and Toys 10 (the Toys line 2 off), a return and a line after as_of (neither counts)
# b: one order, Toys 25 (5 off) and Games 25: a tie for the dominant category (Games: first in text order)
# c: an uncategorised line with a negative discount and a Books line with no discount value
# d: only a return: no purchase line
LOG = pl.DataFrame({
    "customer_id": ["a", "a", "a", "a", "a", "b", "b", "c", "c", "d"],
    "order_id": ["o1", "o1", "o2", "o2", "o9", "o3", "o3", "o4", "o5", "o6"],
    "timestamp": [at(1, 5), at(1, 5), at(2, 1), at(2, 1), at(3, 2), at(1, 10), at(1, 10), at(1, 3), at(1, 4), at(1, 6)],
    "amount": [30.0, 10.0, 20.0, -10.0, 100.0, 25.0, 25.0, 8.0, 4.0, -5.0],
    "category": ["Books", "Toys", "Books", "Toys", "Games", "Toys", "Games", None, "Books", "Books"],
    "discount": [0.0, 2.0, 0.0, 0.0, 0.0, 5.0, 0.0, -1.0, None, 0.0],
})


def test_hand_computed_category_and_discount_features():
    f, report = purchase_mix_features(LOG, AS_OF, top=2)
    assert f.columns == ["customer_id", "spend_share_books", "spend_share_toys", "spend_share_other",
                         "spend_share_unknown", "n_categories", "dominant_category",
                         "share_orders_on_discount", "share_spend_on_discount"]
    # category totals before as_of: Books 54, Toys 35, Games 25 (other), unknown 8
    expected = [
        ("a", 50 / 60, 10 / 60, 0.0, 0.0, 2, "Books", 1 / 2, 10 / 60),
        ("b", 0.0, 0.5, 0.5, 0.0, 2, "Games", 1.0, 0.5),
        ("c", 4 / 12, 0.0, 0.0, 8 / 12, 1, "Books", 0.0, 0.0),
    ]
    assert [r[0] for r in f.rows()] == ["a", "b", "c"]
    for got, want in zip(f.rows(), expected):
        assert got[5:7] == want[5:7]
        assert got[1:5] + got[7:] == pytest.approx(want[1:5] + want[7:], abs=1e-12)
    assert report["purchase_lines"] == 7
    assert [t["category"] for t in report["categories"]["top"]] == ["Books", "Toys"]
    assert report["categories"]["top"][0]["spend"] == 54.0
    assert report["categories"]["distinct"] == 3
    assert report["categories"]["null_category"] == 1 and report["categories"]["lines_without_category"] == 1
    assert report["categories"]["uncategorised_spend"] == 8.0
    assert report["discount"] == {"columns": ["discount"], "lines_on_discount": 2, "negative_discount": 1,
                                  "null_discount": 1}
    note = mix_notes(report)
    assert "of 7 purchase lines" in note and "1 with a negative discount" in note and "1 with a null category" in note


def test_shares_sum_to_one_and_top_larger_than_the_categories():
    f, _ = purchase_mix_features(LOG.drop("discount"), AS_OF, top=10)
    shares = [c for c in f.columns if c.startswith("spend_share_")]
    assert shares == ["spend_share_books", "spend_share_toys", "spend_share_games", "spend_share_other",
                      "spend_share_unknown"]
    assert f.select(pl.sum_horizontal(shares)).to_series().to_list() == pytest.approx([1.0, 1.0, 1.0])
    assert "share_orders_on_discount" not in f.columns


def test_list_price_against_the_paid_unit_price():
    t = at(1, 1)
    log = pl.DataFrame({
        "customer_id": ["x", "x", "y", "y"], "order_id": ["1", "2", "3", "4"], "timestamp": [t] * 4,
        "amount": [18.0, 5.0, 7.0, 3.0], "quantity": [2.0, 1.0, 1.0, 1.0], "unit_price": [9.0, 5.0, 7.0, 3.0],
        "list_price": [10.0, 5.0, 6.0, None],  # on discount; full price; below the paid price; missing
    })
    f, report = purchase_mix_features(log, AS_OF)
    assert f.rows() == [("x", 0.5, 18 / 23), ("y", 0.0, 0.0)]
    assert report["discount"] == {"columns": ["list_price"], "lines_on_discount": 1, "list_price_below_paid": 1,
                                  "null_list_price": 1}
    # without unit_price the paid unit price is amount / quantity (20 / 2 = 10 < 12: on discount)
    f2, _ = purchase_mix_features(pl.DataFrame({"customer_id": ["z"], "timestamp": [t], "amount": [20.0],
                                                "quantity": [2.0], "list_price": [12.0]}), AS_OF)
    assert f2.row(0) == ("z", 1.0, 1.0)


def reference(rows: list[dict], as_of: dt.datetime, top: int) -> tuple[dict, list[str]]:
    """Plain Python group-by: per customer the spend per category and discount counts (independent of the module)."""
    spend = defaultdict(lambda: defaultdict(float))
    orders, disc_orders, disc_spend = defaultdict(set), defaultdict(set), defaultdict(float)
    for r in rows:
        if r["timestamp"] >= as_of or r["customer_id"] is None or r["amount"] <= 0:
            continue
        cid = r["customer_id"]
        spend[cid][r["category"]] += r["amount"]
        orders[cid].add(r["order_id"])
        if r["discount"] is not None and r["discount"] > 0:
            disc_orders[cid].add(r["order_id"])
            disc_spend[cid] += r["amount"]
    per_cat = defaultdict(float)
    for cats in spend.values():
        for cat, v in cats.items():
            if cat is not None:
                per_cat[cat] += v
    ranked = sorted(per_cat, key=lambda k: (-round(per_cat[k], 6), k))[:top]
    out = {}
    for cid, cats in spend.items():
        total = sum(cats.values())
        known = {k: v for k, v in cats.items() if k is not None}
        best = min(known, key=lambda k: (-round(known[k], 6), k)) if known else None
        out[cid] = {
            **{k: cats.get(k, 0.0) / total for k in ranked},
            "other": sum(v for k, v in known.items() if k not in ranked) / total,
            "unknown": cats.get(None, 0.0) / total,
            "n_categories": len(known), "dominant": best,
            "orders": len(disc_orders[cid]) / len(orders[cid]), "spend": disc_spend[cid] / total,
        }
    return out, ranked


def test_matches_a_plain_group_by_on_a_random_log():
    rng = np.random.default_rng(11)
    n = 4000
    cats = np.array(["Books", "Toys", "Home & Garden", "Games", "Food", "Pets", "Tools"])
    log = pl.DataFrame({
        "customer_id": rng.integers(0, 300, n).astype(str),
        "order_id": rng.integers(0, 1500, n).astype(str),
        "timestamp": [AS_OF - dt.timedelta(days=int(d)) for d in rng.integers(-20, 400, n)],
        "amount": rng.integers(-3, 12, n).astype(float),  # whole amounts: ties for the dominant category
        "category": np.where(rng.random(n) < 0.05, None, cats[rng.integers(0, len(cats), n)]),
        "discount": np.where(rng.random(n) < 0.3, rng.integers(-1, 4, n), 0).astype(float),
    }).with_columns(pl.col("customer_id").str.replace("^7$", None).alias("customer_id"))  # a few null ids
    got, report = purchase_mix_features(log, AS_OF, top=4)
    want, ranked = reference(log.to_dicts(), AS_OF, top=4)
    assert [t["category"] for t in report["categories"]["top"]] == ranked
    assert sorted(want) == got["customer_id"].to_list()
    cols = share_columns(ranked)
    ties = 0
    for row in got.iter_rows(named=True):
        w = want[row["customer_id"]]
        for col, name in cols.items():
            assert row[col] == pytest.approx(w[name], abs=1e-9)
        assert row["spend_share_other"] == pytest.approx(w["other"], abs=1e-9)
        assert row["spend_share_unknown"] == pytest.approx(w["unknown"], abs=1e-9)
        assert (row["n_categories"], row["dominant_category"]) == (w["n_categories"], w["dominant"])
        assert row["share_orders_on_discount"] == pytest.approx(w["orders"], abs=1e-12)
        assert row["share_spend_on_discount"] == pytest.approx(w["spend"], abs=1e-9)
    spend = log.filter(pl.col("amount") > 0, pl.col("timestamp") < AS_OF, pl.col("category").is_not_null()) \
        .group_by("customer_id", "category").agg(pl.col("amount").sum())
    ties = spend.filter(pl.col("amount") == pl.col("amount").max().over("customer_id")) \
        .group_by("customer_id").len().filter(pl.col("len") > 1).height
    assert ties > 10  # the tie rule was exercised


def test_safe_distinct_column_names():
    assert category_slug("Kids' Toys (3+)") == "kids_toys_3"
    names = share_columns(["Books", "BOOKS", "Unknown", "???", "Café"])
    assert list(names) == ["spend_share_books", "spend_share_books_2", "spend_share_unknown_2",
                           "spend_share_category", "spend_share_cafe"]
    assert all(c.replace("_", "").isalnum() and c.isascii() for c in names)


def test_product_table_counts_and_id_types(tmp_path):
    t = at(1, 1)
    log = pl.DataFrame({"customer_id": ["a", "a", "a", "a", "b"], "timestamp": [t] * 5,
                        "order_id": ["1", "1", "1", "1", "2"], "amount": [10.0, 20.0, 30.0, 40.0, 5.0],
                        "product_id": [1, 2, 3, None, 1]})  # integer ids in the log, text in the table
    pl.DataFrame({"sku": ["1", "2", "9", "1", None], "dept": ["A", "", "B", "A", "C"]}).write_csv(tmp_path / "p.csv")
    table, read_report = read_products(tmp_path / "p.csv", {"product_id": "sku", "category": "dept"})
    assert read_report == {"rows": 5, "duplicate_rows": 1, "null_product_ids": 1, "null_categories": 1}
    f, report = purchase_mix_features(log, AS_OF, products=table)
    assert f.select("customer_id", "spend_share_a", "spend_share_unknown", "n_categories", "dominant_category").rows() \
        == [("a", 0.1, 0.9, 1, "A"), ("b", 1.0, 0.0, 1, "A")]
    cats = report["categories"]
    assert (cats["null_category"], cats["product_not_in_table"], cats["product_id_null"]) == (1, 1, 1)
    assert cats["lines_without_category"] == 3 and cats["source"] == "data.products"
    # the log's own category comes first, the table's fills its gaps
    f2, r2 = purchase_mix_features(log.with_columns(category=pl.Series(["Z", None, None, None, None])), AS_OF,
                                   products=table, columns=["category"])
    assert f2.filter(pl.col("customer_id") == "a")["dominant_category"].item() == "Z"
    assert r2["categories"]["source"] == "data.columns.category and data.products"


def test_product_table_with_two_categories_for_one_product(tmp_path):
    pl.DataFrame({"sku": ["p1", "p1", "p2"], "dept": ["Toys", "Books", "Toys"]}).write_csv(tmp_path / "products.csv")
    with pytest.raises(DataError) as err:
        read_products(tmp_path / "products.csv", {"product_id": "sku", "category": "dept"})
    check_message(err, "products.csv", "column 'sku'", "column 'dept'", "'p1'", "one row per product")
    pl.DataFrame({"sku": ["p1"]}).write_csv(tmp_path / "nocat.csv")
    with pytest.raises(DataError) as err:
        read_products(tmp_path / "nocat.csv", {"product_id": "sku"})
    check_message(err, "nocat.csv", "data.products.columns.category")


def test_bad_calls_are_refused():
    with pytest.raises(ConfigError):
        purchase_mix_features(LOG, AS_OF, top=0)
    with pytest.raises(ConfigError):
        purchase_mix_features(LOG.drop("category", "discount"), AS_OF)
    with pytest.raises(DataError) as err:
        purchase_mix_features(LOG.drop("category"), AS_OF, products=pl.DataFrame({"product_id": ["x"], "category": ["A"]}))
    check_message(err, "product_id")
    with pytest.raises(ConfigError) as err:
        resolve_config({"features": {"categories": {"top": 0}}})
    check_message(err, "features.categories.top")


def test_joined_onto_the_feature_table_from_the_configuration(tmp_path):
    feats = customer_features(LOG.drop("category", "discount"), AS_OF)
    cfg = resolve_config({"data": {"columns": {"customer_id": "customer_id", "category": "category",
                                               "discount": "discount"}},
                          "features": {"categories": {"top": 2}}}, tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        joined, report = with_purchase_mix(feats, LOG, cfg, AS_OF)
    assert any("negative discount" in str(w.message) for w in caught)
    assert joined["customer_id"].to_list() == feats["customer_id"].to_list() == ["a", "b", "c", "d"]
    assert joined.columns[:len(feats.columns)] == feats.columns
    d = joined.row(3, named=True)  # only a return: zeros, no dominant category
    assert (d["spend_share_books"], d["n_categories"], d["dominant_category"], d["share_spend_on_discount"]) == (0.0, 0, None, 0.0)
    assert report["customers"] == 3
    # nothing configured: the table is unchanged
    assert with_purchase_mix(feats, LOG, resolve_config({}, tmp_path), AS_OF) == (feats, None)
    # integer customer ids in the features meet text ids in the mix table
    m = pl.DataFrame({"customer_id": ["1"], "n_categories": [3]})
    assert join_purchase_mix(pl.DataFrame({"customer_id": [1, 2]}), m).rows() == [(1, 3), (2, 0)]


def test_demo_mix_columns_are_off_by_default_and_leave_the_log_unchanged():
    plain = make_transactions(n_customers=300, seed=4)
    mixed = make_transactions(n_customers=300, seed=4, categories=True, discounts=True)
    assert "category" not in plain.transactions.columns and "categories" not in plain.params
    assert mixed.transactions.drop("category", "discount").equals(plain.transactions)
    assert mixed.customers.equals(plain.customers) and mixed.truth.equals(plain.truth)
    tx = mixed.transactions
    assert set(tx["category"].unique()) <= set(DEMO_CATEGORIES)
    assert (tx.filter(pl.col("amount") <= 0)["discount"] == 0).all() and (tx["discount"] >= 0).all()
    # exact duplicates of the log stay exact duplicates
    assert tx.is_duplicated().sum() == plain.transactions.is_duplicated().sum()
    f, _ = purchase_mix_features(tx, "2025-01-01")
    by = f.join(mixed.truth, on="customer_id").group_by("archetype").agg(pl.col("share_spend_on_discount").mean())
    share = dict(by.iter_rows())
    assert share["explorer"] > 0.35 > 0.12 > share["power"]  # planted 0.5 and 0.05


def test_fixed_category_list_gives_the_same_columns_every_run():
    f, report = purchase_mix_features(LOG, AS_OF, categories=["Toys", "Garden"])
    assert f.columns[1:5] == ["spend_share_toys", "spend_share_garden", "spend_share_other", "spend_share_unknown"]
    assert f.select("spend_share_toys", "spend_share_garden", "spend_share_other").rows() == \
        [(10 / 60, 0.0, 50 / 60), (0.5, 0.0, 0.5), (0.0, 0.0, 4 / 12)]
    assert report["categories"]["chosen_by"] == "features.categories.names"
    assert [t["spend"] for t in report["categories"]["top"]] == [35.0, 0.0]
    with pytest.raises(ConfigError):
        purchase_mix_features(LOG, AS_OF, categories=["Toys", "Toys"])
    with pytest.raises(ConfigError) as err:
        resolve_config({"features": {"categories": {"names": ["Toys", "Toys"]}}})
    check_message(err, "features.categories.names")
    cfg = resolve_config({"data": {"columns": {"customer_id": "customer_id", "category": "category"}},
                          "features": {"categories": {"names": ["Books"]}}})
    joined, _ = with_purchase_mix(pl.DataFrame({"customer_id": ["a", "b", "c", "d"]}), LOG, cfg, AS_OF)
    assert joined.columns == ["customer_id", "spend_share_books", "spend_share_other", "spend_share_unknown",
                              "n_categories", "dominant_category"]


def test_same_table_whatever_the_row_order():
    rng = np.random.default_rng(2)
    n = 20_000
    log = pl.DataFrame({
        "customer_id": rng.integers(0, 500, n).astype(str), "order_id": rng.integers(0, 5000, n).astype(str),
        "timestamp": [at(1, 1)] * n, "amount": np.round(rng.lognormal(2.0, 1.0, n), 2),
        "category": np.array(["A", "B", "C", "D"])[rng.integers(0, 4, n)],
        "discount": np.where(rng.random(n) < 0.3, 1.5, 0.0),
    })
    first, _ = purchase_mix_features(log, AS_OF)
    for seed in (1, 2):
        again, _ = purchase_mix_features(log.sample(fraction=1.0, shuffle=True, seed=seed), AS_OF)
        assert again.equals(first)  # bit-identical: money sums are rounded before the shares
