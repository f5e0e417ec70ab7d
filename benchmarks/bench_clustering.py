"""Benchmark: clustering one million customers (sweep + fit + assign, HDBSCAN, scoring).

Each step runs in its own subprocess so its peak memory (``resource.getrusage`` maxrss) is its
own (it includes the interpreter, the libraries and the feature table read from Parquet). Seconds
exclude the library imports and the Parquet read (reported as ``import_s``). Figures are printed as a table with the ratio to a baseline measured the same way: plain
``KMeans(5)`` on all rows of the standardised features.

Steps (targets from issue 4, 2 cores):
- ``kmeans``: CustomerSegmenter() default config: k sweep 2..10 with sampled metrics, final fit,
  assignment of every customer (< 60 s, < 3 GB);
- ``hdbscan``: CustomerSegmenter(algorithm="hdbscan") (< 120 s, < 4 GB);
- ``score``: load the saved k-means model and score every customer (< 5 s);
- ``hdbscan_assign``: nearest-neighbour assignment vs ``hdbscan.approximate_predict`` on 100k
  customers (the measurement behind the default ``hdbscan_assign="nearest"``);
- ``gmm`` / ``agglomerative`` with ``--all``.

The feature table is synthetic by default (``--source synthetic``: six planted archetypes drawn
with numpy, like the demo's), or computed from the demo transaction log with
``--source demo`` (``segmentation_lib.demo`` + ``segmentation_lib.features``).

    python benchmarks/bench_clustering.py [--customers 1000000] [--source synthetic|demo] [--all]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

FEATURES = ["days_since_last", "n_orders", "total_spend", "avg_order_value", "mean_days_between", "tenure_days"]
# median of each feature per archetype (power, steady, explorer, dormant, new, churned) and share
ARCHETYPES = {
    "power": ([8, 40, 9000, 220, 15, 900], 0.08),
    "steady": ([25, 12, 1300, 105, 50, 700], 0.25),
    "explorer": ([12, 30, 750, 25, 20, 650], 0.17),
    "dormant": ([300, 6, 500, 80, 60, 700], 0.20),
    "new": ([20, 1, 60, 50, np.nan, 35], 0.15),
    "churned": ([550, 2, 90, 45, 150, 700], 0.15),
}


def synthetic_features(n: int, seed: int = 42) -> pl.DataFrame:
    """``n`` customers of six archetypes in feature space (lognormal spread), with the truth."""
    rng = np.random.default_rng(seed)
    names = list(ARCHETYPES)
    centers = np.array([ARCHETYPES[a][0] for a in names], dtype=np.float64)
    p = np.array([ARCHETYPES[a][1] for a in names])
    code = rng.choice(len(names), size=n, p=p / p.sum())
    vals = centers[code] * rng.lognormal(0.0, 0.35, (n, len(FEATURES)))
    vals[:, [0, 1, 5]] = np.maximum(np.round(vals[:, [0, 1, 5]]), 1)
    vals[:, 2] = vals[:, 1] * vals[:, 3]  # total spend = orders x average order value
    return pl.DataFrame({"customer_id": pl.int_range(n, eager=True).cast(pl.String)}).with_columns(
        *[pl.Series(f, vals[:, j]).fill_nan(None) for j, f in enumerate(FEATURES)],
        pl.Series("archetype", np.array(names)[code]),
    )


def demo_features(n: int, seed: int = 42) -> pl.DataFrame:
    from datetime import timedelta

    from segmentation_lib.data.demo import make_transactions
    from segmentation_lib.features.customer import customer_features

    d = make_transactions(n_customers=n, seed=seed)
    tx = d.transactions.filter(pl.col("customer_id").is_not_null()).unique()
    as_of = tx["timestamp"].max().date() + timedelta(days=1)
    return customer_features(tx, as_of).join(d.truth, on="customer_id")


# ---------------------------------------------------------------------------------------------
# steps (run inside a subprocess)
# ---------------------------------------------------------------------------------------------
def _ari(df: pl.DataFrame, labels: np.ndarray) -> float | None:
    if "archetype" not in df.columns:
        return None
    from sklearn.metrics import adjusted_rand_score

    return round(float(adjusted_rand_score(df["archetype"].to_numpy(), labels)), 3)


def run_step(step: str, data: Path, model_path: Path) -> dict:
    t_imp = time.perf_counter()
    import sklearn.cluster  # noqa: F401  (imports are timed apart: ~1-2 s, paid once per process)

    import segmentation_lib.segment.clustering  # noqa: F401
    import segmentation_lib.score.persistence  # noqa: F401

    info: dict = {"import_s": round(time.perf_counter() - t_imp, 2)}
    df = pl.read_parquet(data)
    info["rows"] = df.height
    t0 = time.perf_counter()
    if step == "baseline":
        from sklearn.cluster import KMeans
        from sklearn.preprocessing import StandardScaler

        X = df.select(pl.col(FEATURES).fill_null(0.0)).to_numpy()
        t0 = time.perf_counter()
        KMeans(5, n_init=1, random_state=0).fit(StandardScaler().fit_transform(X))
    elif step in ("kmeans", "gmm", "agglomerative", "minibatch_kmeans"):  # fit + assign all (+ save)
        from segmentation_lib.segment.clustering import CustomerSegmenter
        from segmentation_lib.score.persistence import save_model

        seg = CustomerSegmenter(algorithm=step).fit(df)
        info["seconds_fit"] = round(time.perf_counter() - t0, 2)
        info.update(k=seg.n_segments_, reasons=seg.recommendation_["reasons"])
        labels = seg.labels_
        if step == "kmeans":
            save_model(seg, model_path)
            info["model_mb"] = round(model_path.stat().st_size / 1e6, 2)
    elif step == "hdbscan":
        from segmentation_lib.segment.clustering import CustomerSegmenter
        from segmentation_lib.score.persistence import save_model

        seg = CustomerSegmenter(algorithm="hdbscan").fit(df)
        labels = seg.labels_
        info.update(k=seg.n_segments_, noise_share=round(seg.noise_share_, 4),
                    sample_noise_share=round(seg.sample_noise_share_, 4),
                    min_cluster_size=seg.min_cluster_size_)
        hpath = model_path.with_name("hdbscan.joblib")
        save_model(seg, hpath)
        info["model_mb"] = round(hpath.stat().st_size / 1e6, 2)
    elif step == "score":
        from segmentation_lib.score.persistence import load_model, score_customers

        out = score_customers(load_model(model_path), df)
        info["scored"] = int(out["segment"].is_not_null().sum())
    elif step == "hdbscan_assign":
        from segmentation_lib.segment.clustering import CustomerSegmenter

        sub = df.head(100_000)
        res = {}
        for how in ("nearest", "approximate_predict"):
            seg = CustomerSegmenter(algorithm="hdbscan", hdbscan_assign=how).fit(df.head(50_000))
            t = time.perf_counter()
            lab = seg.predict(sub)
            res[how] = (round(time.perf_counter() - t, 2), lab)
        info["nearest_s_100k"] = res["nearest"][0]
        info["approximate_predict_s_100k"] = res["approximate_predict"][0]
        info["agreement"] = round(float((res["nearest"][1] == res["approximate_predict"][1]).mean()), 4)
    else:
        raise SystemExit(f"unknown step {step}")
    info["seconds"] = round(time.perf_counter() - t0, 2)
    if step in ("kmeans", "gmm", "agglomerative", "minibatch_kmeans", "hdbscan"):
        info["ari"] = _ari(df, labels)  # agreement with the planted archetypes (not timed)
    info["peak_mb"] = peak_mb()
    info["maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    return info


def peak_mb() -> float:
    """Peak resident memory of this process in MB.

    ``VmHWM`` from /proc (Linux) is the high-water mark of this process's own address space. The
    ``getrusage`` maxrss is also reported, but on Linux it is inherited across fork/exec from the
    parent (a child of a 5 GB parent reports at least 5 GB), so the parent here stays small and
    builds the feature table in a subprocess too.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 0)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--source", choices=("synthetic", "demo"), default="synthetic")
    ap.add_argument("--all", action="store_true", help="also gmm, agglomerative, minibatch_kmeans")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step == "make_data":  # child process: build the feature table
        t = time.perf_counter()
        df = synthetic_features(args.customers) if args.source == "synthetic" else demo_features(args.customers)
        df.write_parquet(args.data)
        print(json.dumps({"rows": df.height, "seconds": round(time.perf_counter() - t, 1), "peak_mb": peak_mb()}))
        return
    if args.step:  # child process
        print(json.dumps(run_step(args.step, Path(args.data), Path(args.model))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data, model = Path(tmp) / "features.parquet", Path(tmp) / "model.joblib"
        proc = subprocess.run([sys.executable, __file__, "--step", "make_data", "--data", str(data), "--model",
                               str(model), "--customers", str(args.customers), "--source", args.source],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"building the feature table failed:\n{proc.stderr[-2000:]}")
        made = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"feature table: {made['rows']:,} customers x {len(FEATURES)} features ({args.source}), "
              f"built in {made['seconds']} s (peak {made['peak_mb']:.0f} MB, not counted below)")
        steps = ["baseline", "kmeans", "score", "hdbscan", "hdbscan_assign"]
        if args.all:
            steps += ["minibatch_kmeans", "gmm", "agglomerative"]
        targets = {"kmeans": (60, 3000), "hdbscan": (120, 4000), "score": (5, None)}
        results = {}
        for step in steps:
            proc = subprocess.run([sys.executable, __file__, "--step", step, "--data", str(data), "--model", str(model)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{step}: FAILED\n{proc.stderr[-2000:]}")
                continue
            results[step] = json.loads(proc.stdout.strip().splitlines()[-1])
        base = results.get("baseline", {}).get("seconds")
        print(f"\n{'step':<18}{'seconds':>9}{'x base':>9}{'peak MB':>9}  target / notes")
        for step, r in results.items():
            ratio = f"{r['seconds'] / base:.1f}" if base else "-"
            tgt = targets.get(step)
            ok = ""
            if tgt:
                ok = f"< {tgt[0]} s" + (f", < {tgt[1]} MB" if tgt[1] else "")
                good = r["seconds"] < tgt[0] and (tgt[1] is None or r["peak_mb"] < tgt[1])
                ok += " OK" if good else " MISSED"
            notes = {k: v for k, v in r.items() if k not in ("seconds", "peak_mb", "rows", "reasons", "import_s")}
            print(f"{step:<18}{r['seconds']:>9.2f}{ratio:>9}{r['peak_mb']:>9.0f}  {ok} {notes}")
        if "kmeans" in results:
            print(f"\nk-means recommendation: {results['kmeans'].get('reasons')}")


if __name__ == "__main__":
    main()
