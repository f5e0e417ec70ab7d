"""The data-quality rules counted on Spark give the single-machine report (demo log: null ids,
duplicates, returns, outliers)."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.data.quality import RULES, QualityPolicy
from segmentation_lib.engine.spark_read import canonical_frame, clean_spark, to_polars
from segmentation_lib.errors import ConfigError, DataError


def _without_examples(report) -> dict:
    d = report.to_dict()
    d["rules"] = [{k: v for k, v in r.items() if k != "examples"} for r in d["rules"]]
    d.pop("source")
    return d


def test_quality_report_and_clean_log_equal_the_polars_path(polars_side, spark_side):
    tx, report, _ = polars_side
    clean, sreport, _ = spark_side
    assert report["null_customer"].rows > 0 and report["duplicates"].rows > 0 and report["returns"].rows > 0
    assert _without_examples(sreport) == _without_examples(report)
    assert sreport.rows_in - sum(r.excluded for r in sreport.rules) == sreport.rows_out
    keys = ["customer_id", "timestamp", "order_id", "product_id", "amount"]
    assert to_polars(clean).sort(keys).equals(tx.sort(keys))
    for rule in RULES:  # examples are rows failing the rule
        ex = sreport[rule].examples
        assert ex.height == min(5, sreport[rule].rows)


def test_policies_flag_and_exclude_outliers_and_the_error_policy(spark):
    import datetime as dt

    t = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    raw = pl.DataFrame({
        "cid": ["a", "a", "b", "c", " ", "d", "d"],
        "ts": [t, t, t, t, t, t, dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)],
        "amt": [5.0, 5.0, 0.0, 900.0, 3.0, -2.0, 4.0],
    })
    sdf = canonical_frame(spark.createDataFrame(raw.to_arrow()), {"customer_id": "cid", "timestamp": "ts", "amount": "amt"}, "tiny")
    clean, rep = clean_spark(sdf, as_of="2025-01-01", policy={"outliers": "exclude", "outlier_quantile": 0.6})
    assert {r.rule: r.excluded for r in rep.rules if r.excluded} == {
        "null_customer": 1, "future": 1, "duplicates": 1, "zero_amount": 1, "outliers": 1}
    assert rep.outlier_customers["customer_id"].to_list() == ["c"]
    assert sorted(to_polars(clean)["customer_id"].to_list()) == ["a", "d"]
    assert dict(zip(rep.dropped_customers["customer_id"], rep.dropped_customers["reason"])) == {
        "b": "zero_amount", "c": "outliers"}
    flagged, _ = clean_spark(sdf, as_of="2025-01-01", policy={"outliers": "flag", "outlier_quantile": 0.6})
    assert to_polars(flagged.filter("is_outlier"))["customer_id"].to_list() == ["c"]
    with pytest.raises(DataError, match="quality.null_customer is 'error'"):
        clean_spark(sdf, policy=QualityPolicy(null_customer="error"))


def test_unreadable_sources_give_clear_errors(spark, tmp_path):
    from segmentation_lib.engine.spark_read import read_source

    with pytest.raises(ConfigError, match="Parquet files or tables"):
        read_source(spark, {"path": "log.csv"})
    with pytest.raises(DataError, match="data.table"):
        read_source(spark, {"table": "no_such_db.no_such_table"})
    with pytest.raises(DataError, match="Spark cannot read"):
        read_source(spark, {"path": str(tmp_path / "missing")})
