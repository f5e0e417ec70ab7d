"""Benchmark: a whole ``segment run`` against the polars floor measured in the same script.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_run.py                                # the 10.6M-row demo log (1M customers)
    .venv/bin/python benchmarks/bench_run.py --data path/to/log.parquet     # any log (file, folder or glob)
    .venv/bin/python benchmarks/bench_run.py --data big/ --config my.yaml --rounds 2 --json out.json

Without ``--data`` the demo log ``benchmarks/data/demo_1m/transactions.parquet`` is used, generated
first when absent (``segment demo-data --out benchmarks/data/demo_1m --n-customers 1000000 --seed 7``,
~10.5M rows); ``--n-customers`` / ``--seed`` pick another demo size. Logs made by other generators
(10M / 30M / 100M rows) are given with ``--data``.

Per round: the **polars floor** (``scan_parquet(path).group_by("customer_id").agg(len, min ts, max ts,
sum amount).collect(engine="streaming")``, median of ``--floor-repeats``, in this process), then
``segment run`` in a subprocess on the configuration ``--config`` with ``data.path`` set to the log
(and ``data.customers.path`` / ``data.truth`` set to ``customers.parquet`` / ``truth.parquet`` beside
it when they exist, as the demo writes them; ``--bare``: neither). The configuration actually run is
written, with absolute paths, to ``<work>/bench_config.yaml``.

Printed: whole-run seconds and ``x floor`` (of the same round), the peak resident memory of the
largest process of the run's process tree, and per notebook: seconds (the run's ``manifest.json``),
the kernel's peak resident memory, and the stages the kernel ran (seconds, peak MB so far, and
whether they were computed or read from the run folder) when the run records them
(``manifest.json`` ``stage_seconds``).

Memory: a sampler thread walks ``/proc`` every ``--sample-interval`` seconds, finds every process
descending from the ``segment run`` process (the notebook kernels are its children) and reads each
one's ``VmHWM`` (the kernel's own high-water mark of resident memory, so a peak between two samples
is not missed, only the last interval of a process's life). ``resource.getrusage(RUSAGE_CHILDREN)``
is printed beside it as a cross-check (on Linux it is the largest ``ru_maxrss`` of the waited
process tree, an upper bound: it also counts a parent's memory inherited at fork).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
DEMO_DIR = HERE / "data" / "demo_1m"


# ----------------------------------------------------------------------------------- data


def ensure_demo(out: Path, n_customers: int, seed: int) -> Path:
    """The demo log at ``out/transactions.parquet``, generated with ``segment demo-data`` when absent."""
    path = out / "transactions.parquet"
    if not path.is_file():
        segment = Path(sys.executable).with_name("segment")
        cmd = [str(segment), "demo-data", "--out", str(out), "--n-customers", str(n_customers), "--seed", str(seed)]
        print("generating:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return path


def scan_target(data: Path) -> str:
    """What ``pl.scan_parquet`` reads: the file, a glob as given, or every Parquet file under a folder."""
    if data.is_dir():
        return str(data / "**" / "*.parquet")
    return str(data)


def floor_once(target: str) -> float:
    """Seconds of the polars floor on ``target``."""
    import polars as pl

    t0 = time.perf_counter()
    (pl.scan_parquet(target).group_by("customer_id")
     .agg(pl.len(), pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"),
          pl.col("amount").sum())
     .collect(engine="streaming"))
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------------- memory


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _status_kb(pid: int, keys: tuple[str, ...] = ("VmHWM", "VmRSS")) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                k = line.split(":", 1)[0]
                if k in keys:
                    out[k] = int(line.split()[1])
    except OSError:
        pass
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class TreeSampler(threading.Thread):
    """Samples the process tree under ``root``: per process its first-seen time, command line and the
    largest VmHWM seen; the largest sum of VmRSS over the tree at one instant."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.procs: dict[int, dict] = {}
        self.tree_rss_peak_kb = 0
        self._halt = threading.Event()
        self.t0 = time.perf_counter()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)
        self.sample()

    def sample(self) -> None:
        kids = _children_map()
        todo, seen = [self.root], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo.extend(kids.get(pid, []))
        total = 0
        for pid in seen:
            st = _status_kb(pid)
            if not st:
                continue
            rec = self.procs.get(pid)
            if rec is None:
                rec = self.procs[pid] = {"pid": pid, "first_seen": time.perf_counter() - self.t0,
                                         "cmd": _cmdline(pid), "hwm_kb": 0, "direct": pid in kids.get(self.root, [])}
            rec["hwm_kb"] = max(rec["hwm_kb"], st.get("VmHWM", 0))
            rec["last_seen"] = time.perf_counter() - self.t0
            total += st.get("VmRSS", 0)
        self.tree_rss_peak_kb = max(self.tree_rss_peak_kb, total)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ----------------------------------------------------------------------------------- the run


