"""Run folders: their names (``<date>_<time>_<id>``), and listing finished and failed runs."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path


#: folder names of successful runs: 2024-05-01_093000_1a2b3c4d
RUN_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}_\d{6}_[0-9a-f]{8}$")
FAILED_PREFIX = "failed-"
TMP_PREFIX = ".tmp-"


# --------------------------------------------------------------------------- run folders


def run_names(started: dt.datetime, run_id: str) -> tuple[str, str]:
    stamp = started.astimezone().strftime("%Y-%m-%d_%H%M%S")
    return f"{stamp}_{run_id}", f"{FAILED_PREFIX}{stamp}_{run_id}"


def list_runs(out_dir: str | Path) -> list[Path]:
    """Successful run folders under ``out_dir`` (with an index.html), newest first."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    runs = [p for p in out.iterdir() if p.is_dir() and RUN_DIR_RE.match(p.name) and (p / "index.html").is_file()]
    return sorted(runs, key=lambda p: p.name, reverse=True)


def list_failed_runs(out_dir: str | Path) -> list[Path]:
    """Failed or interrupted run folders under ``out_dir``, newest first."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    return sorted((p for p in out.iterdir() if p.is_dir() and p.name.startswith(FAILED_PREFIX)),
                  key=lambda p: p.name[len(FAILED_PREFIX):], reverse=True)
