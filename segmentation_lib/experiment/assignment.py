"""Segments as of the experiment start, never from data the treatment could have changed.

Three sources:

- the transaction log (default): the feature table of the log *before the start* (``as_of = start``),
  scored with the configuration's RFM settings (named RFM segment, value/engagement cell) and rules;
- a run folder (``experiment.segments_run``): its ``assignments.parquet``, accepted only when the run's ``as_of`` is not after
  the start (its ``metrics.json`` says);
- a ``model.joblib`` (``experiment.segments_model``): the saved behavioural segmentation applied to the features before the start.

Customers with no purchase before the start get the segment ``NO_HISTORY`` in every method (kept
and counted, never dropped). When the demo truth is configured (``data.truth``) the planted
``archetype`` is one more (exploratory) method.

>>> import datetime as dt
>>> tx = pl.DataFrame({"customer_id": ["a"], "amount": [5.0],
...                    "timestamp": [dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)]})
>>> ex = pl.DataFrame({"customer_id": ["a", "b"]})
>>> with_segments(ex, pl.DataFrame({"customer_id": ["a"], "tier": ["Bronze"]}), ["tier"])["tier"].to_list()
['Bronze', 'no purchase before the start']
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.features.common import to_utc
from segmentation_lib.features.customer import customer_features

#: the segment of customers without any purchase before the experiment start
NO_HISTORY = "no purchase before the start"

#: segment columns a run folder's assignments.parquet may hold, in reading order
RUN_COLUMNS = ("rfm_segment", "value_engagement", "tier", "segment_name", "value_churn")


def rfm_segments_before(transactions: pl.DataFrame | pl.LazyFrame, start: dt.datetime, cfg: Mapping[str, Any]) -> pl.DataFrame:
    """``customer_id, rfm_segment, value_engagement, <rules segment_col>`` from the purchases before ``start``."""
    from segmentation_lib.segment.assign import rule_based_segments

    lf = transactions.lazy() if isinstance(transactions, pl.DataFrame) else transactions
    before = lf.filter(pl.col("timestamp") < start)
    feats = customer_features(before, start, windows=(cfg.get("features") or {}).get("windows") or (30, 90, 365))
    if feats.height == 0:
        raise DataError(f"No purchase before the experiment start {start:%Y-%m-%d}: segments as of the start cannot be "
                        "computed. Fix: give the log with the history before the start, or set experiment.segments_run "
                        "to a run folder made before the start.")
    scored = rule_based_segments(feats, cfg)
    seg_col = (cfg.get("rules") or {}).get("segment_col") or "segment"
    return scored.select("customer_id", "rfm_segment", "value_engagement", seg_col)


def run_as_of(run_dir: str | Path) -> dt.datetime:
    """The ``as_of`` of a run folder (from its ``metrics.json``); DataError when it cannot be read."""
    path = Path(run_dir) / "metrics.json"
    try:
        return to_utc(json.loads(path.read_text(encoding="utf-8"))["as_of"], f"{path}: as_of")
    except (OSError, KeyError, ValueError):
        raise DataError(f"{path}: the run's as_of date cannot be read, so it is unknown whether its segments predate the "
                        "experiment. Fix: point experiment.segments_run at a complete run folder (with metrics.json).") from None


def segments_from_run(run_dir: str | Path, start: dt.datetime) -> pl.DataFrame:
    """The segment columns of a frozen run folder, checked to predate ``start``."""
    run = Path(run_dir)
    as_of = run_as_of(run)
    if as_of > start:
        raise DataError(f"{run}: the run's segments are as of {as_of:%Y-%m-%d}, after the experiment start {start:%Y-%m-%d}; "
                        "they may reflect what the treatment changed. Fix: use a run made with run.as_of on or before "
                        "the start, or leave experiment.segments_run null to compute the segments from the log.")
    a = pl.read_parquet(run / "assignments.parquet")
    return a.select("customer_id", *[c for c in RUN_COLUMNS if c in a.columns])


def segments_from_model(model_path: str | Path, transactions: pl.DataFrame | pl.LazyFrame, start: dt.datetime,
                        windows: Sequence[int] = (30, 90, 365)) -> pl.DataFrame:
    """``customer_id, segment_name``: a saved behavioural segmentation applied to the features before ``start``."""
    from segmentation_lib.score.persistence import score_customers

    lf = transactions.lazy() if isinstance(transactions, pl.DataFrame) else transactions
    feats = customer_features(lf.filter(pl.col("timestamp") < start), start, windows=windows)
    return score_customers(model_path, feats).select("customer_id", "segment_name")


def with_segments(exposures: pl.DataFrame, segments: pl.DataFrame, methods: Sequence[str]) -> pl.DataFrame:
    """Left-join the segment columns onto the exposures; customers without one get ``NO_HISTORY``."""
    from segmentation_lib.data.read import ids_like

    seg = ids_like(segments.select("customer_id", *[pl.col(m).cast(pl.String) for m in methods]), "customer_id",
                   exposures.schema["customer_id"])  # a run's integer ids meet the exposures' ids
    return exposures.join(seg, on="customer_id", how="left").with_columns(
        [pl.col(m).fill_null(NO_HISTORY) for m in methods])


def segments_as_of(exposures: pl.DataFrame, cfg: Mapping[str, Any], transactions: pl.DataFrame | pl.LazyFrame | None,
                   start: dt.datetime) -> tuple[pl.DataFrame, list[str], str]:
    """The exposures with one column per segmentation method, the method names and where they came from."""
    ex = cfg.get("experiment") or {}
    windows = (cfg.get("features") or {}).get("windows") or (30, 90, 365)
    if ex.get("segments_run"):
        segs, origin = segments_from_run(ex["segments_run"], start), f"the run folder {Path(ex['segments_run']).name}"
    elif ex.get("segments_model"):
        model = Path(ex["segments_model"])
        if not model.is_file():
            raise DataError(f"experiment.segments_model: {model} does not exist. Fix: give the model.joblib of a run made "
                            "before the start (relative paths start at the configuration's folder).")
        if transactions is None:
            raise DataError(f"experiment.segments_model is {model}; it needs the transaction log. Fix: set data.path.")
        segs, origin = segments_from_model(model, transactions, start, windows), f"the model {model.name}"
    else:
        if transactions is None:
            raise DataError("Segments as of the start are computed from the transaction log, but none was read. "
                            "Fix: set data.path, or experiment.segments_run to a run folder made before the start.")
        segs, origin = rfm_segments_before(transactions, start, cfg), f"the purchases before {start:%Y-%m-%d}"
    methods = [c for c in segs.columns if c != "customer_id"]
    truth = (cfg.get("data") or {}).get("truth")
    if truth and Path(truth).is_file():
        arche = pl.read_parquet(truth).select("customer_id", "archetype")
        segs = segs.join(arche, on="customer_id", how="full", coalesce=True)
        methods.append("archetype")
    return with_segments(exposures, segs, methods), methods, origin