def write_bench_config(config: Path, data: Path, work: Path, bare: bool) -> Path:
    """The configuration the run uses: ``config`` with data.path (and the demo's customers / truth files)
    set; absolute paths, written to ``work/bench_config.yaml``."""
    from segmentation_lib.config import dump_config, load_config

    folder = data if data.is_dir() else data.parent
    customers, truth = folder / "customers.parquet", folder / "truth.parquet"
    over = {"data": {"path": str(data.resolve()),
                     "customers": {"path": str(customers.resolve()) if customers.is_file() and not bare else None},
                     "truth": str(truth.resolve()) if truth.is_file() and not bare else None}}
    cfg = load_config(config, overrides=over)
    out = work / "bench_config.yaml"
    out.write_text(dump_config(cfg), encoding="utf-8")
    return out


def run_once(bench_cfg: Path, out_dir: Path, interval: float) -> dict:
    """``segment run`` in a subprocess with the process-tree sampler; seconds, memory, manifest."""
    segment = Path(sys.executable).with_name("segment")
    cmd = [str(segment), "run", "--config", str(bench_cfg), "--out", str(out_dir)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid, interval)
    sampler.start()
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - t0
    sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"segment run failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    index = Path(stdout.strip().splitlines()[-1])
    manifest = json.loads((index.parent / "manifest.json").read_text())
    # the notebook kernels: direct children of the run (a kernel's forked workers have the same command line)
    kernels = sorted((p for p in sampler.procs.values() if "ipykernel" in p["cmd"] and p["direct"]),
                     key=lambda p: p["first_seen"])
    largest = max(sampler.procs.values(), key=lambda p: p["hwm_kb"])
    return {"seconds": seconds, "manifest": manifest, "kernels": kernels, "run_dir": str(index.parent),
            "largest_mb": largest["hwm_kb"] / 1024, "largest_cmd": largest["cmd"][:80],
            "tree_rss_peak_mb": sampler.tree_rss_peak_kb / 1024,
            "rusage_children_mb": (after if after > before else before) / 1024, "stderr": stderr}


