"""The Spark engine's stages: the report's data stage on Spark, and a whole scoring run on a cluster.

- :func:`spark_data` is what ``report/stages.py``'s data stage calls under ``engine.kind: spark``:
  the log is read, checked and turned into the feature table on Spark; Spark writes the clean log
  and the feature table as Parquet under the run's ``work/`` folder, and the report continues on
  those files (the same tables as the single-machine path, so the same segments).
- :func:`run_on_spark` is the cluster job (``spark-submit``, a Databricks job): read, check,
  features, RFM with edges learned on the engine, rule tiers, value/engagement, a model fitted on a
  seeded sample on the driver (or a saved ``model.joblib``) scoring every customer on the engine,
  and Spark writing ``assignments`` as Parquet (or a table). Nothing per transaction reaches the
  driver: only counts, edges, the sample and a few examples.

>>> summary = run_on_spark(load_config("configs/lake.yaml"), "s3://bucket/segments/2025-01-01")  # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import polars as pl

from segmentation_lib.engine.spark_features import customer_features
from segmentation_lib.engine.spark_read import spark_transactions
from segmentation_lib.engine.spark_segments import (cluster_scores, fit_rfm, fit_sample, rfm_scores, rfm_segments,
                                                    rule_segments, value_engagement)
from segmentation_lib.engine.spark_session import engine_settings, spark_session
from segmentation_lib.features.common import sort_by_text
from segmentation_lib.segment.rfm import scorer_from_config

#: columns of the assignments written by :func:`run_on_spark` (before the rule tier column)
ASSIGNMENT_COLS = ("customer_id", "r_score", "f_score", "m_score", "rfm_code", "rfm_segment", "value_engagement")
#: cluster id and name of customers with returns only (no purchase: nothing to cluster), as in the report
NO_PURCHASE_LABEL, NO_PURCHASE_NAME = -2, "No purchases (returns only)"


def write_parquet(sdf, target: str | Path, partitions: int | None = None) -> str:
    """Spark writes ``sdf`` to a Parquet folder (overwritten), or to a table when ``target`` is
    ``table:<name>``; returns where it went."""
    target = str(target)
    if partitions:
        sdf = sdf.coalesce(int(partitions))
    if target.startswith("table:"):
        sdf.write.mode("overwrite").saveAsTable(target[len("table:"):])
        return target
    sdf.write.mode("overwrite").parquet(target)
    return target


def read_spark_parquet(folder: str | Path) -> pl.DataFrame:
    """A Parquet folder written by Spark, on the driver (its part files); timestamps as the kit's
    ``Datetime("us", "UTC")`` (Spark writes UTC instants)."""
    frame = pl.read_parquet(str(Path(folder) / "*.parquet"))
    fix = []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime) and dtype != pl.Datetime("us", "UTC"):
            e = pl.col(name).dt.cast_time_unit("us")
            fix.append((e.dt.convert_time_zone("UTC") if dtype.time_zone else e.dt.replace_time_zone("UTC")).alias(name))
    return frame.with_columns(fix) if fix else frame


def spark_data(cfg: Mapping[str, Any], work: str | Path) -> tuple[pl.DataFrame, Any, pl.DataFrame]:
    """``(clean transactions, DataQualityReport, feature table)`` computed on Spark for the report.

    Spark writes ``work/spark_transactions/`` and ``work/spark_features/``; the two tables are read
    back (the report's pages and validation read the clean log on one machine, as in a polars run).
    The feature table is sorted by customer id like the single-machine one.
    """
    spark = spark_session(cfg)
    work = Path(work)
    clean, report = spark_transactions(spark, cfg)
    report.policy.check_excluded_share(report)
    windows = (cfg.get("features") or {}).get("windows") or (30, 90, 365)
    feats = customer_features(clean, report.as_of, windows=windows)
    partitions = engine_settings(cfg)["partitions"]
    write_parquet(clean, work / "spark_transactions", partitions)
    write_parquet(feats, work / "spark_features", partitions)
    clean.unpersist()
    tx = read_spark_parquet(work / "spark_transactions")
    tx = tx.sort("customer_id", "timestamp", maintain_order=True)
    features = sort_by_text(read_spark_parquet(work / "spark_features"), "customer_id")
    return tx, report, features


def fit_segmenter(cfg: Mapping[str, Any], features, seed: int):
    """A CustomerSegmenter of the ``clustering`` section fitted on a seeded sample (on the driver) of
    the customers with a purchase; the sample is the segmenter's own ``sample_size``."""
    from pyspark.sql import functions as F

    from segmentation_lib.segment.clustering import segmenter_from_config

    seg = segmenter_from_config(cfg["clustering"], random_state=seed)
    if seg.names:
        seg.set_params(names={int(k): v for k, v in seg.names.items()})
    buyers = features.filter(F.col("first_purchase").isNotNull())
    sample = fit_sample(buyers, int(seg.sample_size), seed)
    return seg.fit(sample), sample


def spark_assignments(cfg: Mapping[str, Any], features, scorer, seg):
    """Every customer's RFM scores and segment, value/engagement cell, rule tier and behavioural
    segment, as a Spark frame (customers with returns only get ``NO_PURCHASE_*``)."""
    from pyspark.sql import functions as F

    rc = cfg["rfm"]
    rule_col = (cfg.get("rules") or {}).get("segment_col") or "tier"
    scored = rfm_segments(rfm_scores(features, scorer), rc["segment_map"], bins=int(rc["bins"]) if not isinstance(rc["bins"], Mapping) else 5)
    scored = value_engagement(scored, **dict(rc.get("value_engagement") or {}))
    scored = rule_segments(scored, cfg["rules"]).select(*ASSIGNMENT_COLS, rule_col)
    clusters = cluster_scores(features.filter(F.col("first_purchase").isNotNull()), seg)
    return (scored.join(clusters, on="customer_id", how="left")
            .withColumn("cluster", F.coalesce(F.col("cluster"), F.lit(NO_PURCHASE_LABEL)))
            .withColumn("is_noise", F.coalesce(F.col("is_noise"), F.lit(False)))
            .withColumn("cluster_name", F.coalesce(F.col("cluster_name"), F.lit(NO_PURCHASE_NAME))))


def run_on_spark(cfg: Mapping[str, Any], out: str | Path, model: str | Path | None = None, seed: int | None = None,
                 spark=None) -> dict[str, Any]:
    """The whole segmentation on Spark; Spark writes ``<out>/assignments`` and ``<out>/features``
    (Parquet folders) and the driver writes ``data_quality.json``, ``rfm_edges.json``,
    ``model.joblib`` and ``summary.json`` into ``out`` when it is a local folder.

    ``model``: a saved ``model.joblib`` to score with (the scheduled case); otherwise a model is
    fitted on a seeded sample. Returns the summary (rows, customers, segment sizes, timings).
    """
    import time

    from segmentation_lib.score.persistence import load_model, save_model

    spark = spark or spark_session(cfg)
    seed = int(seed if seed is not None else (cfg.get("run") or {}).get("seed") or 42)
    out_s = str(out)
    local = "://" not in out_s and not out_s.startswith("table:")
    if local:
        Path(out_s).mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    clean, report = spark_transactions(spark, cfg)
    report.policy.check_excluded_share(report)
    times["read_and_quality"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    windows = (cfg.get("features") or {}).get("windows") or (30, 90, 365)
    from pyspark import StorageLevel

    feats = customer_features(clean, report.as_of, windows=windows).persist(StorageLevel.MEMORY_AND_DISK)
    n_customers = feats.count()
    clean.unpersist()
    times["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = fit_rfm(feats, scorer_from_config(cfg["rfm"]))
    times["rfm_edges"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if model is not None:
        seg = load_model(model)
    else:
        seg = fit_segmenter(cfg, feats, seed)[0]
    times["fit_on_sample"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    assignments = spark_assignments(cfg, feats, scorer, seg)
    target = f"{out_s}/assignments" if not out_s.startswith("table:") else out_s
    write_parquet(assignments, target, engine_settings(cfg)["partitions"])
    times["score_and_write"] = time.perf_counter() - t0
    sizes = {str(r["cluster_name"]): int(r["n"]) for r in
             spark.read.parquet(target).groupBy("cluster_name").count().withColumnRenamed("count", "n").collect()} \
        if not out_s.startswith("table:") else {}
    feats.unpersist()
    summary = {"rows_in": report.rows_in, "rows_out": report.rows_out, "customers": int(n_customers),
               "as_of": report.as_of.isoformat(), "k": int(seg.n_segments_), "segment_sizes": sizes,
               "seconds": {k: round(v, 2) for k, v in times.items()}, "assignments": target}
    if local:
        dq = report.to_dict()
        (Path(out_s) / "data_quality.json").write_text(json.dumps(dq, indent=2, default=str) + "\n", encoding="utf-8")
        scorer.save_edges(Path(out_s) / "rfm_edges.json")
        if model is None:
            save_model(seg, Path(out_s) / "model.joblib", extra={"as_of": report.as_of.isoformat(), "engine": "spark",
                                                                  "seed": seed})
        (Path(out_s) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    """``spark-submit segmentation_lib/engine/spark_stage.py --config cfg.yaml --out PATH [--model model.joblib]``."""
    import argparse

    from segmentation_lib.config import load_config
    from segmentation_lib.errors import SegmentationError

    parser = argparse.ArgumentParser(description="Segment customers on Spark (docs/spark.md).")
    parser.add_argument("--config", required=True, help="run configuration YAML (data.path / data.table, engine: ...)")
    parser.add_argument("--out", required=True, help="output folder or URI (assignments/ is written by Spark), or table:<name>")
    parser.add_argument("--model", default=None, help="a saved model.joblib to score with (default: fit on a sample)")
    args = parser.parse_args(argv)
    try:
        summary = run_on_spark(load_config(args.config), args.out, model=args.model)
    except SegmentationError as err:
        print(f"error: {err}")
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover - spark-submit entry point
    raise SystemExit(main())
