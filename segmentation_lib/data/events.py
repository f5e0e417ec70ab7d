"""Product-usage event logs (``data.events``): read and clean them with the transaction log's
quality rules, counting every dropped row.

Rules (from ``quality``): rows without a customer id (``null_customer``), rows whose timestamp
could not be read (``bad_timestamp``), rows after ``as_of`` (``future``) and exact duplicate rows
(``duplicates``) are dropped and counted, or stop the run when the rule says ``error``.

>>> lf = pl.LazyFrame({"customer_id": ["a", None, "a"], "event": ["login"] * 3,
...     "timestamp": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)] * 3, "_raw_timestamp": [None] * 3})
>>> clean_events(lf, dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc))[1]["dropped"]
{'null_customer': 1, 'bad_timestamp': 0, 'future': 0, 'duplicates': 1}
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl

from segmentation_lib.data.read import read_events
from segmentation_lib.errors import DataError


def load_events(config: Mapping[str, Any]) -> pl.LazyFrame | None:
    """The event log named by ``data.events`` of a run configuration (lazy, unchecked), or None.

    >>> load_events({"data": {"events": {"path": None}}}) is None
    True
    """
    data = dict(config.get("data") or {})
    section = dict(data.get("events") or {})
    if not section.get("path"):
        return None
    return read_events(section["path"], section.get("columns"), date_format=section.get("date_format"),
                       timezone=data.get("timezone") or "UTC", encoding=data.get("encoding") or "utf8",
                       sheet=section.get("sheet"), timestamp_unit=section.get("timestamp_unit"))


def clean_events(lf: pl.LazyFrame, as_of: dt.datetime | None = None,
                 quality: Mapping[str, Any] | None = None, label: str = "data.events") -> tuple[pl.DataFrame, dict]:
    """(clean events, report): the rows kept and the count of each rule's drops (see the module doc).

    ``report`` has ``rows_in``, ``rows_out``, ``dropped`` (per rule), ``bad_timestamp_examples`` and
    ``as_of`` (the latest event when not given).
    """
    q = dict(quality or {})
    df = lf.collect()
    rows_in = df.height
    dropped: dict[str, int] = {}
    examples: list[str] = []

    def apply(rule: str, bad: pl.Expr, what: str) -> None:
        nonlocal df
        n = int(df.select(bad.sum()).item() or 0)
        dropped[rule] = n
        if n and q.get(rule) == "error":
            raise DataError(f"{label}: {n:,} event row(s) {what}. Fix: repair those rows, or set quality.{rule}: "
                            "drop to drop and count them.")
        if n:
            df = df.filter(~bad)

    apply("null_customer", pl.col("customer_id").is_null() | (pl.col("customer_id") == ""), "have no customer id")
    if "_raw_timestamp" in df.columns:
        examples = df.filter(pl.col("timestamp").is_null())["_raw_timestamp"].drop_nulls().unique(
            maintain_order=True).head(3).to_list()
    apply("bad_timestamp", pl.col("timestamp").is_null(), f"have a timestamp that could not be read (e.g. {examples})")
    if as_of is None:
        as_of = df["timestamp"].max() if df.height else None
    if as_of is not None:
        apply("future", pl.col("timestamp") > pl.lit(as_of).cast(df.schema["timestamp"]), f"fall after {as_of}")
    else:
        dropped["future"] = 0
    df = df.drop("_raw_timestamp", strict=False)
    if q.get("duplicates", "drop") == "drop":
        before = df.height
        df = df.unique(maintain_order=True)
        dropped["duplicates"] = before - df.height
    else:
        dropped["duplicates"] = 0
    if df.height == 0:
        raise DataError(f"{label}: no event rows are left after the quality rules ({rows_in:,} read; dropped "
                        f"{dropped}). Fix: check data.events.columns and the timestamp settings.")
    return df, {"rows_in": rows_in, "rows_out": df.height, "dropped": dropped,
                "bad_timestamp_examples": examples, "as_of": as_of}
