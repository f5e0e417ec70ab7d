"""Progress of long steps: one live status line with the elapsed time in a terminal, plain
timestamped log lines (no control characters) when the output is not a terminal, as in cron logs.

>>> import io
>>> from rich.console import Console
>>> log = Console(file=io.StringIO(), force_terminal=False)
>>> with step("Reading data.csv", console=log):
...     pass
>>> [line.split(" ", 1)[1] for line in log.file.getvalue().splitlines()]  # doctest: +ELLIPSIS
['Reading data.csv ...', 'Reading data.csv: done in 0.0 s']
"""
from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_line(console: Console, text: str) -> None:
    """One plain line ``<UTC timestamp> <text>``, never wrapped or styled."""
    console.out(f"{_stamp()} {text}", highlight=False)


@contextmanager
def step(message: str, *, console: Console | None = None, enabled: bool = True) -> Iterator[None]:
    """Show ``message`` while the block runs: in a terminal a spinner line with the elapsed time
    (replaced by ``message: done in N s`` at the end), otherwise a timestamped start line and a
    timestamped ``done in`` / ``failed after`` line."""
    console = console or Console(stderr=True)
    if not enabled:
        yield
        return
    t0 = time.monotonic()
    if console.is_terminal:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            bar.add_task(message, total=None)
            try:
                yield
            except BaseException:
                console.print(f"{message}: failed after {time.monotonic() - t0:.1f} s", highlight=False)
                raise
        console.print(f"{message}: done in {time.monotonic() - t0:.1f} s", highlight=False)
        return
    log_line(console, f"{message} ...")
    try:
        yield
    except BaseException:
        log_line(console, f"{message}: failed after {time.monotonic() - t0:.1f} s")
        raise
    log_line(console, f"{message}: done in {time.monotonic() - t0:.1f} s")
