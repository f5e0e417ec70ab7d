"""Benchmark: reading a CSV transaction log whose amounts carry a thousands separator vs the same
log written plainly (issue 18: at most 1.5x the plain read).

Three files hold the same rows (customer id, ISO timestamp, amount; amounts up to ~1M, about a
third of them 1,000 or more): **plain** ``1234.50``; **thousands** ``"1,234.50"`` (quoted, because
"," is also the field separator; ``data.thousands: ','``); **European** ``1.234,50`` with ";" as the
field separator, as European exports are (``data.decimal: ','``, ``data.thousands: '.'``). Each is
read with ``read_transactions(...).collect()`` (the whole read: UTF-8 check, header, sample
checks, parse). Rounds are interleaved (plain, thousands, European, plain, ...), so a load spike
on a shared machine hits all variants alike; the table gives the median over rounds and the
ratio to the plain read of the same round (median of the per-round ratios), for wall time and for the
process's CPU time (all threads; steadier than wall time when other jobs share the cores). Every round checks
that the three reads give identical amounts. ``--gzip`` adds a ``.csv.gz`` copy of the plain file.

    python benchmarks/bench_read_formats.py [--rows 10000000] [--rounds 3] [--gzip]
"""
from __future__ import annotations

import argparse
import gzip
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from segmentation_lib.data.read import read_transactions


def write_logs(folder: Path, rows: int, seed: int = 7) -> dict[str, Path]:
    """plain.csv, thousands.csv, european.csv: the same ``rows`` transactions in three number formats."""
    rng = np.random.default_rng(seed)
    cents = np.round(rng.lognormal(5.5, 1.6, rows) * 100).astype(np.int64) % 100_000_000
    base = pl.DataFrame({
        "customer_id": rng.integers(0, rows // 10, rows).astype(str),
        "timestamp": (np.datetime64("2022-01-01T00:00:00") + rng.integers(0, 3 * 365 * 86400, rows)
                      .astype("timedelta64[s]")).astype(str),
        "whole": cents // 100, "frac": cents % 100,
    }).with_columns(pl.col("timestamp").str.replace("T", " ", literal=True))
    frac = pl.col("frac").cast(pl.String).str.zfill(2)

    def grouped(sep: str, dec: str) -> pl.Expr:
        return pl.when(pl.col("whole") >= 1000).then(
            pl.format("{}" + sep + "{}" + dec + "{}", pl.col("whole") // 1000,
                      (pl.col("whole") % 1000).cast(pl.String).str.zfill(3), frac)
        ).otherwise(pl.format("{}" + dec + "{}", pl.col("whole"), frac))

    files = {"plain": folder / "plain.csv", "thousands": folder / "thousands.csv", "european": folder / "european.csv"}
    base.select("customer_id", "timestamp", amount=pl.format("{}.{}", pl.col("whole"), frac)).write_csv(files["plain"])
    base.select("customer_id", "timestamp", amount=grouped(",", ".")).write_csv(files["thousands"])
    base.select("customer_id", "timestamp", amount=grouped(".", ",")).write_csv(files["european"], separator=";")
    return files


SETTINGS = {"plain": {}, "thousands": {"thousands": ","}, "european": {"decimal": ",", "thousands": "."},
            "plain_gzip": {}}
LABELS = {"plain": 'plain CSV ("1234.50")',
          "thousands": 'thousands separator ("1,234.50", data.thousands: \',\')',
          "european": 'European ("1.234,50", ";" fields, data.decimal: \',\', data.thousands: \'.\')',
          "plain_gzip": "plain CSV gzip-compressed (.csv.gz)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gzip", action="store_true", help="also read a .csv.gz copy of the plain file")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-read-"))
    try:
        t = time.perf_counter()
        files = write_logs(folder, args.rows)
        if args.gzip:
            files["plain_gzip"] = folder / "plain.csv.gz"
            with files["plain"].open("rb") as src, gzip.open(files["plain_gzip"], "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        sizes = ", ".join(f"{k} {p.stat().st_size / 1e6:.0f} MB" for k, p in files.items())
        print(f"polars {pl.__version__}, Python {platform.python_version()}, {platform.machine()}; "
              f"wrote {args.rows:,} rows in {time.perf_counter() - t:.1f} s ({sizes})")
        times: dict[str, list[float]] = {k: [] for k in files}
        cpu: dict[str, list[float]] = {k: [] for k in files}
        for r in range(args.rounds):
            reference = None
            for name, path in files.items():
                t, c = time.perf_counter(), time.process_time()
                out = read_transactions(path, **SETTINGS[name]).collect()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c)
                amounts = out["amount"]
                del out
                if reference is None:
                    reference = amounts
                elif not amounts.equals(reference):
                    raise SystemExit(f"round {r + 1}: {name} read different amounts than the plain file")
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s (cpu {cpu[k][-1]:.2f} s)" for k, v in times.items()),
                  flush=True)
        print()
        print("| file | read s (median) | ratio to plain | CPU s (median) | CPU ratio to plain |")
        print("|---|---|---|---|---|")
        for name in files:
            ratio = statistics.median([a / b for a, b in zip(times[name], times["plain"])])
            cpu_ratio = statistics.median([a / b for a, b in zip(cpu[name], cpu["plain"])])
            target = " (target <= 1.5x)" if name in ("thousands", "european") else ""
            print(f"| {LABELS[name]} | {statistics.median(times[name]):.2f} | {ratio:.2f}x{target} | "
                  f"{statistics.median(cpu[name]):.2f} | {cpu_ratio:.2f}x |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
