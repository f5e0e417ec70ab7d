"""Benchmark: the purchase-mix features (features/purchase_mix.py) against the customer feature table
on the same demo log with categories and discounts, median of ``--repeat`` runs in one process.

Reports seconds and the ratio to ``customer_features`` (the figure to compare between machines;
absolute times on a shared machine are noisy), for category and discount features together and alone.

    python benchmarks/bench_purchase_mix.py [--customers 300000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Callable

from segmentation_lib.data.demo import make_transactions
from segmentation_lib.features.customer import customer_features
from segmentation_lib.features.purchase_mix import purchase_mix_features


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    demo = make_transactions(n_customers=args.customers, seed=1, categories=True, discounts=True)
    tx = demo.transactions.drop_nulls("customer_id")
    as_of = demo.params["as_of"]
    print(f"{tx.height:,} rows, {args.customers:,} customers")
    base = median_seconds(lambda: customer_features(tx.drop("category", "discount"), as_of), args.repeat)
    print(f"customer_features: {base:.2f} s")
    for cols in (["category", "discount"], ["category"], ["discount"]):
        s = median_seconds(lambda: purchase_mix_features(tx, as_of, columns=cols), args.repeat)
        print(f"purchase_mix_features {'+'.join(cols)}: {s:.2f} s ({s / base:.2f}x customer_features)")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
