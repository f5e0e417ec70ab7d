"""Benchmark: `segment run` at 10M, 30M and 100M transactions (issue 15, the scaling target).

The logs are demo-shaped (``segmentation_lib.data.demo.make_transactions``, about 10.6 rows per
customer) and generated chunk by chunk so that 100M rows are never held in memory: every chunk
of customers gets its own seed and a disjoint range of customer and order ids, and is written as
one Parquet part of a folder the kit reads as one log (``data.path`` = the folder). The customer
table and the truth are written beside it as one file each. Data is cached under
``benchmarks/data/scale_<size>/`` (delete the folder to regenerate).

Each size runs ``segment run`` in a fresh process; the whole process tree is sampled every
0.25 s for the resident memory of each process, so the table shows the peak of the largest
process (notebook kernels are child processes) and the peak of the tree, with the seconds per
notebook from the run's ``manifest.json`` and the peak of the kernel that ran each notebook.
The growth ratios (time and memory of each size against the smallest) are printed beside the
row ratio: linear scaling means time ratio <= row ratio.

    python benchmarks/bench_scale.py [--sizes 10M,30M] [--include-100m] [--chunk-customers 250000]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ROWS_PER_CUSTOMER = 10.6  # the demo's rows per customer (10.6M rows at 1M customers)
ORDER_STRIDE = 10**9      # order numbers of chunk i start at i * ORDER_STRIDE (a chunk has far fewer orders)


def parse_size(text: str) -> int:
    """Rows from ``"10M"``, ``"300k"`` or ``"12345"``.

    >>> parse_size("30M"), parse_size("250k")
    (30000000, 250000)
    """
    t = text.strip().upper()
    mult = {"K": 10**3, "M": 10**6}.get(t[-1:], 1)
    return int(float(t[:-1] if mult > 1 else t) * mult)


def size_label(rows: int) -> str:
    """``10M`` / ``200k`` / ``500``: the name of a size (folder ``scale_<label>``).

    >>> size_label(30_000_000), size_label(200_000)
    ('30M', '200k')
    """
    if rows >= 10**6 and rows % 10**6 == 0:
        return f"{rows // 10**6}M"
    return f"{rows // 10**3}k" if rows % 10**3 == 0 else str(rows)


def customers_for(rows: int) -> int:
    """Customers giving about ``rows`` demo rows: 10M -> 1M customers (10.6M rows)."""
    return max(10, int(round(rows / 10)))


def _renumber(frame: pl.DataFrame, offset: int, width: int, chunk: int) -> pl.DataFrame:
    """Shift the chunk-local ids: ``C0000001`` -> ``C<offset+1>``; order ``O..``/``G..`` numbers by
    ``chunk * ORDER_STRIDE`` (disjoint between chunks, prefixes kept)."""
    cid = pl.lit("C") + (pl.col("customer_id").str.slice(1).cast(pl.Int64) + offset).cast(pl.String).str.zfill(width)
    out = frame.with_columns(customer_id=cid)
    if "order_id" in frame.columns:
        num = pl.col("order_id").str.slice(1).cast(pl.Int64) + chunk * ORDER_STRIDE
        out = out.with_columns(order_id=pl.col("order_id").str.slice(0, 1) + num.cast(pl.String).str.zfill(12))
    return out


def write_chunked_demo(out_dir: str | Path, n_customers: int, chunk_customers: int = 250_000, seed: int = 42,
                       **kwargs: object) -> dict[str, object]:
    """Write a demo log of ``n_customers`` as Parquet parts ``transactions/part-00000.parquet`` ...,
    plus ``customers.parquet``, ``truth.parquet`` and ``manifest.json``; peak memory is one chunk.

    Chunk ``i`` is ``make_transactions(chunk_customers, seed=seed + i)`` with customer ids shifted
    by ``i * chunk_customers`` and order ids by ``i * ORDER_STRIDE``. Returns the manifest.

    >>> m = write_chunked_demo("/tmp/scale_doc", 500, chunk_customers=200)  # doctest: +SKIP
    >>> m["rows"]["customers"]                                              # doctest: +SKIP
    500
    """
    from segmentation_lib.data.demo import make_transactions

    out = Path(out_dir)
    tx_dir = out / "transactions"
    tx_dir.mkdir(parents=True, exist_ok=True)
    width = max(8, len(str(n_customers)))
    customers, truth, rows = [], [], []
    for i, lo in enumerate(range(0, n_customers, chunk_customers)):
        n = min(chunk_customers, n_customers - lo)
        demo = make_transactions(n_customers=max(n, 10), seed=seed + i, **kwargs)
        if n < 10:  # the generator's minimum; keep the requested count exactly
            keep = [f"C{j:07d}" for j in range(1, n + 1)]
            demo.transactions = demo.transactions.filter(pl.col("customer_id").is_in(keep) | pl.col("customer_id").is_null())
            demo.customers = demo.customers.filter(pl.col("customer_id").is_in(keep))
            demo.truth = demo.truth.filter(pl.col("customer_id").is_in(keep))
        tx = _renumber(demo.transactions, lo, width, i)
        tmp = tx_dir / f".part-{i:05d}.tmp"
        tx.write_parquet(tmp)
        tmp.replace(tx_dir / f"part-{i:05d}.parquet")
        rows.append(tx.height)
        customers.append(_renumber(demo.customers, lo, width, i))
        truth.append(_renumber(demo.truth, lo, width, i))
        del demo, tx
    pl.concat(customers).write_parquet(out / "customers.parquet")
    pl.concat(truth).write_parquet(out / "truth.parquet")
    manifest = {"n_customers": n_customers, "chunk_customers": chunk_customers, "seed": seed,
                "parts": len(rows), "rows": {"transactions": int(sum(rows)), "customers": n_customers},
                "generator": "benchmarks/bench_scale.py write_chunked_demo (make_transactions per chunk)"}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def ensure_data(rows: int, chunk_customers: int) -> tuple[Path, dict]:
    """The cached folder for ``rows`` (generated when missing or incomplete)."""
    folder = DATA / f"scale_{size_label(rows)}"
    man = folder / "manifest.json"
    if man.exists():
        return folder, json.loads(man.read_text())
    t0 = time.perf_counter()
    m = write_chunked_demo(folder, customers_for(rows), chunk_customers)
    print(f"generated {folder} ({m['rows']['transactions']:,} rows, {m['n_customers']:,} customers) "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder, m


def write_config(folder: Path) -> Path:
    """A run configuration pointing at the folder (defaults otherwise)."""
    cfg = folder / "segment.yaml"
    cfg.write_text(
        "run:\n  name: scale\n"
        "data:\n  path: transactions\n  customers:\n    path: customers.parquet\n  truth: truth.parquet\n"
        "report:\n  out_dir: runs\n", encoding="utf-8")
    return cfg


def _tree_rss(pid: int) -> dict[int, tuple[int, str]]:
    """RSS bytes and command line of ``pid`` and all its descendants (from /proc)."""
    procs: dict[int, tuple[int, int, str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            rss = int(stat.rsplit(")", 1)[1].split()[21]) * os.sysconf("SC_PAGE_SIZE")
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")[:200]
        except (OSError, IndexError, ValueError):
            continue
        procs[int(d)] = (ppid, rss, cmd)
    keep, todo = {}, [pid]
    while todo:
        p = todo.pop()
        if p in procs:
            keep[p] = (procs[p][1], procs[p][2])
        todo.extend(c for c, v in procs.items() if v[0] == p)
    return keep


def _running_step(log: Path) -> str:
    """The last progress line of the run log (which notebook was running)."""
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if "report " in ln]
    return lines[-1].split("Z ", 1)[-1] if lines else "start-up"


def _done_notebooks(log: Path) -> dict[str, float]:
    """Seconds of the notebooks the run log says finished (``report 2/6: 02_rfm: done in 84.3 s``)."""
    out = {}
    for ln in log.read_text(errors="replace").splitlines():
        if ": done in " in ln and "report " in ln:
            name = ln.split(": done in ")[0].rsplit(": ", 1)[-1]
            out[name] = float(ln.split(": done in ")[1].split()[0])
    return out


def run_once(folder: Path, log: Path, max_gb: float = 12.0, timeout_s: float | None = None) -> dict:
    """``segment run`` on the folder in a fresh process; seconds, peak RSS per process, manifest.

    The run is stopped (its process group killed) when the tree's resident memory exceeds
    ``max_gb``: the machine is shared; the result then says which notebook was running."""
    cfg = write_config(folder)
    shutil.rmtree(folder / "runs", ignore_errors=True)  # each run alone: "since last run" has no earlier run
    exe = Path(sys.executable).with_name("segment")
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen([str(exe), "run", "--config", str(cfg)], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=folder, env={**os.environ, "TQDM_DISABLE": "1"}, start_new_session=True)
        peak: dict[int, tuple[int, str, float]] = {}  # pid -> (peak rss, cmd, first seen)
        tree_peak = 0
        while proc.poll() is None:
            snap = _tree_rss(proc.pid)
            tree_peak = max(tree_peak, sum(r for r, _ in snap.values()))
            now = time.perf_counter() - t0
            for p, (r, cmd) in snap.items():
                old = peak.get(p, (0, cmd, now))
                peak[p] = (max(old[0], r), old[1] or cmd, old[2])  # a fresh fork has no command line yet
            if tree_peak > max_gb * 1e9 or (timeout_s and now > timeout_s):
                killed = _running_step(log) + (" (timeout)" if tree_peak <= max_gb * 1e9 else f" (over {max_gb} GB)")
                os.killpg(proc.pid, 9)
                proc.wait()
                break
            time.sleep(0.25)
        else:
            killed = None
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        kernels = sorted((v for p, v in peak.items() if p != proc.pid and "ipykernel" in v[1]), key=lambda v: v[2])
        done = _done_notebooks(log)
        return {"ok": False, "seconds": round(seconds, 1), "log": str(log), "stopped_in": killed,
                "notebooks": {n: {"seconds": sec, "kernel_peak_gb": round(kernels[i][0] / 1e9, 2) if i < len(kernels) else None}
                              for i, (n, sec) in enumerate(done.items())},
                "kernel_peaks_gb": [round(k[0] / 1e9, 2) for k in kernels],
                "last_step": _running_step(log), "tree_peak_gb": round(tree_peak / 1e9, 2),
                "peak_gb": round(max((v[0] for v in peak.values()), default=0) / 1e9, 2)}
    runs = sorted((folder / "runs").glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    man = json.loads(runs[-1].read_text()) if runs else {}
    kernels = sorted((v for p, v in peak.items() if p != proc.pid and "ipykernel" in v[1]), key=lambda v: v[2])
    nb = list(man.get("notebook_seconds", {}))
    per_nb = {name: {"seconds": man["notebook_seconds"][name],
                     "kernel_peak_gb": round(kernels[i][0] / 1e9, 2) if i < len(kernels) else None}
              for i, name in enumerate(nb)}
    main = peak.get(proc.pid, (0, "", 0))[0]
    top = [{"gb": round(v[0] / 1e9, 2), "start_s": round(v[2], 1), "cmd": v[1][:120]}
           for v in sorted(peak.values(), key=lambda v: -v[0])[:8]]
    return {"ok": True, "seconds": round(seconds, 1), "peak_gb": round(max(v[0] for v in peak.values()) / 1e9, 2),
            "main_peak_gb": round(main / 1e9, 2), "tree_peak_gb": round(tree_peak / 1e9, 2), "notebooks": per_nb,
            "processes": top}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10M,30M", help="comma-separated row counts, e.g. 10M,30M")
    ap.add_argument("--include-100m", action="store_true", help="also run 100M rows (about 10M customers)")
    ap.add_argument("--chunk-customers", type=int, default=250_000)
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--max-gb", type=float, default=12.0, help="stop a run whose processes hold more than this (GB)")
    ap.add_argument("--timeout-s", type=float, default=None, help="stop a run after this many seconds (partial figures)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)
    sizes = [parse_size(s) for s in a.sizes.split(",") if s.strip()]
    if a.include_100m and 100 * 10**6 not in sizes:
        sizes.append(100 * 10**6)
    results = []
    for rows in sizes:
        folder, man = ensure_data(rows, a.chunk_customers)
        if a.generate_only:
            continue
        r = run_once(folder, folder / "run.log", a.max_gb, a.timeout_s)
        r.update(size=size_label(rows), rows=man["rows"]["transactions"], customers=man["n_customers"])
        results.append(r)
        print(json.dumps(r), flush=True)
    if not results:
        return 0
    base = results[0]
    print(f"\n{'size':>5} {'rows':>12} {'customers':>10} {'s':>7} {'peak GB':>8} {'tree GB':>8} "
          f"{'row x':>6} {'time x':>7} {'mem x':>6}")
    for r in results:
        rx = r["rows"] / base["rows"]
        tx = r["seconds"] / base["seconds"]
        mx = r["peak_gb"] / base["peak_gb"] if base["peak_gb"] else float("nan")
        print(f"{r['size']:>5} {r['rows']:>12,} {r['customers']:>10,} {r['seconds']:>7.1f} {r['peak_gb']:>8.2f} "
              f"{r.get('tree_peak_gb', float('nan')):>8.2f} {rx:>6.2f} "
              + (f"{tx:>7.2f} {mx:>6.2f}" if r["ok"] else f"{'-':>7} {'-':>6}  STOPPED/FAILED (no ratio)"))
    print("\nper notebook: seconds / peak GB of its kernel")
    for r in results:
        nbs = ", ".join(f"{k} {v['seconds']:.0f}s/{v['kernel_peak_gb']}GB" for k, v in r.get("notebooks", {}).items())
        print(f"{r['size']:>5}: {nbs}" + (f"  STOPPED in {r['stopped_in']}" if r.get("stopped_in") else ""))
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
