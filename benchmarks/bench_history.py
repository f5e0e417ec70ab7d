"""Scoring with a reference at scale: a scheduled run on a second snapshot with the first run's frozen model.

Generates two snapshots of one demo customer base (``make_snapshots``, default 1,000,000 customers,
270 days apart), fits the reference on snapshot 1 (as a first run does), then times what a run with
``run.reference`` does on snapshot 2 instead of fitting: load the model, score RFM with the frozen
edges, map, value/engagement cuts and rules, assign the behavioural segments with the frozen model;
and what the history stage adds: the comparison with the previous run for the four methods (transition
matrices, size/revenue change, movers with their main reason), segment_history rows, drift (PSI, share
shift) and the per-segment export CSVs. Baseline: the refit the frozen scoring replaces. Prints seconds
per step and the planted vs recovered movers.

    .venv/bin/python benchmarks/bench_history.py --n 1000000
"""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    args = ap.parse_args()

    from segmentation_lib.config import load_config
    from segmentation_lib.data.demo import make_snapshots
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.paths import REPO_DIR
    from segmentation_lib.report import history as hist
    from segmentation_lib.report.stages import make_segmenter, purchasing, rfm_assign
    from segmentation_lib.score.persistence import load_model, save_model
    from segmentation_lib.segment.rfm import RFMScorer
    from segmentation_lib.segment.rfm_maps import load_segment_map
    from segmentation_lib.segment.value_engagement import value_engagement_cuts
    from segmentation_lib.validate.drift import drift_report, feature_bins

    t = {}
    t0 = time.perf_counter()
    s = make_snapshots(n_customers=args.n, seed=42)
    t["generate both snapshots"] = time.perf_counter() - t0

    def feats(tx, as_of):
        tx = tx.filter(pl.col("customer_id").is_not_null()).unique(maintain_order=True)
        return customer_features(tx, dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.timezone.utc))

    t0 = time.perf_counter()
    f1, f2 = feats(s.first.transactions, s.first.params["as_of"]), feats(s.second.transactions, s.second.params["as_of"])
    t["features, both snapshots"] = time.perf_counter() - t0
    cfg = load_config(REPO_DIR / "configs" / "default.yaml", overrides={"data": {"customers": {"path": None}, "truth": None}})
    cols = list(cfg["clustering"]["features"])
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-"))

    def assignments(f, scorer, model, rfm_cfg):
        a = rfm_assign(f, rfm_cfg, scorer)
        p = purchasing(f)
        lab, noise = model.predict_with_noise(p)
        names = {int(k): v for k, v in model.segment_names_.items()}
        cl = pl.DataFrame({"customer_id": p["customer_id"], "cluster": pl.Series(lab, dtype=pl.Int32)}).with_columns(
            pl.col("cluster").replace_strict(names, default="Noise", return_dtype=pl.String).alias("cluster_name"))
        return a.select("customer_id", "r_score", "f_score", "m_score", "rfm_code", "rfm_segment", "value_engagement",
                        "tier").join(cl, on="customer_id", how="left")

    # the first run: fit (the baseline a frozen run avoids), save model, edges and cuts
    t0 = time.perf_counter()
    model = make_segmenter(cfg, 42).fit(purchasing(f1))
    scorer = RFMScorer(bins=5).fit(f1)
    t["baseline: refit clustering + RFM edges (snapshot 1)"] = time.perf_counter() - t0
    save_model(model, tmp / "model.joblib")
    scorer.save_edges(tmp / "rfm_edges.json")
    cuts = value_engagement_cuts(f1)
    a1 = assignments(f1, scorer, model, cfg)
    bins = feature_bins(purchasing(f1).fill_null(0), cols)

    # the scheduled run with the reference
    t0 = time.perf_counter()
    frozen = load_model(tmp / "model.joblib")
    fcfg = {**cfg, "rfm": {**cfg["rfm"], "value_engagement": {"value_cut": cuts["value"], "engagement_cut": cuts["engagement"],
                                                             "absolute": True}}}
    a2 = assignments(f2, RFMScorer.from_edges(tmp / "rfm_edges.json"), frozen, fcfg)
    t["frozen scoring: load model, RFM + map + cells + rules, clusters"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = hist.methods(cfg)
    sizes1, sizes2 = hist.sizes_table(a1, f1, m), hist.sizes_table(a2, f2, m)
    seg_map = load_segment_map("default", bins=5)
    cmp = hist.compare_runs(a1, a2, sizes1, sizes2, m, 5, {"rfm": list(seg_map.segments)})
    cmp.movers.write_csv(tmp / "movers.csv")
    h = hist.history_rows(a2, m, s.second.params["as_of"], "bench", a1, None)
    h.write_parquet(tmp / "segment_history.parquet")
    t["comparison (4 methods), movers.csv, segment_history"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    d = drift_report(bins, purchasing(f2).fill_null(0), a1.drop_nulls("cluster_name").select(pl.col("cluster_name").alias("segment")),
                     a2.drop_nulls("cluster_name").select(pl.col("cluster_name").alias("segment")))
    t["drift: PSI of 6 features + share shift"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    files = hist.write_exports(tmp, a2, f2, {"rfm": ["r_score", "f_score", "m_score", "days_since_last", "n_orders", "total_spend"],
                                             "behavioural": cols}, {"rfm": dict(seg_map.actions)})
    t["exports: one CSV per segment (2 methods)"] = time.perf_counter() - t0

    print(f"customers: {f2.height:,} (snapshot 2), transactions: {s.second.transactions.height:,}")
    for k, v in t.items():
        print(f"{k:<66s} {v:7.2f} s")
    frozen_s = t["frozen scoring: load model, RFM + map + cells + rules, clusters"]
    print(f"frozen scoring vs refit: {frozen_s / t['baseline: refit clustering + RFM edges (snapshot 1)']:.2f}x")
    planted = s.movements.filter("planted").select("customer_id")
    beh = cmp.movers.filter(pl.col("method") == "behavioural").join(planted, on="customer_id")
    print(f"planted movers {planted.height:,}; of them moved between behavioural segments {beh.height:,}; "
          f"flows: {beh.group_by('from_segment', 'to_segment').len().sort('len', descending=True).head(3).rows()}")
    print(f"drift recommendation: {d.recommendation} ({'; '.join(d.reasons)}); movers rows {cmp.movers.height:,}; "
          f"export files {len(files)}")


if __name__ == "__main__":
    main()
