"""Benchmark: the experiment readout for a million exposed customers.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_experiment.py                        # 1M customers, 3 rounds
    .venv/bin/python benchmarks/bench_experiment.py --n-customers 100000 --repeats 1
    .venv/bin/python benchmarks/bench_experiment.py --with-log             # also outcomes from a 10M-row log

The input is built in memory, untimed: one row per exposed customer with a variant (control /
treatment, or ``--variants 3``), three segmentation methods (11, 4 and 6 segments), a stratum
(two split periods), planted conversion effects, revenue, orders and pre-period spend. Timed, median
over ``--repeats`` rounds:

- ``readout``: ``read_experiment`` with the three metrics (conversion, revenue, revenue per order),
  CUPED, SRM overall and per segment, Holm / BH and Cochran's Q;
- ``simpson``: ``simpson_check`` by the stratum and by each method (every treatment);
- ``recommendations``: the per-segment recommendation table;
- ``outcomes`` (with ``--with-log``): ``outcomes_from_transactions`` on a log of 10 transactions
  per customer (conversion / revenue / orders in 14 days after each exposure, 90-day pre-period spend).

Printed: seconds per step and the total.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segmentation_lib.experiment.outcomes import outcomes_from_transactions  # noqa: E402
from segmentation_lib.experiment.readout import arm_statistics, read_experiment  # noqa: E402
from segmentation_lib.experiment.simpson import simpson_check  # noqa: E402
from segmentation_lib.experiment.variants import recommendations  # noqa: E402

METHODS = {"rfm_segment": 11, "value_engagement": 4, "archetype": 6}


def exposed(n: int, variants: int, seed: int = 7) -> pl.DataFrame:
    """One row per exposed customer with planted effects (see the module docstring)."""
    rng = np.random.default_rng(seed)
    names = ["control"] + (["treatment"] if variants == 2 else [f"V{i}" for i in range(1, variants)])
    cols = {m: rng.integers(0, k, n) for m, k in METHODS.items()}
    stratum = rng.random(n) < 0.3
    variant = rng.integers(0, len(names), n)
    pre = rng.gamma(2.0, 60.0, n)
    p = 0.05 + 0.02 * cols["archetype"] / 6 + np.where((variant > 0) & (cols["archetype"] == 2), 0.08, 0.0)
    converted = (rng.random(n) < p).astype(float)
    orders = converted * (1 + rng.poisson(0.3, n))
    revenue = orders * (0.3 * pre + rng.gamma(2.0, 20.0, n))
    frame = {"customer_id": np.char.add("C", np.arange(n).astype(str)), "variant": np.array(names)[variant],
             "stratum": np.where(stratum, "ramp-up", "full"), "converted": converted, "revenue": revenue,
             "orders": orders, "pre_spend": pre}
    frame.update({m: np.char.add(f"{m[:3]}-", v.astype(str)) for m, v in cols.items()})
    return pl.DataFrame(frame)


def log_for(ex: pl.DataFrame, per_customer: int = 10, seed: int = 8) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Exposures with times and a transaction log around them (half before, half after the start)."""
    rng = np.random.default_rng(seed)
    n = ex.height
    start = np.datetime64("2024-12-01T00:00:00", "us")
    exp_t = start + (rng.integers(0, 7 * 86_400, n) * 1_000_000).astype("timedelta64[us]")
    exposures = ex.select("customer_id", "variant").with_columns(
        pl.Series("exposure_time", exp_t).dt.replace_time_zone("UTC"))
    idx = np.repeat(np.arange(n), per_customer)
    offs = rng.integers(-120 * 86_400, 30 * 86_400, idx.size) * 1_000_000
    tx = pl.DataFrame({"customer_id": ex["customer_id"].gather(idx),
                       "timestamp": pl.Series(start + offs.astype("timedelta64[us]")).dt.replace_time_zone("UTC"),
                       "amount": np.round(rng.gamma(2.0, 20.0, idx.size), 2),
                       "order_id": np.arange(idx.size).astype(str)})
    return exposures, tx


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-customers", type=int, default=1_000_000)
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--with-log", action="store_true")
    args = ap.parse_args()
    frame = exposed(args.n_customers, args.variants)
    methods = list(METHODS)
    print(f"{args.n_customers:,} exposed customers, {args.variants} variants, methods "
          + ", ".join(f"{m} ({k})" for m, k in METHODS.items()))
    t_read, readout = timed(lambda: read_experiment(frame, methods, ["conversion", "revenue", "revenue_per_order"],
                                                    pre_registered=["rfm_segment"]), args.repeats)
    treatments = [v for v in readout.settings["variants"] if v != "control"]

    def simpson() -> list:
        out = []
        for by in ["stratum", *methods]:
            sums = arm_statistics(frame, [by], covariate=None)
            out += [simpson_check(frame, by, "control", v, sums=sums) for v in treatments]
        return out

    t_simpson, _ = timed(simpson, args.repeats)
    t_recs, _ = timed(lambda: recommendations(readout.lifts, readout.heterogeneity, "conversion", "control"), args.repeats)
    rows = [("readout (3 metrics, CUPED, SRM, Holm/BH, Q)", t_read), ("simpson checks", t_simpson),
            ("recommendations", t_recs)]
    if args.with_log:
        exposures, tx = log_for(frame)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t_out, _ = timed(lambda: outcomes_from_transactions(exposures, tx, 14, 90), args.repeats)
        rows.insert(0, (f"outcomes from a {tx.height:,}-row log", t_out))
    for name, sec in rows:
        print(f"  {name:<48} {sec:8.2f} s")
    print(f"  {'total':<48} {sum(s for _, s in rows):8.2f} s")


if __name__ == "__main__":
    main()
