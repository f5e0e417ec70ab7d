"""Benchmark: validate a 1M-customer segmentation on 2 cores.

Part A (synthetic blobs, 1M customers x 6 features, KMeans k=5): internal_quality, stability,
migration, actionability_checks, ground_truth_agreement, headline_metrics.
Part B (benchmarks/data/transactions_1000000_seed42.parquet, ~10.6M rows, ~1M customers, if
present): predictive_validity for two segmentations side by side.

    .venv/bin/python benchmarks/bench_validation.py [--n 1000000] [--skip-predictive]
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.datasets import make_blobs

from segmentation_lib.validate.actionability import actionability_checks
from segmentation_lib.validate.truth import ground_truth_agreement
from segmentation_lib.validate.headline import headline_metrics
from segmentation_lib.validate.separation import internal_quality
from segmentation_lib.validate.migration import migration
from segmentation_lib.validate.predictive import predictive_validity
from segmentation_lib.validate.stability import stability

DATA = Path(__file__).with_name("data") / "transactions_1000000_seed42.parquet"
timings: dict[str, float] = {}


def timed(name: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    timings[name] = round(time.perf_counter() - t, 2)
    print(f"{name:<28s} {timings[name]:8.2f} s", flush=True)
    return out


def simple_features(tx: pl.DataFrame, as_of) -> pl.DataFrame:
    """Fallback feature_fn when segmentation_lib.features is not importable."""
    as_of = pl.lit(as_of).cast(pl.Datetime("us", "UTC"))
    return tx.group_by("customer_id").agg(
        (as_of - pl.col("timestamp").max()).dt.total_days().alias("days_since_last"),
        pl.col("order_id").n_unique().alias("n_orders"),
        pl.col("amount").sum().alias("total_spend"),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--skip-predictive", action="store_true")
    args = ap.parse_args()
    n = args.n
    print(f"Part A: {n:,} synthetic customers x 6 features, KMeans k=5")
    X, y = make_blobs(n, centers=5, n_features=6, cluster_std=1.0, center_box=(-8, 8), random_state=0)
    model = KMeans(5, n_init=1, random_state=0).fit(X[:50_000])
    labels = timed("assign (predict)", model.predict, X)
    ids = pl.Series("customer_id", np.arange(n)).cast(pl.String)
    seg = pl.DataFrame({"customer_id": ids, "segment": labels})
    feats = pl.DataFrame(X, schema=[f"f{i}" for i in range(6)]).with_columns(
        ids, pl.Series("total_spend", np.exp(X[:, 0] / 4) * 100)
    )

    q = timed("internal_quality", internal_quality, X, labels, sample_size=10_000, dbcv=True)
    s = timed("stability (10 boot + 3 seed)", stability, KMeans(5, n_init=1), X, n_resamples=10, sample_size=20_000)
    rng = np.random.default_rng(1)
    moved = np.where(rng.random(n) < 0.1, rng.integers(0, 5, n), labels)
    after = pl.DataFrame({"customer_id": ids, "segment": moved}).sample(fraction=0.97, seed=1)
    m = timed("migration", migration, seg, after)
    c = timed("actionability_checks", actionability_checks, seg, features=feats, fidelity=0.9)
    truth = pl.DataFrame({"customer_id": ids, "archetype": y})
    t = timed("ground_truth_agreement", ground_truth_agreement, seg, truth)

    p = None
    if not args.skip_predictive and DATA.exists():
        print(f"Part B: predictive_validity on {DATA.name}")
        tx = pl.read_parquet(DATA)
        cutoff = (tx["timestamp"].max() - timedelta(days=90)).replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            from segmentation_lib.features.customer import customer_features as feature_fn

            feature_fn(tx.head(1000), cutoff)
        except Exception as exc:  # features module not ready: use the fallback
            print(f"  (segmentation_lib.features unavailable: {type(exc).__name__}; using simple_features)")
            feature_fn = simple_features

        def quintiles(f: pl.DataFrame) -> pl.DataFrame:
            r = (pl.col("days_since_last").rank("ordinal") * 5 / pl.len()).ceil().cast(pl.Int8)
            v = (pl.col("total_spend").rank("ordinal") * 5 / pl.len()).ceil().cast(pl.Int8)
            f = f.sort("customer_id")  # ordinal ranks break ties by row order: fix it
            return f.select("customer_id", pl.format("R{}V{}", (6 - r), v).alias("segment"))

        def clusters(f: pl.DataFrame) -> pl.DataFrame:
            cols = ["days_since_last", "n_orders", "total_spend"]
            M = f.select(pl.col(c).cast(pl.Float64).clip(0).log1p() for c in cols).to_numpy()
            M = (M - M.mean(0)) / M.std(0)
            km = MiniBatchKMeans(5, random_state=0, n_init=1, batch_size=4096).fit(M[:: max(1, len(M) // 50_000)])
            return f.select("customer_id").with_columns(pl.Series("segment", km.predict(M)))

        p = timed("predictive_validity", predictive_validity, tx, cutoff,
                  {"rfm_like": quintiles, "clusters": clusters}, holdout_days=90, feature_fn=feature_fn)
        print(p.separation.select("method", "n_segments", "customers", "eta_squared_spend",
                                  "eta_squared_log_spend", "purchase_rate_spread"))
        print({k: p.summary[k] for k in ("calibration_customers", "holdout_customers", "new_in_holdout_excluded")})
        try:  # Part C: stability of the kit's own segmenter on real features (skipped if not importable)
            from segmentation_lib.segment.clustering import CustomerSegmenter

            f = feature_fn(tx, tx["timestamp"].max() + timedelta(days=1))
            s_real = timed("stability CustomerSegmenter", stability, CustomerSegmenter(n_segments=5, random_state=0),
                           f, n_resamples=10, sample_size=20_000)
            print({k: s_real.summary[k] for k in ("ari_median", "ari_min", "ari_seed_median", "jaccard_min")})
            print(s_real.segments)
        except ImportError as exc:
            print(f"  (Part C skipped: {exc})")

    h = headline_metrics(q, s, p, m, c, t)
    print(json.dumps(h, indent=1))
    print("timings (s):", json.dumps(timings))
    print(f"total {sum(timings.values()):.1f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
