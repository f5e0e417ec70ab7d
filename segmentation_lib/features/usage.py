"""Usage features per customer from a product-usage event log (``data.events``), docs/features.md.

Per customer, from the events before ``as_of`` (exclusive, as for the purchase features; a window of
``w`` days holds the events at or after ``as_of - w days``; day counts are differences of UTC dates): ``n_events``, ``active_days`` (distinct days with an event),
``sessions`` (distinct session ids; one session per active day when the log has none),
``active_days_{w}d`` / ``sessions_{w}d`` in each window, ``sessions_per_active_week``,
``distinct_events`` (breadth), ``events_per_session`` (depth), ``usage_trend`` (events in the
last 30 days vs the 90 days before, as rates per day: ``(r30 - r90) / (r30 + r90)``, from -1 (stopped)
to 1 (all new), 0 when both are zero), ``days_since_last_activity``, ``usage_tenure_days`` and, for
each key feature ``f``, ``adopted_f`` (0/1) and ``first_use_f`` (the date it was first used).

>>> import datetime as dt
>>> ev = pl.DataFrame({"customer_id": ["a", "a", "a", "b"], "event": ["login", "export", "login", "login"],
...     "session_id": ["s1", "s1", "s2", "s3"],
...     "timestamp": [dt.datetime(2024, 1, d, tzinfo=dt.timezone.utc) for d in (1, 1, 5, 9)]})
>>> f = usage_features(ev, "2024-01-10", windows=(7,), key_features=("export",))
>>> f.select("customer_id", "sessions", "distinct_events", "events_per_session", "sessions_7d", "adopted_export").rows()
[('a', 2, 2, 1.5, 1, 1), ('b', 1, 1, 1.0, 1, 0)]
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from segmentation_lib.data.quality import parse_as_of
from segmentation_lib.errors import ConfigError

TREND_RECENT, TREND_BEFORE = 30, 90


def feature_column(name: str) -> str:
    """A key feature's event name as a column-name part: ``"Export PDF"`` -> ``"export_pdf"``.

    >>> feature_column("Export PDF")
    'export_pdf'
    """
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "feature"


def usage_features(events: pl.DataFrame | pl.LazyFrame, as_of: str | dt.date | dt.datetime,
                   windows: Sequence[int] = (30, 90, 365), key_features: Sequence[str] = ()) -> pl.DataFrame:
    """One row per customer of the event log (sorted by id): the usage columns of the module doc.

    ``events`` holds ``customer_id``, ``timestamp`` (Datetime UTC), ``event`` and optionally
    ``session_id`` (see :func:`segmentation_lib.data.read.read_events`); events after ``as_of`` are left out.
    """
    windows = sorted({int(w) for w in windows})
    if any(w <= 0 for w in windows):
        raise ConfigError(f"usage_features: windows={windows} must be positive numbers of days. "
                          "Fix: set features.windows to e.g. [30, 90, 365].")
    cols = {c.lower() for c in (feature_column(k) for k in key_features)}
    if len(cols) != len(list(key_features)):
        raise ConfigError(f"features.key_features {list(key_features)} name the same feature twice (after lower "
                          "case and '_' for other characters). Fix: list each event name once.")
    when = parse_as_of(as_of)
    lf = events.lazy()
    has_session = "session_id" in lf.collect_schema().names()
    ts = pl.col("timestamp")
    lf = lf.filter(ts < when).with_columns(day=ts.dt.date())
    session = (pl.col("session_id") if has_session else pl.col("day").cast(pl.String))
    lf = lf.with_columns(session=pl.coalesce(session, pl.col("day").cast(pl.String)))

    def within(days: int) -> pl.Expr:
        return ts >= when - dt.timedelta(days=days)

    recent = within(TREND_RECENT).sum() / TREND_RECENT
    before = (~within(TREND_RECENT) & within(TREND_RECENT + TREND_BEFORE)).sum() / TREND_BEFORE
    today = pl.lit(when.date())
    aggs = [
        pl.len().alias("n_events"),
        pl.col("day").n_unique().alias("active_days"),
        pl.col("session").n_unique().alias("sessions"),
        *[pl.col("day").filter(within(w)).n_unique().alias(f"active_days_{w}d") for w in windows],
        *[pl.col("session").filter(within(w)).n_unique().alias(f"sessions_{w}d") for w in windows],
        pl.col("day").dt.truncate("1w").n_unique().alias("_active_weeks"),
        pl.col("event").n_unique().alias("distinct_events"),
        pl.when(recent + before > 0).then((recent - before) / (recent + before)).otherwise(0.0).alias("usage_trend"),
        (today - pl.col("day").max()).dt.total_days().alias("days_since_last_activity"),
        (today - pl.col("day").min()).dt.total_days().alias("usage_tenure_days"),
    ]
    for name in key_features:
        c = feature_column(name)
        aggs += [(pl.col("event") == name).any().cast(pl.Int8).alias(f"adopted_{c}"),
                 pl.col("day").filter(pl.col("event") == name).min().alias(f"first_use_{c}")]
    out = lf.group_by("customer_id").agg(aggs).with_columns(
        (pl.col("sessions") / pl.col("_active_weeks")).alias("sessions_per_active_week"),
        (pl.col("n_events") / pl.col("sessions")).alias("events_per_session"),
    ).drop("_active_weeks")
    counts = ["n_events", "active_days", "sessions", *[f"{k}_{w}d" for w in windows for k in ("active_days", "sessions")]]
    return out.with_columns(pl.col(counts).cast(pl.Int64)).sort("customer_id").collect()


def join_usage(features: pl.DataFrame, usage: pl.DataFrame) -> pl.DataFrame:
    """Features of every customer of either table (full join on ``customer_id``). Customers without
    events get 0 in the counts, ``sessions_per_active_week``, ``events_per_session`` and
    ``usage_trend``, ``usage_tenure_days`` 0 and ``days_since_last_activity`` = their ``tenure_days``
    (no use since they became customers; null without purchase features), so clustering and rules can
    read them; customers with events only get null purchase columns.

    >>> f = pl.DataFrame({"customer_id": ["a", "b"], "tenure_days": [40, 9]})
    >>> u = pl.DataFrame({"customer_id": ["b", "c"], "n_events": [5, 1], "days_since_last_activity": [2, 3]})
    >>> join_usage(f, u).rows()
    [('a', 40, 0, 40), ('b', 9, 5, 2), ('c', None, 1, 3)]
    """
    no_events = pl.col("_has_usage").is_null()
    joined = features.join(usage.with_columns(_has_usage=pl.lit(True)), on="customer_id", how="full", coalesce=True)
    zero = [c for c in usage.columns if c not in ("customer_id", "days_since_last_activity")
            and (usage.schema[c].is_numeric())]
    fills = [pl.when(no_events).then(0).otherwise(pl.col(c)).cast(usage.schema[c]).alias(c) for c in zero]
    if "days_since_last_activity" in usage.columns and "tenure_days" in features.columns:
        fills.append(pl.when(no_events).then(pl.col("tenure_days")).otherwise(pl.col("days_since_last_activity"))
                     .cast(usage.schema["days_since_last_activity"]).alias("days_since_last_activity"))
    return joined.with_columns(fills).drop("_has_usage").sort("customer_id")


def session_log(events: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The activity log of a usage-only run, in the canonical transaction frame: one row per session
    (``order_id`` = the session as :func:`usage_features` counts it: the session id, else the active day),
    ``timestamp`` = its first event, ``amount`` = its number of events. Recency, frequency, the monthly
    activity and the holdout of a run read it as they read purchases (a session for an order, events for spend).

    >>> import datetime as dt
    >>> ev = pl.DataFrame({"customer_id": ["a", "a", "a", "b"], "event": ["login", "export", "login", "login"],
    ...     "session_id": ["s1", "s1", "s2", None],
    ...     "timestamp": [dt.datetime(2024, 1, d, 9 + d, tzinfo=dt.timezone.utc) for d in (1, 1, 5, 9)]})
    >>> session_log(ev).select("customer_id", "order_id", "amount").rows()
    [('a', 's1', 2.0), ('a', 's2', 1.0), ('b', '2024-01-09', 1.0)]
    """
    lf = events.lazy()
    has_session = "session_id" in lf.collect_schema().names()
    day = pl.col("timestamp").dt.date().cast(pl.String)
    session = pl.coalesce(pl.col("session_id").cast(pl.String), day) if has_session else day
    return (lf.with_columns(order_id=session)
            .group_by("customer_id", "order_id")
            .agg(pl.col("timestamp").min(), pl.len().cast(pl.Float64).alias("amount"))
            .select("customer_id", "timestamp", "amount", "order_id")
            .sort("customer_id", "timestamp", "order_id").collect())


