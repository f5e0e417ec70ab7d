"""Run folders: their names (``<date>_<time>_<id>``), listing finished and failed runs, and finding
what a killed run left behind.

A run works in ``<out>/.tmp-<id>/`` with an ``OWNER.json`` naming its process (pid, host, the
process's start time); ``stale_leftovers`` finds temporary folders and files whose process is gone
(``kill -9``, a power cut) and ``remove_leftovers`` deletes them: they can hold customer data.

>>> stale_leftovers("no-such-folder")
[]
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
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
    """Failed or interrupted run folders under ``out_dir`` with a readable FAILED.txt, newest first."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    return sorted((p for p in out.iterdir() if p.is_dir() and p.name.startswith(FAILED_PREFIX)
                   and complete_failed_run(p)),
                  key=lambda p: p.name[len(FAILED_PREFIX):], reverse=True)


def complete_failed_run(folder: Path) -> bool:
    """True when a failed-run folder can be shown: its FAILED.txt reads (a folder without one is not listed)."""
    try:
        (folder / "FAILED.txt").read_text(encoding="utf-8")
        return True
    except (OSError, UnicodeDecodeError):
        return False


# --------------------------------------------------------------------------- leftovers of killed runs


#: the file in a temporary run folder naming the process that works in it
OWNER_FILE = "OWNER.json"
#: a temporary folder or file without an owner record is stale once it is this old (seconds)
NO_OWNER_GRACE = 3600
#: temporary files of atomic writes: ``.<name>.<pid>.<random>.tmp`` (see ``report.html``)
TMP_FILE_RE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]+\.tmp$")


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``), or None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def write_owner(folder: Path) -> Path:
    """Record this process as the owner of the temporary run folder ``folder``."""
    pid = os.getpid()
    owner = {"pid": pid, "host": socket.gethostname(), "process_start": process_start(pid),
             "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = folder / OWNER_FILE
    path.write_text(json.dumps(owner) + "\n", encoding="utf-8")
    return path


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` runs (and, with ``start``, is the same process, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return False
    return start is None or process_start(pid) in (None, start)


@dataclass(frozen=True)
class Leftover:
    """A temporary folder or file under the reports folder and why it is (or is not) stale."""

    path: Path
    stale: bool
    reason: str


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _folder_state(folder: Path) -> Leftover:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        if _age(folder) > NO_OWNER_GRACE:
            return Leftover(folder, True, f"no owner record and untouched for over {NO_OWNER_GRACE // 60} minutes")
        return Leftover(folder, False, "no owner record yet (a run may be starting)")
    if host != socket.gethostname():
        return Leftover(folder, False, f"belongs to process {pid} on host {host}; remove it there")
    if process_alive(pid, owner.get("process_start")):
        return Leftover(folder, False, f"process {pid} is still running")
    return Leftover(folder, True, f"process {pid} on {host} (started {owner.get('started', '?')}) is no longer running")


def leftovers(out_dir: str | Path) -> list[Leftover]:
    """Every temporary run folder (``.tmp-*``) and temporary file (``.<name>.<pid>.<hex>.tmp``) directly
    under ``out_dir``, stale or not, sorted by name."""
    out = Path(out_dir)
    if not out.is_dir():
        return []
    found = []
    for p in sorted(out.iterdir()):
        if p.is_dir() and p.name.startswith(TMP_PREFIX):
            found.append(_folder_state(p))
        elif p.is_file() and (m := TMP_FILE_RE.match(p.name)):
            pid = int(m.group(1))
            alive = process_alive(pid) and _age(p) < NO_OWNER_GRACE
            found.append(Leftover(p, not alive, f"process {pid} is still writing it" if alive
                                  else f"temporary file of process {pid}, which is no longer writing it"))
    return found


def stale_leftovers(out_dir: str | Path) -> list[Leftover]:
    """The leftovers under ``out_dir`` whose process is gone (safe to remove)."""
    return [x for x in leftovers(out_dir) if x.stale]


def remove_leftovers(out_dir: str | Path, dry_run: bool = False) -> list[Leftover]:
    """Remove (or with ``dry_run`` only list) the stale leftovers under ``out_dir``; returns them.

    >>> remove_leftovers("no-such-folder")
    []
    """
    stale = stale_leftovers(out_dir)
    if not dry_run:
        for item in stale:
            if item.path.is_dir():
                shutil.rmtree(item.path, ignore_errors=True)
            else:
                item.path.unlink(missing_ok=True)
    return stale


def leftovers_message(removed: list[Leftover], dry_run: bool = False) -> str:
    """One line per removed leftover, for the terminal ("" when there are none).

    >>> leftovers_message([Leftover(Path("reports/.tmp-1a2b3c4d"), True, "process 7 on h is no longer running")])
    'Removed reports/.tmp-1a2b3c4d, left by a run that was killed (process 7 on h is no longer running); it could hold customer data.'
    """
    verb = "Would remove" if dry_run else "Removed"
    return "\n".join(f"{verb} {x.path}, left by a run that was killed ({x.reason}); it could hold customer data."
                      if x.path.name.startswith(TMP_PREFIX) else f"{verb} {x.path}, a temporary file of an unfinished write ({x.reason})."
                      for x in removed)
