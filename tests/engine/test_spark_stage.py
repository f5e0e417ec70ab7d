"""The cluster job on Spark writes the same assignments as the single-machine stages."""
from __future__ import annotations

import json

import numpy as np
import polars as pl

from segmentation_lib.engine.spark_stage import NO_PURCHASE_LABEL, main, read_spark_parquet, run_on_spark
from segmentation_lib.features.common import sort_by_text
from segmentation_lib.report.stages import make_segmenter, purchasing, rfm_assign


def test_run_on_spark_writes_the_single_machine_assignments(spark, demo_cfg, polars_side, tmp_path):
    _, report, features = polars_side
    cfg = dict(demo_cfg, clustering=dict(demo_cfg["clustering"], k=4))
    summary = run_on_spark(cfg, tmp_path / "out", spark=spark)
    got = sort_by_text(read_spark_parquet(tmp_path / "out" / "assignments"), "customer_id")
    expected = rfm_assign(features, cfg)
    cols = ["customer_id", "r_score", "f_score", "m_score", "rfm_code", "rfm_segment", "value_engagement", "tier"]
    assert got.select(cols).equals(expected.select(cols))
    buyers = purchasing(features)
    labels = make_segmenter(cfg, int(cfg["run"]["seed"])).fit(buyers).predict(buyers)
    clusters = got.join(buyers.select("customer_id"), on="customer_id", how="semi")["cluster"].to_numpy()
    np.testing.assert_array_equal(clusters, labels)
    no_purchase = got.filter(pl.col("cluster") == NO_PURCHASE_LABEL).height
    assert no_purchase == features.height - buyers.height
    assert summary["rows_out"] == report.rows_out and summary["customers"] == features.height and summary["k"] == 4
    assert sum(summary["segment_sizes"].values()) == features.height
    for name in ("data_quality.json", "rfm_edges.json", "model.joblib", "summary.json"):
        assert (tmp_path / "out" / name).is_file()
    assert json.loads((tmp_path / "out" / "data_quality.json").read_text())["rows_in"] == report.rows_in


def test_the_spark_submit_entry_point_reports_bad_configuration(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("engine: {kind: spark, partitions: 0}\n", encoding="utf-8")
    assert main(["--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "engine.partitions" in capsys.readouterr().out
