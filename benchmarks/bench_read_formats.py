"""Benchmark: reading a CSV transaction log whose amounts carry a thousands separator ("1,234.50",
quoted because "," is also the field separator) vs the same log written plainly ("1234.50").

Both files hold the same rows (customer id, ISO timestamp, amount); each is read with
``read_transactions(...).collect()`` (the whole read: UTF-8 check, header, sample checks, parse),
best of ``--repeat`` runs. Target (issue 18): the thousands-separator file costs at most 1.5x the plain one.
Also reports a ``.csv.gz`` copy of the plain file (decompressed to a temporary file first).

    python benchmarks/bench_read_formats.py [--rows 10000000] [--repeat 2]
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from segmentation_lib.data.read import read_transactions


def write_logs(folder: Path, rows: int, seed: int = 7) -> tuple[Path, Path]:
    """(plain.csv, thousands.csv): the same ``rows`` transactions, amounts up to ~100k."""
    rng = np.random.default_rng(seed)
    cents = np.round(rng.lognormal(5.5, 1.6, rows) * 100).astype(np.int64) % 100_000_000
    base = pl.DataFrame({
        "customer_id": rng.integers(0, rows // 10, rows).astype(str),
        "timestamp": (np.datetime64("2022-01-01T00:00:00") + rng.integers(0, 3 * 365 * 86400, rows)
                      .astype("timedelta64[s]")).astype(str),
        "whole": cents // 100, "frac": cents % 100,
    }).with_columns(pl.col("timestamp").str.replace("T", " ", literal=True))
    frac = pl.col("frac").cast(pl.String).str.zfill(2)
    plain = base.select("customer_id", "timestamp", amount=pl.format("{}.{}", pl.col("whole"), frac))
    grouped = pl.when(pl.col("whole") >= 1000).then(
        pl.format("{},{}.{}", pl.col("whole") // 1000, (pl.col("whole") % 1000).cast(pl.String).str.zfill(3), frac)
    ).otherwise(pl.format("{}.{}", pl.col("whole"), frac))
    sep = base.select("customer_id", "timestamp", amount=grouped)
    plain.write_csv(folder / "plain.csv")
    sep.write_csv(folder / "thousands.csv")
    return folder / "plain.csv", folder / "thousands.csv"


def best(fn, repeat: int) -> tuple[float, pl.DataFrame]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-read-"))
    try:
        t = time.perf_counter()
        plain, sep = write_logs(folder, args.rows)
        print(f"wrote {args.rows:,} rows twice in {time.perf_counter() - t:.1f} s "
              f"({plain.stat().st_size / 1e6:.0f} MB / {sep.stat().st_size / 1e6:.0f} MB)")
        t_plain, a = best(lambda: read_transactions(plain).collect(), args.repeat)
        t_sep, b = best(lambda: read_transactions(sep, thousands=",").collect(), args.repeat)
        assert a["amount"].equals(b["amount"]), "the two files must read to the same amounts"
        with plain.open("rb") as src, gzip.open(folder / "plain.csv.gz", "wb", compresslevel=1) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        t_gz, c = best(lambda: read_transactions(folder / "plain.csv.gz").collect(), 1)
        assert c["amount"].equals(a["amount"])
        print("| file | read s | ratio to plain |")
        print("|---|---|---|")
        print(f"| plain CSV (1234.50) | {t_plain:.2f} | 1.00x |")
        print(f"| thousands separator (\"1,234.50\", data.thousands: ',') | {t_sep:.2f} | {t_sep / t_plain:.2f}x (target <= 1.5x) |")
        print(f"| plain CSV gzip-compressed (.csv.gz) | {t_gz:.2f} | {t_gz / t_plain:.2f}x |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
