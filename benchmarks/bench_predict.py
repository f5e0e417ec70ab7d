"""Benchmark: predicted value (BG/NBD + Gamma-Gamma fit and score) for a million customers, against lifetimes.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_predict.py                          # 1M demo customers, 3 rounds
    .venv/bin/python benchmarks/bench_predict.py --n-customers 100000 --repeats 1
    .venv/bin/python benchmarks/bench_predict.py --lifetimes-rows 100000  # lifetimes on a subsample

The table is the daily BTYD summary (``btyd_summary(..., "2025-01-01", freq="D")``) of the demo
log (``make_transactions(n_customers, seed=7)``), built once in memory, untimed. Timed in this one
process, each step once per round, median over ``--repeats`` rounds:

- ``bgnbd_fit``: ``BetaGeoModel(freq="D").fit`` (grouping into patterns included);
- ``gamma_gamma_fit``: ``GammaGammaModel().fit``;
- ``score``: ``predicted_value_table`` with the two fitted models (P(alive), expected purchases at
  30/90/365 days, expected spend, 12-month CLV at 1%/month, churn tier);
- ``fit+score``: ``predicted_value_table(summary)`` end to end (both fits and the scoring): the
  target is on this one (< 10 s for 1M customers on 2 cores).

Then lifetimes (same process, same table, once, as its fits take long): ``BetaGeoFitter.fit`` on
the rows, ``GammaGammaFitter.fit`` on the repeat buyers with positive spend, and its scoring of the
same columns (``conditional_probability_alive``, ``conditional_expected_number_of_purchases_up_to_time``
at the three horizons, ``customer_lifetime_value`` for 12 months). ``--lifetimes-rows`` runs it on a
random subsample instead (said so in the output). Printed: seconds and the ratio lifetimes / kit.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segmentation_lib.data.demo import make_transactions  # noqa: E402
from segmentation_lib.features.btyd import btyd_summary  # noqa: E402
from segmentation_lib.predict.common import PredictWarning  # noqa: E402
from segmentation_lib.predict.counts import BetaGeoModel  # noqa: E402
from segmentation_lib.predict.spend import GammaGammaModel  # noqa: E402
from segmentation_lib.predict.value import predicted_value_table  # noqa: E402

AS_OF = "2025-01-01"
HORIZONS = (30, 90, 365)


def build_summary(n_customers: int, seed: int) -> pl.DataFrame:
    demo = make_transactions(n_customers=n_customers, seed=seed)
    return btyd_summary(demo.transactions.drop_nulls("customer_id"), AS_OF, freq="D")


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def run_kit(summary: pl.DataFrame, repeats: int) -> tuple[dict[str, float], BetaGeoModel, GammaGammaModel]:
    times: dict[str, list[float]] = {"bgnbd_fit": [], "gamma_gamma_fit": [], "score": [], "fit+score": []}
    bg = gg = None
    for _ in range(repeats):
        t, bg = timed(lambda: BetaGeoModel(freq="D").fit(summary))
        times["bgnbd_fit"].append(t)
        t, gg = timed(lambda: GammaGammaModel().fit(summary))
        times["gamma_gamma_fit"].append(t)
        t, _ = timed(lambda: predicted_value_table(summary, horizons=HORIZONS, freq="D", count_model=bg, spend_model=gg))
        times["score"].append(t)
        t, _ = timed(lambda: predicted_value_table(summary, horizons=HORIZONS, freq="D"))
        times["fit+score"].append(t)
    return {k: statistics.median(v) for k, v in times.items()}, bg, gg


def run_lifetimes(summary: pl.DataFrame) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    pdf = summary.to_pandas()
    x, tx, T, mv = pdf["frequency"], pdf["recency"], pdf["T"], pdf["monetary_value"]
    rep = pdf[(pdf["frequency"] > 0) & (pdf["monetary_value"] > 0)]
    out: dict[str, float] = {}
    out["bgnbd_fit"], bg = timed(lambda: BetaGeoFitter().fit(x, tx, T))
    try:
        out["gamma_gamma_fit"], gg = timed(lambda: GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"]))
    except Exception as exc:  # lifetimes raises ConvergenceError where the likelihood runs to a boundary
        print(f"  lifetimes Gamma-Gamma fit failed: {type(exc).__name__}")
        return out, dict(bg.params_), {}

    def score() -> None:
        bg.conditional_probability_alive(x, tx, T)
        for h in HORIZONS:
            bg.conditional_expected_number_of_purchases_up_to_time(h, x, tx, T)
        gg.conditional_expected_average_profit(x, mv)
        gg.customer_lifetime_value(bg, x, tx, T, mv, time=12, discount_rate=0.01, freq="D")

    out["score"], _ = timed(score)
    out["fit+score"] = out["bgnbd_fit"] + out["gamma_gamma_fit"] + out["score"]
    return out, dict(bg.params_), dict(gg.params_)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-customers", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lifetimes-rows", type=int, default=0, help="run lifetimes on a random subsample of this many rows (0: all)")
    ap.add_argument("--no-lifetimes", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore", PredictWarning)
    warnings.simplefilter("ignore", FutureWarning)

    t, summary = timed(lambda: build_summary(args.n_customers, args.seed))
    n_patterns = summary.select(pl.struct("frequency", "recency", "T").n_unique()).item()
    print(f"summary: {summary.height:,} customers, {n_patterns:,} distinct (frequency, recency, T) patterns "
          f"(demo log + btyd_summary, untimed: {t:.1f} s)")

    kit, bg, gg = run_kit(summary, args.repeats)
    print(f"kit (median of {args.repeats}):")
    for k, v in kit.items():
        print(f"  {k:16s} {v:7.2f} s")
    print(f"  BG/NBD {({k: round(v, 4) for k, v in bg.params_.items()})}, {bg.n_iter_} iterations")
    print(f"  Gamma-Gamma {({k: round(v, 4) for k, v in gg.params_.items()})}, {gg.n_fitted_:,} customers fitted, "
          f"{gg.n_excluded_:,} excluded (spend <= 0), r(frequency, spend) = {gg.correlation_:.2f}")
    print(f"  target fit+score < 10 s for 1M customers: {'met' if kit['fit+score'] < 10 * summary.height / 1e6 else 'NOT met'}")

    if args.no_lifetimes:
        return
    try:
        import lifetimes  # noqa: F401
    except Exception as exc:
        print(f"lifetimes not run: it does not import ({type(exc).__name__}: {exc})")
        return
    table = summary
    if args.lifetimes_rows and args.lifetimes_rows < summary.height:
        table = summary.sample(args.lifetimes_rows, seed=0)
        print(f"lifetimes on a random subsample of {table.height:,} customers (the kit's figures are for all "
              f"{summary.height:,}; the ratio below compares per-customer cost, kit time scaled by the row share)")
    lt, lt_bg, lt_gg = run_lifetimes(table)
    share = table.height / summary.height
    print("lifetimes (one run):")
    for k, v in lt.items():
        ratio = v / (kit[k] * share) if k in kit and kit[k] > 0 else float("nan")
        print(f"  {k:16s} {v:7.2f} s   lifetimes / kit = {ratio:5.1f}x")
    print(f"  lifetimes BG/NBD {({k: round(v, 4) for k, v in lt_bg.items()})}")
    if lt_gg:
        print(f"  lifetimes Gamma-Gamma {({k: round(v, 4) for k, v in lt_gg.items()})}")


if __name__ == "__main__":
    main()
