"""Spark (local mode, 2 cores) against polars, stage by stage, at 1M, 10M and 30M transactions.

    .venv/bin/python benchmarks/bench_spark.py                 # 1M and 10M
    .venv/bin/python benchmarks/bench_spark.py --sizes 1 10 30 # millions of transactions
    .venv/bin/python benchmarks/bench_spark.py --check-run     # segment run --engine spark vs polars on the demo

The logs are the demo generator's (``segmentation_lib.data.demo.make_transactions``, about 10.6 rows
per customer, so 1M rows ~ 95k customers), cached as Parquet under ``benchmarks/data/``; 30M is the
10M log three times with the customer ids suffixed (three disjoint copies of the customers).
Both engines run the same stages on the same file with the same configuration (k fixed at 5, so
no k sweep is timed): read + quality rules, the feature table, RFM (edges, scores, map,
value/engagement, rule tiers), fitting k-means on a 50,000-customer sample, scoring every customer
and writing ``assignments.parquet``. Spark writes its outputs with Spark (Parquet folders); polars
writes one file. Figures are wall seconds of one run per size (the machine is shared, so expect
+-20 %); see docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ROWS_PER_CUSTOMER = 10.6  # demo generator


def data_path(millions: int) -> Path:
    return HERE / "data" / f"spark_transactions_{millions}M.parquet"


def ensure_data(millions: int) -> Path:
    """The cached log of about ``millions`` million rows (30M from three copies of the 10M log)."""
    import polars as pl

    path = data_path(millions)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if millions > 10:
        base = pl.read_parquet(ensure_data(10))
        copies = -(-millions // 10)
        tx = pl.concat([base.with_columns(pl.col("customer_id") + f"_{k}") for k in range(copies)])
    else:
        from segmentation_lib.data.demo import make_transactions

        n_customers = int(millions * 1_000_000 / ROWS_PER_CUSTOMER)
        tx = make_transactions(n_customers=n_customers, seed=11).transactions
    tmp = path.with_suffix(".tmp")
    tx.write_parquet(tmp)
    tmp.replace(path)
    print(f"generated {tx.height:,} rows in {time.perf_counter() - t0:.1f} s -> {path}", flush=True)
    return path


def bench_config(path: Path, out: Path) -> dict:
    from segmentation_lib.config import load_config

    return load_config(HERE.parent / "configs" / "default.yaml", {
        "run": {"as_of": "2025-01-01", "seed": 7},
        "data": {"path": str(path), "customers": None, "truth": None},
        "clustering": {"k": 5},
        "engine": {"kind": "spark", "master": "local[2]", "partitions": 8,
                   "conf": {"spark.driver.memory": "6g", "spark.sql.adaptive.enabled": "true"}},
        "report": {"out_dir": str(out)},
    })


def polars_stages(cfg: dict, out: Path) -> dict[str, float]:
    """The single-machine path, timed per stage (the report stages' calls, without the notebooks)."""
    import polars as pl

    from segmentation_lib.data.quality import load_transactions
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.report.stages import make_segmenter, purchasing, rfm_assign
    from segmentation_lib.segment.rfm import scorer_from_config

    times = {}
    t0 = time.perf_counter()
    tx, report = load_transactions(cfg)
    times["read_and_quality"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = customer_features(tx, report.as_of)
    del tx
    times["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scorer = scorer_from_config(cfg["rfm"]).fit(feats)
    times["rfm_edges"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    buyers = purchasing(feats)
    seg = make_segmenter(cfg, 7).fit(buyers)
    times["fit_on_sample"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = rfm_assign(feats, cfg, scorer)
    labels, _ = seg.predict_with_noise(buyers)
    clusters = pl.DataFrame({"customer_id": buyers["customer_id"], "cluster": pl.Series(labels, dtype=pl.Int32)})
    table.join(clusters, on="customer_id", how="left").write_parquet(out / "assignments.parquet")
    times["score_and_write"] = time.perf_counter() - t0
    times["customers"] = feats.height
    return times


def run_size(millions: int, engines: list[str]) -> dict:
    path = ensure_data(millions)
    import polars as pl

    rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    result = {"rows": rows}
    work = Path(tempfile.mkdtemp(prefix=f"bench_spark_{millions}M_"))
    try:
        cfg = bench_config(path, work)
        if "polars" in engines:
            (work / "polars").mkdir()
            t0 = time.perf_counter()
            result["polars"] = polars_stages(cfg, work / "polars")
            result["polars"]["total"] = time.perf_counter() - t0
            print(f"{millions}M polars: {json.dumps({k: round(v, 2) for k, v in result['polars'].items()})}", flush=True)
        if "spark" in engines:
            from segmentation_lib.engine.spark_session import spark_session
            from segmentation_lib.engine.spark_stage import run_on_spark

            t0 = time.perf_counter()
            spark = spark_session(cfg)
            spark.sparkContext.setLogLevel("ERROR")
            start = time.perf_counter() - t0
            t0 = time.perf_counter()
            summary = run_on_spark(cfg, work / "spark", spark=spark)
            result["spark"] = {**summary["seconds"], "customers": summary["customers"], "session_start": start,
                               "total": time.perf_counter() - t0}
            print(f"{millions}M spark: {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result['spark'].items()})}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def check_run() -> int:
    """``segment run --engine spark`` on the 2,000-customer demo (seed 7) against a polars run of the
    same configuration: assignments.parquet must be equal (prints the verdict; exit code 1 if not)."""
    import os
    import subprocess

    import polars as pl

    from segmentation_lib.data.demo import write_demo_data

    root = Path(tempfile.mkdtemp(prefix="spark_check_"))
    write_demo_data(root / "data", n_customers=2000, seed=7)
    cfg = root / "cfg.yaml"
    cfg.write_text("run: {name: spark-check, seed: 7}\n"
                   "data: {path: data/transactions.parquet, customers: {path: data/customers.parquet}, truth: data/truth.parquet}\n"
                   "clustering: {k_range: [2, 8], metric_sample_size: 2000}\n", encoding="utf-8")
    seg = Path(sys.executable).with_name("segment")
    runs = {}
    for engine in ("polars", "spark"):
        t0 = time.perf_counter()
        env = dict(os.environ)
        out = subprocess.run([str(seg), "run", "--config", str(cfg), "--out", str(root / engine), "--engine", engine],
                             capture_output=True, text=True, env=env)
        print(f"segment run --engine {engine}: exit {out.returncode} in {time.perf_counter() - t0:.0f} s", flush=True)
        if out.returncode:
            print(out.stdout[-2000:], out.stderr[-3000:])
            return 1
        runs[engine] = Path(out.stdout.strip().splitlines()[-1]).parent
    a = pl.read_parquet(runs["polars"] / "assignments.parquet")
    b = pl.read_parquet(runs["spark"] / "assignments.parquet")
    same = a.equals(b)
    pages = sorted(p.name for p in runs["spark"].glob("*.html"))
    print(f"assignments.parquet equal: {same} ({a.height:,} customers, {a.width} columns); spark run pages: {pages}")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if same else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10], help="millions of transactions (at most 30)")
    ap.add_argument("--engines", nargs="+", default=["polars", "spark"])
    ap.add_argument("--check-run", action="store_true", help="compare segment run --engine spark with polars on the demo")
    args = ap.parse_args()
    if args.check_run:
        raise SystemExit(check_run())
    if max(args.sizes) > 30:
        raise SystemExit("sizes above 30 (million rows) are not run on this machine")
    results = {}
    for m in args.sizes:
        results[m] = run_size(m, args.engines)
    print("\n| rows | customers | stage | polars s | spark s | spark / polars |\n|---|---|---|---|---|---|")
    for m, r in results.items():
        p, s = r.get("polars", {}), r.get("spark", {})
        for stage in ("read_and_quality", "features", "rfm_edges", "fit_on_sample", "score_and_write", "total"):
            pv, sv = p.get(stage), s.get(stage)
            ratio = f"{sv / pv:.1f}" if pv and sv else "-"
            fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else "-"  # noqa: E731
            print(f"| {r['rows']:,} | {(p or s).get('customers', 0):,} | {stage} | {fmt(pv)} | {fmt(sv)} | {ratio} |")
        if s:
            print(f"| {r['rows']:,} | | spark session start | | {s['session_start']:.1f} | |")


if __name__ == "__main__":
    main()