def report(res: dict, floor: float) -> list[dict]:
    """Print one run's figures; returns the per-notebook rows."""
    man = res["manifest"]
    nb_secs = man.get("notebook_seconds") or {}
    stages = man.get("stage_seconds") or {}
    print(f"whole run: {res['seconds']:.1f} s = {res['seconds'] / floor:.1f} x floor "
          f"(floor {floor:.2f} s); manifest seconds {man.get('seconds')}", flush=True)
    print(f"peak resident memory, largest process: {res['largest_mb']:.0f} MB ({res['largest_cmd']}); "
          f"whole tree at one instant: {res['tree_rss_peak_mb']:.0f} MB; "
          f"getrusage(RUSAGE_CHILDREN) max: {res['rusage_children_mb']:.0f} MB", flush=True)
    rows = []
    names = list(nb_secs)
    print(f"{'notebook':<22}{'s':>8}{'x floor':>9}{'peak MB':>9}", flush=True)
    for i, name in enumerate(names):
        k = res["kernels"][i] if i < len(res["kernels"]) else None
        # the kernel's own high-water marks recorded by its stages, else the sampled one of the i-th kernel
        marks = [st["peak_mb"] for st in stages.get(name, []) if st.get("peak_mb")]
        peak = max(marks) if marks else k["hwm_kb"] / 1024 if k else float("nan")
        rows.append({"notebook": name, "seconds": nb_secs[name], "x_floor": nb_secs[name] / floor, "peak_mb": peak,
                     "stages": stages.get(name, [])})
        print(f"{name:<22}{nb_secs[name]:>8.1f}{nb_secs[name] / floor:>9.1f}{peak:>9.0f}", flush=True)
        for st in stages.get(name, []):
            if st["stage"].startswith("cell: ") and st["seconds"] < max(0.5, 0.02 * nb_secs[name]):
                continue  # the display cells that take a noticeable share only
            print(f"    {st['stage']:<30}{st['seconds']:>8.1f} s  peak {st.get('peak_mb', float('nan')):>6.0f} MB"
                  f"  {st.get('how', '')}", flush=True)
    rest = res["seconds"] - sum(nb_secs.values())
    print(f"{'(outside notebooks)':<22}{rest:>8.1f}{rest / floor:>9.1f}   (start-up, checks, HTML, manifest)", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="transaction log (Parquet file, folder or glob); default: the 1M demo")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    ap.add_argument("--n-customers", type=int, default=1_000_000, help="demo size when --data is not given")
    ap.add_argument("--seed", type=int, default=7, help="demo seed when --data is not given")
    ap.add_argument("--rounds", type=int, default=1, help="floor + whole run, this many times")
    ap.add_argument("--floor-repeats", type=int, default=3)
    ap.add_argument("--bare", action="store_true", help="no customers / truth file even when beside the log")
    ap.add_argument("--sample-interval", type=float, default=0.2)
    ap.add_argument("--work", type=Path, default=HERE / "data" / "run_bench", help="where the runs go (removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the run folders")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()

    import polars as pl

    if args.data is None:
        folder = DEMO_DIR if (args.n_customers, args.seed) == (1_000_000, 7) else \
            HERE / "data" / f"demo_{args.n_customers}_seed{args.seed}"
        data = ensure_demo(folder, args.n_customers, args.seed)
    else:
        data = args.data
    target = scan_target(data)
    n_rows = pl.scan_parquet(target).select(pl.len()).collect().item()
    print(f"log: {data}: {n_rows:,} rows; config {args.config}; polars {pl.__version__}; "
          f"{os.cpu_count()} cores; {args.rounds} round(s)", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    bench_cfg = write_bench_config(args.config, data, args.work, args.bare)
    results = []
    for r in range(args.rounds):
        floors = [floor_once(target) for _ in range(args.floor_repeats)]
        floor = statistics.median(floors)
        print(f"round {r + 1}: polars floor {', '.join(f'{f:.2f}' for f in floors)} s -> median {floor:.2f} s", flush=True)
        out_dir = args.work / f"reports_{r + 1}"
        shutil.rmtree(out_dir, ignore_errors=True)
        res = run_once(bench_cfg, out_dir, args.sample_interval)
        rows = report(res, floor)
        results.append({"round": r + 1, "rows": n_rows, "floor_s": floor, "floors": floors, "run_s": res["seconds"],
                        "x_floor": res["seconds"] / floor, "peak_mb": res["largest_mb"],
                        "tree_peak_mb": res["tree_rss_peak_mb"], "rusage_children_mb": res["rusage_children_mb"],
                        "notebooks": rows})
        if not args.keep:
            shutil.rmtree(out_dir, ignore_errors=True)
    if args.rounds > 1:
        print(f"median over rounds: {statistics.median(r['x_floor'] for r in results):.1f} x floor, "
              f"peak {max(r['peak_mb'] for r in results):.0f} MB", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"data": str(data), "config": str(args.config), "results": results}, indent=1))


if __name__ == "__main__":
    main()
