"""Benchmark: the cost of declared text encodings (clustering.encodings) in the selection step.

One million customers: three numeric features (the baseline) against the same plus an ordinal
``plan_tier`` (4 levels) and a one-hot ``region`` (20 levels, ``max_levels: 8`` -> 9 columns).
Prints the best of 3 runs of ``fit_selection`` (fit + selected matrix) and of ``transform``, with
the ratio to the baseline measured in the same process. Run:

    .venv/bin/python benchmarks/bench_encoding.py
"""
from __future__ import annotations

import time

import numpy as np
import polars as pl

from segmentation_lib.segment.preprocessing import fit_selection, make_preprocessor

PLAN = ["free", "standard", "premium", "enterprise"]


def best(f, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(n: int = 1_000_000) -> None:
    rng = np.random.default_rng(0)
    df = pl.DataFrame({"n_orders": rng.poisson(4, n) + 1, "total_spend": rng.gamma(2, 60, n),
                       "days_since_last": rng.integers(0, 400, n), "plan_tier": rng.choice(PLAN, n),
                       "region": rng.choice([f"r{i}" for i in range(20)], n)})
    num = ["n_orders", "total_spend", "days_since_last"]
    enc = {"plan_tier": {"ordinal": PLAN}, "region": {"one_hot": {"max_levels": 8}}}
    fit_num = best(lambda: fit_selection(make_preprocessor(num), df))
    fit_enc = best(lambda: fit_selection(make_preprocessor(num + ["plan_tier", "region"], encodings=enc), df))
    p_num, p_enc = make_preprocessor(num), make_preprocessor(num + ["plan_tier", "region"], encodings=enc)
    fit_selection(p_num, df)
    fit_selection(p_enc, df)
    tr_num, tr_enc = best(lambda: p_num[0].transform(df)), best(lambda: p_enc[0].transform(df))
    print(f"{n:,} customers, {len(p_enc[0].get_feature_names_out())} selected columns with the encodings")
    print(f"fit_selection: numeric {fit_num:.2f} s, + 2 encoded {fit_enc:.2f} s (x{fit_enc / fit_num:.1f})")
    print(f"transform:     numeric {tr_num:.2f} s, + 2 encoded {tr_enc:.2f} s (x{tr_enc / tr_num:.1f})")


if __name__ == "__main__":
    main()
