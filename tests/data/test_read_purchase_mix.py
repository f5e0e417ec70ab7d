"""The purchase-mix columns of the transaction log (data.columns.category / discount / list_price) and the
product table (data.products) as read by segmentation_lib.data.read and a run configuration."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.config import load_config, resolve_config
from segmentation_lib.data.quality import load_transactions
from segmentation_lib.data.read import load_products, read_transactions, resolve_mapping
from segmentation_lib.errors import ConfigError, DataError
from tests.conftest import check_message

MAPPING = {"customer_id": "cid", "timestamp": "ts", "amount": "total", "category": "Dept", "discount": "Saving",
           "list_price": "RRP"}


def write_log(path):
    path.write_text("cid,ts,total,Dept,Saving,RRP,channel\n"
                    "a,2024-01-05,12.5, Books ,$2.50,15,web\n"
                    "b,2024-01-06,3,,0,3,shop\n"
                    "c,2024-01-07,4,Toys,,n/a,shop\n", encoding="utf-8")
    return path


def test_mapped_mix_columns_are_read_typed(tmp_path):
    df = read_transactions(write_log(tmp_path / "log.csv"), columns=MAPPING).collect()
    assert df.schema["category"] == pl.String and df.schema["discount"] == pl.Float64
    assert df["category"].to_list() == ["Books", None, "Toys"]  # stripped; empty = null
    assert df["discount"].to_list() == [2.5, 0.0, None]  # currency symbol removed; empty = null
    assert df["list_price"].to_list() == [15.0, 3.0, None]  # unparseable = null (counted by the features)
    assert "Dept" not in df.columns and "Saving" not in df.columns and df["channel"].to_list() == ["web", "shop", "shop"]


def test_unmapped_mix_columns_stay_extras(tmp_path):
    df = read_transactions(write_log(tmp_path / "log.csv"),
                           columns={k: v for k, v in MAPPING.items() if k not in ("category", "discount", "list_price")}
                           | {"category": None}).collect()
    assert "category" not in df.columns and df.schema["Saving"] == pl.String  # the source column, untouched


def test_bad_mix_mappings(tmp_path):
    log = write_log(tmp_path / "log.csv")
    with pytest.raises(DataError) as err:
        read_transactions(log, columns={**MAPPING, "category": "Department"})
    check_message(err, "log.csv", "'Department'", "data.columns.category", "Dept")
    with pytest.raises(ConfigError) as err:
        read_transactions(log, columns={**MAPPING, "discount": "total"})
    check_message(err, "'total'", "amount and discount", "data.columns.discount")
    with pytest.raises(ConfigError) as err:
        read_transactions(log, columns={**MAPPING, "list_price": "Saving"})
    check_message(err, "'Saving'", "data.columns.list_price")
    with pytest.raises(ConfigError) as err:  # `discount: Off` unquoted in YAML
        read_transactions(log, columns={**MAPPING, "discount": False})
    check_message(err, "data.columns.discount is the boolean False", "quote")


def test_resolve_mapping_leaves_the_mix_keys_to_the_mix_reader():
    # the Spark engine checks data.columns with resolve_mapping: the mix keys are not unknown keys there
    cols = resolve_config({})["data"]["columns"]
    assert {"category", "discount", "list_price"} <= set(cols)
    mapping = resolve_mapping(["customer_id", "timestamp", "amount"], cols)
    assert set(mapping) == {"customer_id", "timestamp", "amount", "order_id", "product_id", "quantity", "unit_price"}


def test_configured_log_and_product_table(tmp_path):
    write_log(tmp_path / "log.csv")
    (tmp_path / "products.csv").write_text("sku,dept\nP1,Books\n", encoding="utf-8")
    (tmp_path / "cfg.yaml").write_text(
        "data:\n  path: log.csv\n"
        "  columns: {customer_id: cid, timestamp: ts, amount: total, category: Dept, discount: Saving}\n"
        "  customers: {path: null}\n  truth: null\n"
        "  products: {path: products.csv, columns: {product_id: sku, category: dept}}\n"
        "run: {as_of: '2024-02-01'}\n", encoding="utf-8")
    cfg = load_config(tmp_path / "cfg.yaml")
    tx, _ = load_transactions(cfg)  # the quality step keeps the mix columns
    assert tx.sort("customer_id")["category"].to_list() == ["Books", None, "Toys"]
    assert tx.schema["discount"] == pl.Float64 and "list_price" not in tx.columns
    table, report = load_products(cfg)  # path resolved against the configuration's folder
    assert table.rows() == [("P1", "Books")] and report["rows"] == 1
    with pytest.raises(ConfigError) as err:
        from segmentation_lib.data.read import read_products

        read_products(tmp_path / "products.csv", {"product_id": "sku", "dept": "dept"})
    check_message(err, "data.products.columns", "dept")


def test_stage_features_at_a_cutoff_carry_the_mix(tmp_path):
    from segmentation_lib.report.stages import features_at_cutoff

    write_log(tmp_path / "log.csv")
    cfg = resolve_config({"data": {"path": str(tmp_path / "log.csv"), "customers": {"path": None}, "truth": None,
                                   "columns": MAPPING}, "run": {"as_of": "2024-02-01"}}, tmp_path)
    tx, _ = load_transactions(cfg)
    with pytest.warns(UserWarning, match="null category"):
        f = features_at_cutoff(cfg, tx, dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc))
    assert f.select("customer_id", "dominant_category", "share_spend_on_discount").rows() == \
        [("a", "Books", 1.0), ("b", None, 0.0), ("c", "Toys", 0.0)]
