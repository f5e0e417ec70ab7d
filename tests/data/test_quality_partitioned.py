"""clean_transactions_to (the out-of-core quality step): the same clean rows and the same report as the
in-memory clean_transactions, whatever the number of customer partitions."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.data.demo import make_transactions
from segmentation_lib.data.quality import clean_transactions, clean_transactions_to
from segmentation_lib.data.read import read_transactions
from tests.data.test_quality import LOG

UTC = dt.timezone.utc


def _same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns and a.schema == b.schema
    assert a.height == b.height
    assert a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True))


def _both(lf, tmp_path, partitions, **kw):
    clean, rep = clean_transactions(lf, **kw)
    rep_p = clean_transactions_to(lf, tmp_path / "clean", partitions=partitions, **kw)
    parts = sorted((tmp_path / "clean").glob("part-*.parquet"))
    return clean, rep, pl.concat([pl.read_parquet(p) for p in parts]), rep_p, parts


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_hand_counted_log_partitioned_equals_in_memory(tmp_path, partitions):
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    clean, rep, clean_p, rep_p, parts = _both(read_transactions(path), tmp_path, partitions,
                                              as_of="2024-02-01", source=str(path))
    _same_rows(clean, clean_p)
    assert rep_p.to_dict() == rep.to_dict()  # counts, customers, examples (first in file order), as_of
    assert rep_p.rows_out == 4 and rep_p["duplicates"].excluded == 1  # the hand count of test_quality.LOG
    assert rep_p.dropped_customers.equals(rep.dropped_customers)
    assert 1 <= len(parts) <= partitions


@pytest.mark.parametrize("outliers", ["keep", "flag", "exclude"])
def test_demo_log_partitioned_equals_in_memory(tmp_path, outliers):
    tx = make_transactions(n_customers=3_000, seed=5).transactions  # nulls, duplicates, returns planted
    policy = {"outliers": outliers, "outlier_quantile": 0.99}
    clean, rep, clean_p, rep_p, parts = _both(tx.lazy(), tmp_path, 4, policy=policy)
    assert len(parts) == 4
    _same_rows(clean, clean_p)
    assert rep_p.to_dict() == rep.to_dict()
    assert rep_p.outlier_customers.equals(rep.outlier_customers) and rep.outlier_customers.height == 30
    assert rep_p.rows_in == tx.height and rep_p["null_customer"].excluded > 0 and rep_p["duplicates"].rows > 0
    # customers are never split between parts
    ids = [set(pl.read_parquet(p)["customer_id"]) for p in parts]
    assert sum(map(len, ids)) == len(set().union(*ids)) == rep.customers_out


def test_mixed_zones_partitioned_equals_in_memory(tmp_path):
    path = tmp_path / "tz.csv"
    path.write_text("customer_id,timestamp,amount\n" + "".join(
        f"c{i},2024-01-0{1 + i % 5}T10:00:00{['+01:00', '+0100', '+02:00', 'Z', ''][i % 5]},{i + 1}\n" for i in range(40)))
    clean, rep, clean_p, rep_p, _ = _both(read_transactions(path), tmp_path, 3)
    _same_rows(clean, clean_p)
    a, b = rep["mixed_time_zones"], rep_p["mixed_time_zones"]
    assert (a.rows, a.excluded, a.customers, a.details) == (b.rows, b.excluded, b.customers, b.details)
    assert a.examples.equals(b.examples) and a.examples.height == 5
    assert rep["mixed_time_zones"].rows == 24  # +0200, Z and naive rows differ from +0100 (16 rows)
