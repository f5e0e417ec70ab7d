"""Seconds and peak memory of the report stages, per notebook, for ``manifest.json`` (``stage_seconds``).

A stage (or a step inside one) runs inside :func:`stage_timer`, which appends one JSON line
(``stage``, ``seconds``, ``peak_mb``: the process's resident-memory high-water mark when the stage
ended) to ``work/stage_times.jsonl`` of the run folder; the pipeline takes the lines after each
notebook (:func:`take_stage_times`) and files them under that notebook's name.

>>> import tempfile, pathlib
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> with stage_timer(work, "data"):
...     pass
>>> [r["stage"] for r in take_stage_times(work)], take_stage_times(work)
(['data'], [])
"""
from __future__ import annotations

import functools
import json
import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: the file the stages append to, in the run's ``work/`` folder
STAGE_TIMES_FILE = "stage_times.jsonl"


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (``VmHWM``; ``ru_maxrss`` where /proc is absent)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def record_stage(work: Path | str | None, stage: str, seconds: float) -> None:
    """Append ``{"stage", "seconds", "peak_mb"}`` to ``work/stage_times.jsonl`` (nothing when ``work`` is
    None or cannot be written: timings never fail a run)."""
    if work is None:
        return
    row = {"stage": stage, "seconds": round(float(seconds), 3), "peak_mb": peak_rss_mb()}
    try:
        Path(work).mkdir(parents=True, exist_ok=True)
        with open(Path(work) / STAGE_TIMES_FILE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
    except OSError:
        pass


@contextmanager
def stage_timer(work: Path | str | None, stage: str) -> Iterator[None]:
    """Time the block and :func:`record_stage` it (also when it raises)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        record_stage(work, stage, time.perf_counter() - t0)


def timing_dir(ctx: Any) -> Path | None:
    """Where a run context's timings go: its ``work/`` folder; None in an interactive session (JupyterLab),
    whose timings nobody collects."""
    return None if getattr(ctx, "interactive", False) else getattr(ctx, "work", None)


def timed_stage(stage: str) -> Callable[[F], F]:
    """Decorator of a report stage ``fn(ctx, ...)``: each call is timed into ``ctx.work``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(ctx: Any, *args: Any, **kwargs: Any) -> Any:
            with stage_timer(timing_dir(ctx), stage):
                return fn(ctx, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def timed(work: Path | str | None, stage: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, timed as ``stage`` (one step inside a stage).

    >>> timed(None, "sum", sum, [1, 2])
    3
    """
    with stage_timer(work, stage):
        return fn(*args, **kwargs)


def process_age_s() -> float | None:
    """Seconds since this process started (``/proc``; None elsewhere): in a notebook kernel, its start-up
    and imports up to the call."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            start_ticks = int(fh.read().decode().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def take_stage_times(work: Path | str) -> list[dict[str, Any]]:
    """The rows appended since the last call (the file is removed), in order; [] when there are none."""
    path = Path(work) / STAGE_TIMES_FILE
    try:
        text = path.read_text(encoding="utf-8")
        path.unlink()
    except OSError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
