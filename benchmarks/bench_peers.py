"""Benchmark: the kit against its peers on the same transaction log (issue 15).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_peers.py                          # both layouts, 10M rows, 3 rounds
    .venv/bin/python benchmarks/bench_peers.py --layout warehouse --rounds 3
    .venv/bin/python benchmarks/bench_peers.py --rows 1000000 --no-memory   # quick look

Two layouts of about ``--rows`` transactions / ``--rows / 10`` customers, generated once and
cached as Parquet under ``benchmarks/data/``:

- ``warehouse``: a warehouse export: integer customer and order ids (Int64; the customer ids are
  scattered over 10**9), rows in time order, timestamps to the second with several orders in most
  seconds that have any (one year), customers' order counts heavy-tailed;
- ``demo``: the kit's own demo log (``segmentation_lib.data.demo.make_transactions``; text ids,
  rows in time order), rows without a customer id dropped.

Steps (each reads the Parquet file; daily periods, observation end = the day after the log):

- ``floor``: ``group_by(customer).agg(count, min ts, max ts, sum amount)``, streaming engine: the
  least any per-customer summary costs;
- ``duckdb_btyd``: a DuckDB SQL query of the BTYD summary (frequency, recency, T, monetary value);
- ``polars_btyd``: a plain polars lazy query of the same summary (streaming engine);
- ``pandas_btyd``: a pandas groupby of the same summary;
- ``lifetimes``: ``lifetimes.utils.summary_data_from_transaction_data`` (when installed);
- ``ors_rfm``: openretailscience ``RFMSegmentation`` (when installed);
- ``kit_btyd``: ``read_transactions`` + ``btyd_summary``;
- ``kit_features``: ``read_transactions`` + ``customer_features``;
- ``kit_features_rfm``: ``read_transactions`` + ``customer_features`` + ``RFMScorer`` + the
  default segment map.

All steps are timed in this one process in interleaved rounds (every step once per round; the
machine is shared and its speed drifts over minutes, so a ratio is only meaningful between steps
timed side by side); ``x floor`` is the median over rounds of the step's time / that round's floor
time; ``x floor (CPU s)`` the same ratio of CPU seconds (all threads), steadier when other jobs take
a changing share of the cores. Peak memory: each step once more in a fresh subprocess (``VmHWM``, includes the interpreter
and the imports). The slow peers (pandas, lifetimes) run in the first ``--slow-rounds`` rounds only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STEPS = ("floor", "duckdb_btyd", "polars_btyd", "pandas_btyd", "lifetimes", "ors_rfm",
         "kit_btyd", "kit_features", "kit_features_rfm")
SLOW = ("pandas_btyd", "lifetimes")
LAYOUTS = ("warehouse", "demo")
_END: dict[str, dt.datetime] = {}


# ------------------------------------------------------------------------------------ data
def data_path(layout: str, rows: int, seed: int) -> Path:
    return HERE / "data" / f"peers_{layout}_{rows}_seed{seed}.parquet"


def warehouse_log(rows: int, seed: int):
    """``rows`` orders of ``rows // 10`` customers in time order (integer ids, ties to the second)."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    n_cust = max(rows // 10, 1)
    ids = rng.choice(10**9, size=n_cust, replace=False).astype(np.int64) + 1
    weight = rng.lognormal(0.0, 1.0, n_cust)
    cdf = np.cumsum(weight / weight.sum())
    cust = ids[np.minimum(np.searchsorted(cdf, rng.random(rows)), n_cust - 1)]
    # one year; orders fall in a quarter of its seconds' worth of busy seconds: ~4 per busy second
    seconds = 365 * 86_400
    busy = np.sort(rng.choice(seconds, size=max(rows // 4, 1), replace=False))
    sec = busy[np.sort(rng.integers(0, busy.size, rows))]
    start = np.datetime64("2024-01-01T00:00:00", "us")
    ts = start + (sec * 1_000_000).astype("timedelta64[us]")
    amount = np.round(rng.lognormal(3.5, 0.9, rows), 2) * np.where(rng.random(rows) < 0.03, -1, 1)
    return pl.DataFrame({
        "order_id": np.arange(rows, dtype=np.int64) + 5_000_000_000,
        "customer_id": cust,
        "timestamp": ts,
        "amount": amount,
        "product_id": rng.integers(1, 50_000, rows).astype(np.int64),
    }).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))


def ensure_data(layout: str, rows: int, seed: int) -> Path:
    path = data_path(layout, rows, seed)
    if path.exists():
        return path
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if layout == "warehouse":
        tx = warehouse_log(rows, seed)
    else:
        from segmentation_lib.data.demo import make_transactions

        tx = make_transactions(n_customers=max(rows // 10, 1), seed=seed).transactions
        tx = tx.filter(pl.col("customer_id").is_not_null())
    tmp = path.with_suffix(".tmp")
    tx.write_parquet(tmp)
    tmp.replace(path)
    print(f"generated {layout}: {tx.height:,} rows in {time.perf_counter() - t0:.1f} s -> {path}", flush=True)
    return path


def observation_end(path: Path) -> dt.datetime:
    """Midnight after the log's last day (UTC), so every row is inside the observation window."""
    if path not in _END:
        import polars as pl

        last = pl.scan_parquet(path).select(pl.col("timestamp").max()).collect().item()
        _END[path] = dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    return _END[path]


# ------------------------------------------------------------------------------------ steps
def step_floor(path: Path) -> int:
    import polars as pl

    c = pl.col
    return (pl.scan_parquet(path).group_by("customer_id")
            .agg(pl.len(), c("timestamp").min().alias("first"), c("timestamp").max().alias("last"), c("amount").sum())
            .collect(engine="streaming").height)


def step_duckdb(path: Path) -> int:
    import duckdb

    end = observation_end(path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    end_us = int(end.timestamp() * 1_000_000)
    day_us = 86_400_000_000
    # integer day numbers (epoch_us // day): much faster than date_trunc on TIMESTAMPTZ (ICU)
    sql = f"""
    WITH per AS (
        SELECT customer_id, epoch_us(timestamp) // {day_us} AS d, sum(amount) AS a
        FROM read_parquet('{path}') WHERE epoch_us(timestamp) < {end_us}
        GROUP BY customer_id, d),
    f AS (SELECT customer_id, min(d) AS first, max(d) AS last, count(*) AS n, sum(a) AS total,
                 arg_min(a, d) AS first_a FROM per GROUP BY customer_id)
    SELECT customer_id, (n - 1)::DOUBLE AS frequency, (last - first)::DOUBLE AS recency,
           ({end_us // day_us} - first)::DOUBLE AS T,
           CASE WHEN n > 1 THEN (total - first_a) / (n - 1) ELSE 0 END AS monetary_value
    FROM f ORDER BY customer_id"""
    res = con.sql(sql)  # a relation: its Arrow result is not copied (duckdb 2 warns on a DB-API cursor)
    # the result as a frame: duckdb 1.x has .pl(), duckdb 2 .to_arrow_table()
    fetch = next(getattr(res, m) for m in ("pl", "to_arrow_table", "arrow") if hasattr(res, m))
    out = fetch()
    con.close()
    return len(out)


def step_polars(path: Path) -> int:
    import polars as pl

    c = pl.col
    end = observation_end(path)
    per = (pl.scan_parquet(path).filter(c("timestamp") < end)
           .group_by("customer_id", c("timestamp").dt.truncate("1d").alias("d")).agg(c("amount").sum()))
    out = (per.group_by("customer_id")
           .agg(pl.len().alias("n"), c("d").min().alias("first"), c("d").max().alias("last"),
                c("amount").sum().alias("total"), c("amount").min_by("d").alias("first_a"))
           .select("customer_id", (c("n") - 1).cast(pl.Float64).alias("frequency"),
                   (c("last") - c("first")).dt.total_days().cast(pl.Float64).alias("recency"),
                   (pl.lit(end) - c("first")).dt.total_days().cast(pl.Float64).alias("T"),
                   pl.when(c("n") > 1).then((c("total") - c("first_a")) / (c("n") - 1)).otherwise(0.0)
                   .alias("monetary_value"))
           .sort("customer_id").collect(engine="streaming"))
    return out.height


def step_pandas(path: Path) -> int:
    import pandas as pd

    end = pd.Timestamp(observation_end(path))
    df = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount"])
    df["period"] = df["timestamp"].dt.floor("D")
    df = df[df["period"] < end]
    per = df.groupby(["customer_id", "period"], sort=True, as_index=False)["amount"].sum()
    g = per.groupby("customer_id", sort=False)
    out = g["period"].agg(["min", "max", "count"])
    first_amount = g["amount"].first()  # per is sorted by (customer, period)
    total = g["amount"].sum()
    res = pd.DataFrame({"frequency": out["count"] - 1.0,
                        "recency": (out["max"] - out["min"]).dt.days.astype(float),
                        "T": (end - out["min"]).dt.days.astype(float)})
    res["monetary_value"] = ((total - first_amount) / res["frequency"]).where(res["frequency"] > 0, 0.0)
    return len(res)


def step_lifetimes(path: Path) -> int:
    import pandas as pd
    from lifetimes.utils import summary_data_from_transaction_data

    df = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount"])
    df["timestamp"] = df["timestamp"].dt.tz_localize(None)
    end = observation_end(path).replace(tzinfo=None) - dt.timedelta(days=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return len(summary_data_from_transaction_data(df, "customer_id", "timestamp", "amount",
                                                      observation_period_end=end))


def step_ors(path: Path) -> int:
    import pandas as pd
    from openretailscience.segmentation.rfm import RFMSegmentation

    df = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount", "order_id"])
    df = df.rename(columns={"timestamp": "transaction_date", "amount": "unit_spend", "order_id": "transaction_id"})
    df["transaction_date"] = df["transaction_date"].dt.tz_localize(None)
    seg = RFMSegmentation(df, current_date=observation_end(path).date())
    return len(seg.df)


def _kit_read(path: Path):
    from segmentation_lib.data.read import read_transactions

    return read_transactions(path)


def step_kit_btyd(path: Path) -> int:
    from segmentation_lib.features.btyd import btyd_summary

    return btyd_summary(_kit_read(path), observation_end(path)).height


def step_kit_features(path: Path) -> int:
    from segmentation_lib.features.customer import customer_features

    return customer_features(_kit_read(path), observation_end(path).date()).height


def step_kit_features_rfm(path: Path) -> int:
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.segment.rfm import RFMScorer
    from segmentation_lib.segment.rfm_maps import assign_rfm_segments

    feats = customer_features(_kit_read(path), observation_end(path).date())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = RFMScorer().fit_transform(feats)
    return assign_rfm_segments(scored).height


FUNCS = {"floor": step_floor, "duckdb_btyd": step_duckdb, "polars_btyd": step_polars,
         "pandas_btyd": step_pandas, "lifetimes": step_lifetimes, "ors_rfm": step_ors,
         "kit_btyd": step_kit_btyd, "kit_features": step_kit_features,
         "kit_features_rfm": step_kit_features_rfm}
LABELS = {
    "floor": "polars floor: group_by(customer).agg(count, min ts, max ts, sum amount)",
    "duckdb_btyd": "DuckDB SQL, the same BTYD summary",
    "polars_btyd": "plain polars lazy query, the same BTYD summary",
    "pandas_btyd": "pandas groupby BTYD summary",
    "lifetimes": "lifetimes `summary_data_from_transaction_data`",
    "ors_rfm": "openretailscience RFM segmentation",
    "kit_btyd": "kit `read_transactions` + `btyd_summary`",
    "kit_features": "kit `read_transactions` + `customer_features`",
    "kit_features_rfm": "kit features + RFM scores + segment map",
}
MODULES = {"duckdb_btyd": "duckdb", "lifetimes": "lifetimes", "ors_rfm": "openretailscience"}


def available(name: str) -> bool:
    mod = MODULES.get(name)
    if mod is None:
        return True
    import importlib.util

    return importlib.util.find_spec(mod) is not None


def _imports() -> None:
    """Imports are not part of the timings (paid once per process)."""
    import pandas  # noqa: F401
    import polars  # noqa: F401

    import segmentation_lib.data.read  # noqa: F401
    import segmentation_lib.features.btyd  # noqa: F401
    import segmentation_lib.features.customer  # noqa: F401
    import segmentation_lib.segment.rfm  # noqa: F401
    import segmentation_lib.segment.rfm_maps  # noqa: F401
    for mod in ("duckdb", "lifetimes.utils", "openretailscience.segmentation.rfm"):
        try:
            __import__(mod)
        except ImportError:
            pass


def _cpu_s() -> float:
    """CPU seconds used by this process so far (all threads): on a shared machine, the work a step
    did, whatever share of the cores it got."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ``ru_maxrss`` would be inherited through fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------ driver
def run_rounds(names: list[str], path: Path, rounds: int, slow_rounds: int) -> dict[str, dict]:
    _imports()
    observation_end(path)
    out = {n: {"times": [], "per_round": [], "cpu_per_round": [], "rows": 0} for n in names}
    for r in range(rounds):
        times, cpus = {}, {}
        for name in names:
            if name in SLOW and r >= slow_rounds:
                continue
            t0, c0 = time.perf_counter(), _cpu_s()
            out[name]["rows"] = FUNCS[name](path)
            times[name] = time.perf_counter() - t0
            cpus[name] = _cpu_s() - c0
            out[name]["times"].append(times[name])
        for name, t in times.items():
            if "floor" in times:
                out[name]["per_round"].append(t / times["floor"])
                out[name]["cpu_per_round"].append(cpus[name] / cpus["floor"])
        print(f"  round {r + 1}: " + ", ".join(f"{n} {t:.2f}s" for n, t in times.items()), flush=True)
    return out


def peak_memory(name: str, path: Path) -> float:
    proc = subprocess.run([sys.executable, __file__, "--step", name, "--data", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {name}: FAILED\n{proc.stderr[-2000:]}", flush=True)
        return float("nan")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"]


def print_table(layout: str, path: Path, results: dict[str, dict]) -> None:
    import polars as pl

    n = pl.scan_parquet(path).select(pl.len(), pl.col("customer_id").n_unique()).collect().row(0)
    floor = statistics.median(results["floor"]["times"]) if "floor" in results else None
    floor_mb = results.get("floor", {}).get("peak_mb")
    print(f"\n### {layout}: {n[0]:,} rows, {n[1]:,} customers ({path.name})\n")
    print("| step (reading the Parquet file included) | median s | x floor | x floor (CPU s) | peak MB |\n|---|---|---|---|---|")
    order = sorted(results, key=lambda k: statistics.median(results[k]["per_round"] or [0]))
    for name in order:
        res = results[name]
        med = statistics.median(res["times"])
        xf = statistics.median(res["per_round"]) if res["per_round"] else (med / floor if floor else float("nan"))
        xc = statistics.median(res["cpu_per_round"]) if res["cpu_per_round"] else float("nan")
        print(f"| {LABELS[name]} | {med:.2f} | {xf:.2f} | {xc:.2f} | {res.get('peak_mb', float('nan')):.0f} |")
    if floor and "kit_btyd" in results:
        xf = lambda k: statistics.median(results[k]["per_round"])  # noqa: E731
        checks = [("kit_btyd <= 1.3x floor", xf("kit_btyd") <= 1.3)]
        if "duckdb_btyd" in results:
            checks.append(("kit_btyd faster than DuckDB", xf("kit_btyd") < xf("duckdb_btyd")))
        if "kit_features_rfm" in results:
            checks.append(("kit_features_rfm <= 2.5x floor", xf("kit_features_rfm") <= 2.5))
            if floor_mb and results["kit_features_rfm"].get("peak_mb"):
                checks.append(("kit_features_rfm peak <= 2x floor's",
                               results["kit_features_rfm"]["peak_mb"] <= 2 * floor_mb))
        print("\ntargets: " + "; ".join(f"{t}: {'met' if ok else 'NOT met'}" for t, ok in checks))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the warehouse log (demo: rows/10 customers)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--layout", default=",".join(LAYOUTS), help="comma-separated: " + ", ".join(LAYOUTS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--slow-rounds", type=int, default=1, help="rounds that include pandas and lifetimes")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ", ".join(STEPS))
    ap.add_argument("--no-memory", action="store_true", help="skip the per-step peak-memory subprocesses")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:  # child: one step for its peak memory
        _imports()
        path = Path(args.data)
        observation_end(path)
        rows = FUNCS[args.step](path)
        print(json.dumps({"step": args.step, "rows": rows, "peak_mb": _peak_rss_mb()}))
        return

    import polars as pl

    versions = {"python": sys.version.split()[0], "polars": pl.__version__}
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("duckdb", "pandas", "pyarrow", "lifetimes", "openretailscience"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            pass
    print(f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          + ", ".join(f"{k} {v}" for k, v in versions.items()), flush=True)
    names = [s for s in (x.strip() for x in args.steps.split(",")) if s]
    skipped = [s for s in names if not available(s)]
    names = [s for s in names if s not in skipped]
    if skipped:
        print(f"not installed, skipped: {', '.join(skipped)}", flush=True)
    for layout in [x.strip() for x in args.layout.split(",") if x.strip()]:
        path = ensure_data(layout, args.rows, args.seed)
        print(f"{layout}: timing in {args.rounds} interleaved rounds", flush=True)
        results = run_rounds(names, path, args.rounds, args.slow_rounds)
        if not args.no_memory:
            for name in names:
                results[name]["peak_mb"] = peak_memory(name, path)
        print_table(layout, path, results)


if __name__ == "__main__":
    main()
