"""Memory and seconds of every cell of the report notebooks, each notebook in a fresh process.

Where does a whole run's memory go? ``bench_scale.py`` gives the peak of each notebook's kernel;
this script gives the step (cell = one library call) inside it: for each cell the seconds, the
resident memory after it and the peak while it ran (a thread samples /proc/self/statm every
50 ms). The notebooks run in pipeline order on one run folder (as ``segment run`` does), without
papermill, with ``report.keep_work`` semantics (the hand-off files stay in ``work/``).

    python benchmarks/profile_cells.py benchmarks/data/scale_10M/segment.yaml [--notebooks 01_exploration,03_clustering]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


#: modules whose public functions are timed and their peak memory recorded (the steps inside a cell)
STEP_MODULES = ("segmentation_lib.report.stages", "segmentation_lib.data.quality", "segmentation_lib.data.read",
                "segmentation_lib.features.customer", "segmentation_lib.features.btyd", "segmentation_lib.features.cohorts",
                "segmentation_lib.segment.predicted", "segmentation_lib.segment.rfm", "segmentation_lib.predict.value",
                "segmentation_lib.validate.separation", "segmentation_lib.validate.resampling",
                "segmentation_lib.validate.predictive", "segmentation_lib.validate.calibration",
                "segmentation_lib.validate.movement", "segmentation_lib.validate.truth",
                "segmentation_lib.validate.actionability", "segmentation_lib.validate.headline",
                "segmentation_lib.describe.activity", "segmentation_lib.report.plots")
ACTIVE: list[dict] = []
STEPS: dict[str, dict] = {}


def _instrument() -> None:
    """Wrap the public functions of STEP_MODULES: seconds, calls, peak RSS while running, RSS growth."""
    import functools
    import importlib
    import inspect

    for name in STEP_MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for attr, fn in list(vars(mod).items()):
            if attr.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != name:
                continue

            def wrap(fn=fn, key=f"{name.split('.', 1)[1]}.{attr}"):
                @functools.wraps(fn)
                def inner(*args, **kwargs):
                    rec = {"start": _rss()}
                    rec["peak"] = rec["start"]
                    ACTIVE.append(rec)
                    t0 = time.perf_counter()
                    try:
                        return fn(*args, **kwargs)
                    finally:
                        del ACTIVE[next(i for i, r in enumerate(ACTIVE) if r is rec)]
                        st = STEPS.setdefault(key, {"calls": 0, "s": 0.0, "peak_gb": 0.0, "growth_gb": 0.0})
                        st["calls"] += 1
                        st["s"] = round(st["s"] + time.perf_counter() - t0, 2)
                        st["peak_gb"] = max(st["peak_gb"], round(max(rec["peak"], _rss()) / 1e9, 2))
                        st["growth_gb"] = max(st["growth_gb"], round((rec["peak"] - rec["start"]) / 1e9, 2))
                return inner

            setattr(mod, attr, wrap())


def run_notebook(nb_path: Path, params: dict) -> list[dict]:
    """Execute the code cells of one notebook here (parameters cell first, then ``params``)."""
    import matplotlib

    matplotlib.use("Agg")
    nb = json.loads(nb_path.read_text())
    glb: dict = {"__name__": "__main__"}
    rows = []
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now = _rss()
            peak[0] = max(peak[0], now)
            for rec in list(ACTIVE):
                rec["peak"] = max(rec["peak"], now)
            time.sleep(0.05)

    _instrument()

    threading.Thread(target=sample, daemon=True).start()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = "".join(cell["source"])
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            exec(src, glb)
            glb.update(params)
            continue
        peak[0] = _rss()
        t0 = time.perf_counter()
        err = None
        try:
            exec(src, glb)
        except Exception as exc:  # noqa: BLE001 - report and go on
            err = f"{type(exc).__name__}: {str(exc)[:120]}"
        rows.append({"cell": src.strip().splitlines()[-1][:60], "s": round(time.perf_counter() - t0, 2),
                     "rss_gb": round(_rss() / 1e9, 2), "peak_gb": round(max(peak[0], _rss()) / 1e9, 2), "error": err})
    stop.set()
    rows.append({"steps": STEPS})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", type=Path)
    ap.add_argument("--notebooks", default="01_exploration,02_rfm,03_clustering,04_validation,05_value")
    ap.add_argument("--run-dir", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    repo = Path(__file__).resolve().parent.parent
    run_dir = (a.run_dir or Path(tempfile.mkdtemp(prefix="profile-run-", dir=a.config.parent))).resolve()
    params = {"config_path": str(a.config.resolve()), "run_dir": str(run_dir), "seed": 42, "run_id": "profile"}
    if a.child:
        print(json.dumps(run_notebook(repo / "notebooks" / f"{a.child}.ipynb", params)))
        return 0
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "history.json").write_text(json.dumps({"run": run_dir.name}))
    for name in a.notebooks.split(","):
        out = subprocess.run([sys.executable, __file__, str(a.config.resolve()), "--child", name, "--run-dir", str(run_dir)],
                             capture_output=True, text=True, cwd=repo / "notebooks",
                             env={**os.environ, "TQDM_DISABLE": "1"})
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("[")]
        if not lines:
            print(name, "FAILED", out.stderr[-800:])
            continue
        print(f"== {name}")
        rows = json.loads(lines[-1])
        steps = rows.pop()["steps"]
        for r in rows:
            print(f"  {r['s']:7.1f} s  rss {r['rss_gb']:5.2f} GB  peak {r['peak_gb']:5.2f} GB  {r['cell']}"
                  + (f"  ERROR {r['error']}" if r["error"] else ""), flush=True)
        print("  steps (peak GB while running, growth over the RSS at entry):")
        for k, v in sorted(steps.items(), key=lambda kv: -kv[1]["growth_gb"])[:12]:
            print(f"    {v['s']:7.1f} s  peak {v['peak_gb']:5.2f} GB  +{v['growth_gb']:5.2f} GB  x{v['calls']}  {k}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
