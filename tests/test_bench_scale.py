"""benchmarks/bench_scale.py: the chunked demo generator gives disjoint ids and the requested counts."""
from __future__ import annotations

import importlib.util
import json

import polars as pl

from segmentation_lib.data.demo import make_transactions
from segmentation_lib.paths import REPO_DIR


def _bench():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO_DIR / "benchmarks" / "bench_scale.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_chunked_generator_disjoint_ids_and_counts(tmp_path) -> None:
    bench = _bench()
    man = bench.write_chunked_demo(tmp_path, 1_003, chunk_customers=250, seed=9)  # 5 chunks, the last of 3
    tx = pl.read_parquet(tmp_path / "transactions" / "*.parquet")
    customers = pl.read_parquet(tmp_path / "customers.parquet")
    truth = pl.read_parquet(tmp_path / "truth.parquet")
    assert man["parts"] == 5 and json.loads((tmp_path / "manifest.json").read_text()) == man
    # exactly the requested customers, numbered 1..n without gaps or repeats
    assert customers.height == truth.height == 1_003
    assert customers["customer_id"].to_list() == [f"C{i:08d}" for i in range(1, 1_004)]
    assert set(tx["customer_id"].drop_nulls()) == set(customers["customer_id"])
    # rows: the sum of the chunks' own logs (each make_transactions with its own seed)
    sizes = [250, 250, 250, 250, 10]
    expected = sum(make_transactions(n_customers=n, seed=9 + i).transactions.height for i, n in enumerate(sizes[:4]))
    last = make_transactions(n_customers=10, seed=13).transactions
    expected += last.filter(pl.col("customer_id").is_in(["C0000001", "C0000002", "C0000003"])
                            | pl.col("customer_id").is_null()).height
    assert man["rows"]["transactions"] == tx.height == expected
    # order ids of different chunks never collide: every order belongs to one customer (or guest)
    per_order = tx.group_by("order_id").agg(pl.col("customer_id").n_unique())
    assert per_order["customer_id"].max() == 1
    first_part = pl.read_parquet(tmp_path / "transactions" / "part-00000.parquet")
    assert first_part.equals(bench._renumber(make_transactions(n_customers=250, seed=9).transactions, 0, 8, 0))


def test_parse_size() -> None:
    bench = _bench()
    assert [bench.parse_size(s) for s in ("10M", "30m", "2.5k", "1234")] == [10_000_000, 30_000_000, 2_500, 1_234]
    assert bench.customers_for(100_000_000) == 10_000_000
    assert [bench.size_label(n) for n in (10_000_000, 100_000, 1_234)] == ["10M", "100k", "1234"]