def usage_only_inputs(config: Mapping[str, Any]) -> tuple[pl.DataFrame, Any, pl.DataFrame, dict[str, Any]]:
    """(session log, its DataQualityReport, usage feature table, event report) of a usage-only run
    (``data.path`` null, ``data.events`` set): the events cleaned and counted (``data.events.clean_events``),
    their sessions passed through the transaction quality rules (``as_of`` inferred as for purchases:
    the day after the last session), the usage features at that ``as_of``.
    """
    from segmentation_lib.data.events import clean_events, load_events
    from segmentation_lib.data.quality import QualityPolicy, clean_transactions

    lf = load_events(config)
    if lf is None:
        raise ConfigError("A usage-only run needs data.events.path (data.path is null). Fix: set data.events.path "
                          "to the event log, or data.path to a transaction log.")
    as_of = (config.get("run") or {}).get("as_of")
    events, ev_report = clean_events(lf, parse_as_of(as_of), config.get("quality"))
    where = f"{(config.get('data') or {}).get('events', {}).get('path')} (sessions of the event log)"
    log, report = clean_transactions(session_log(events).lazy(), as_of=as_of,
                                     policy=QualityPolicy.from_config(config.get("quality")), source=where)
    feats = config.get("features") or {}
    usage = usage_features(events.filter(pl.col("customer_id").is_in(log["customer_id"].unique().implode())),
                           report.as_of, windows=feats.get("windows") or (30, 90, 365),
                           key_features=feats.get("key_features") or ())
    ev_report = {**ev_report, "as_of": report.as_of.isoformat(), "customers_with_events": usage.height}
    return log, report, usage, ev_report

