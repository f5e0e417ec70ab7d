"""Helpers shared by the test modules (imported by name: pytest puts tests/ on sys.path)."""
from __future__ import annotations

from pathlib import Path


def kernel_pids(run_id: str) -> set[int]:
    """Processes whose environment names this run (the notebook kernel inherits SEGMENTATION_RUN_ID), via /proc."""
    pids = set()
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"SEGMENTATION_RUN_ID={run_id}".encode() in env.read_bytes():
                pids.add(int(env.parent.name))
        except OSError:
            continue
    return pids
