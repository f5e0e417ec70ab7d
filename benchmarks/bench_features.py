"""Benchmark: customer tables on a ~10 million transaction log (about a million customers).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_features.py                       # 1M customers, 3 repeats
    .venv/bin/python benchmarks/bench_features.py --n-customers 100000 --repeats 1

The log is generated once with ``segmentation_lib.demo.make_transactions`` (rows without a
customer id dropped) and cached as Parquet under ``benchmarks/data/``. The steps are timed in this
one process, in rounds (every step once per round), so that they all see the same machine (a VM's
speed drifts over minutes); each step then runs once more in a subprocess of its own for its peak
resident memory (``ru_maxrss``). The steps, each reading the Parquet file:

- ``floor``: ``group_by(customer).agg(count, min ts, max ts, sum amount)``: the least any
  per-customer summary can cost;
- ``btyd_summary``: the kit's lifetimes-convention summary (daily periods);
- ``features``: ``customer_features`` (the full behavioural table; the sorted-key path here);
- ``features_grouped``: the same table by the general grouped path (``method="grouped"``), to show
  what the sorted path saves;
- ``rfm``: ``RFMScorer`` fit/transform + default segment map on that table (built untimed);
- ``features+rfm``: both in one go (the target is on this one);
- ``pandas_btyd``: a plain pandas groupby implementation of the same BTYD summary (baseline).

Printed: median seconds over ``--repeats`` rounds (pandas once when ``--pandas-repeats 1``), peak
memory in MB, and the ratios to the floor (of the medians, and the median over rounds of each
round's ratio) and to pandas. Targets (2 cores): btyd <= 2x floor,
features+rfm <= 4x floor, >= 5x faster than pandas, peak < 1.5 GB.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

AS_OF = "2025-01-01"  # the demo log ends 2024-12-31
STEPS = ("floor", "btyd_summary", "features", "features_grouped", "rfm", "features+rfm", "pandas_btyd")
_CACHE: dict = {}


def data_path(n_customers: int, seed: int) -> Path:
    return HERE / "data" / f"transactions_{n_customers}_seed{seed}.parquet"


def _fallback_generator(n_customers: int, seed: int):  # pragma: no cover - used only without demo.py
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    per = rng.geometric(0.1, n_customers)
    cust = np.repeat(np.arange(n_customers), per)
    n = cust.size
    start = np.datetime64("2023-01-01T00:00:00", "us")
    ts = start + rng.integers(0, 731 * 86_400_000_000, n).astype("timedelta64[us]")
    amount = np.round(rng.lognormal(3.5, 0.8, n), 2) * np.where(rng.random(n) < 0.03, -1, 1)
    return pl.DataFrame({
        "customer_id": pl.Series(cust).cast(pl.String).str.zfill(7),
        "timestamp": ts,
        "amount": amount,
        "order_id": pl.Series(np.arange(n)).cast(pl.String),
        "product_id": pl.Series(rng.integers(0, 2000, n)).cast(pl.String),
    }).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))


def ensure_data(n_customers: int, seed: int) -> Path:
    path = data_path(n_customers, seed)
    if path.exists():
        return path
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        from segmentation_lib.data.demo import make_transactions

        tx = make_transactions(n_customers=n_customers, seed=seed).transactions
    except ImportError:
        tx = _fallback_generator(n_customers, seed)
    tx = tx.filter(pl.col("customer_id").is_not_null())
    tmp = path.with_suffix(".tmp")
    tx.write_parquet(tmp)
    tmp.replace(path)
    print(f"generated {tx.height:,} transactions in {time.perf_counter() - t0:.1f} s -> {path}", flush=True)
    return path


# ------------------------------------------------------------------------------------ steps
def step_floor(path: Path) -> int:
    import polars as pl

    c = pl.col
    out = (
        pl.scan_parquet(path)
        .group_by("customer_id")
        .agg(pl.len(), c("timestamp").min().alias("first"), c("timestamp").max().alias("last"), c("amount").sum())
        .collect(engine="streaming")
    )
    return out.height


def step_btyd(path: Path) -> int:
    import polars as pl

    from segmentation_lib.features.btyd import btyd_summary

    return btyd_summary(pl.scan_parquet(path), AS_OF).height


def step_features(path: Path) -> int:
    import polars as pl

    from segmentation_lib.features.customer import customer_features

    return customer_features(pl.scan_parquet(path), AS_OF).height


def step_features_grouped(path: Path) -> int:
    import polars as pl

    from segmentation_lib.features.customer import customer_features

    return customer_features(pl.scan_parquet(path), AS_OF, method="grouped").height


def step_rfm(path: Path) -> int:
    """RFM fit + transform + default map on a feature table computed once before the timings."""
    import warnings

    import polars as pl

    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.segment.rfm import RFMScorer
    from segmentation_lib.segment.rfm_maps import assign_rfm_segments

    if "features" not in _CACHE:
        _CACHE["features"] = customer_features(pl.scan_parquet(path), AS_OF)
        _CACHE["untimed"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = RFMScorer().fit_transform(_CACHE["features"])
    return assign_rfm_segments(scored).height


def step_features_rfm(path: Path) -> int:
    import warnings

    import polars as pl

    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.segment.rfm import RFMScorer
    from segmentation_lib.segment.rfm_maps import assign_rfm_segments

    feats = customer_features(pl.scan_parquet(path), AS_OF)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = RFMScorer().fit_transform(feats)
    return assign_rfm_segments(scored).height


def step_pandas(path: Path) -> int:
    import pandas as pd

    df = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount"])
    end = pd.Timestamp(AS_OF, tz="UTC")  # a midnight: its own period start
    df["period"] = df["timestamp"].dt.floor("D")
    df = df[df["period"] <= end]
    per = df.groupby(["customer_id", "period"], sort=True, as_index=False)["amount"].sum()
    g = per.groupby("customer_id", sort=False)
    out = g["period"].agg(["min", "max", "count"])
    first_amount = g["amount"].first()  # per is sorted by (customer, period)
    total = g["amount"].sum()
    res = pd.DataFrame({
        "frequency": out["count"] - 1.0,
        "recency": (out["max"] - out["min"]).dt.days.astype(float),
        "T": (end - out["min"]).dt.days.astype(float),
    })
    res["monetary_value"] = ((total - first_amount) / res["frequency"]).where(res["frequency"] > 0, 0.0)
    return len(res)


FUNCS = {"floor": step_floor, "btyd_summary": step_btyd, "features": step_features,
         "features_grouped": step_features_grouped, "rfm": step_rfm,
         "features+rfm": step_features_rfm, "pandas_btyd": step_pandas}


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM (reset by exec; ``ru_maxrss`` is inherited from the
    parent through fork and exec, so a child of a large parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def run_step(name: str, path: Path, repeats: int) -> None:
    """Child process: time ``repeats`` runs of one step and print JSON with times and peak memory."""
    import pandas  # noqa: F401  - imports are not part of the timings
    import polars  # noqa: F401

    import segmentation_lib.features  # noqa: F401
    import segmentation_lib.segment.rfm  # noqa: F401

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    if name == "rfm":  # its input (the feature table) is built before the clock starts
        step_rfm(path)
    times, cpus, rows = [], [], 0
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), cpu()
        rows = FUNCS[name](path)
        times.append(time.perf_counter() - t0)
        cpus.append(cpu() - c0)
    peak_mb = _peak_rss_mb()
    print(json.dumps({"step": name, "times": times, "cpu": cpus, "peak_mb": peak_mb, "rows": rows}))


def run_interleaved(names: list[str], path: Path, repeats: int, pandas_repeats: int) -> dict[str, dict]:
    """Time the steps in this one process, in rounds (floor, btyd, features, ..., floor, btyd, ...),
    so every step sees the same machine: the VM's speed drifts over minutes, and timing one step's
    repeats after another's skews their ratio. Returns per step its times, cpu times and, per round,
    its ratio to the floor of that round."""
    import pandas  # noqa: F401  - imports are not part of the timings

    import segmentation_lib.features  # noqa: F401
    import segmentation_lib.segment.rfm  # noqa: F401

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    if "rfm" in names:
        step_rfm(path)  # its input (the feature table) is built before the clock starts
    out = {n: {"times": [], "cpu": [], "per_round": [], "rows": 0} for n in names}
    for r in range(repeats):
        round_times = {}
        for name in names:
            if name == "pandas_btyd" and r >= pandas_repeats:
                continue
            t0, c0 = time.perf_counter(), cpu()
            out[name]["rows"] = FUNCS[name](path)
            round_times[name] = time.perf_counter() - t0
            out[name]["times"].append(round_times[name])
            out[name]["cpu"].append(cpu() - c0)
        for name, t in round_times.items():
            if "floor" in round_times:
                out[name]["per_round"].append(t / round_times["floor"])
        print(f"  round {r + 1}: " + ", ".join(f"{n} {t:.2f}s" for n, t in round_times.items()), flush=True)
    return {n: v for n, v in out.items() if v["times"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--pandas-repeats", type=int, default=1, help="repeats of the (slow) pandas baseline")
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ", ".join(STEPS))
    ap.add_argument("--no-memory", action="store_true", help="skip the per-step peak-memory runs")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        run_step(args.step, Path(args.data), args.repeats)
        return

    path = ensure_data(args.n_customers, args.seed)
    import polars as pl

    n_rows = pl.scan_parquet(path).select(pl.len()).collect().item()
    print(f"log: {path.name}: {n_rows:,} transactions; polars {pl.__version__}; {args.repeats} repeats", flush=True)
    names = [s.strip() for s in args.steps.split(",") if s.strip()]
    print("timing all steps in this process, in rounds:", flush=True)
    results = run_interleaved(names, path, args.repeats, args.pandas_repeats)
    print("peak memory: each step once more in a process of its own:", flush=True)
    for name in list(results):
        res = results[name]
        res["median"] = statistics.median(res["times"])
        res["cpu_median"] = statistics.median(res["cpu"])
        res["ratio_median"] = statistics.median(res["per_round"]) if res["per_round"] else None
        res["peak_mb"] = float("nan")
        if args.no_memory:
            continue
        proc = subprocess.run(
            [sys.executable, __file__, "--step", name, "--data", str(path), "--repeats", "1"],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            print(f"{name}: FAILED\n{proc.stderr[-2000:]}", flush=True)
            continue
        res["peak_mb"] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"]
        print(f"  {name:16s} peak {res['peak_mb']:7.0f} MB ({res['rows']:,} customers)", flush=True)

    floor = results.get("floor", {}).get("median")
    pandas = results.get("pandas_btyd", {}).get("median")
    print("\n| step | median s | cpu s | peak MB | x floor | x floor, per round | pandas / step |\n"
          "|---|---|---|---|---|---|---|")
    for name, res in results.items():
        xf = f"{res['median'] / floor:.2f}" if floor else "-"
        xr = f"{res['ratio_median']:.2f}" if res.get("ratio_median") is not None else "-"
        xp = f"{pandas / res['median']:.2f}" if pandas else "-"
        print(f"| {name} | {res['median']:.2f} | {res['cpu_median']:.2f} | {res['peak_mb']:.0f} | {xf} | {xr} | {xp} |")
    print("(median wall seconds over the rounds; cpu = user + system seconds; 'x floor, per round' = median over "
          "rounds of the step's time / that round's floor)")
    print_targets(results)


def print_targets(results: dict) -> None:
    """The issue's targets, each as measured in this run (wall and cpu ratios)."""
    def ratio(a: str, b: str, key: str) -> float | None:
        if a in results and b in results and results[b][key] > 0:
            return results[a][key] / results[b][key]
        return None

    def per_round(a: str) -> float | None:
        return results.get(a, {}).get("ratio_median") or ratio(a, "floor", "median")

    checks = [
        ("btyd_summary <= 2x floor (per round)", per_round("btyd_summary"), ratio("btyd_summary", "floor", "cpu_median"), 2.0, "le"),
        ("features+rfm <= 4x floor (per round)", per_round("features+rfm"), ratio("features+rfm", "floor", "cpu_median"), 4.0, "le"),
        ("pandas / btyd_summary >= 5x", ratio("pandas_btyd", "btyd_summary", "median"), ratio("pandas_btyd", "btyd_summary", "cpu_median"), 5.0, "ge"),
        ("features_grouped / features (sorted path gain)", ratio("features_grouped", "features", "median"), ratio("features_grouped", "features", "cpu_median"), None, ""),
    ]
    print("\ntargets (wall ratio / cpu ratio):")
    for name, wall, cpu_r, limit, how in checks:
        if wall is None:
            continue
        ok = "" if limit is None else ("  met" if (wall <= limit if how == "le" else wall >= limit) else "  NOT met")
        print(f"  {name:48s} {wall:5.2f} / {cpu_r:5.2f}{ok}")
    kit = [n for n in ("btyd_summary", "features", "features+rfm") if n in results]
    if kit:
        peak = max(results[n]["peak_mb"] for n in kit)
        print(f"  {'peak memory of the kit steps < 1500 MB':48s} {peak:5.0f} MB{'  met' if peak < 1500 else '  NOT met'}")


if __name__ == "__main__":
    main()
