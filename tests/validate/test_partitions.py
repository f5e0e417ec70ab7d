"""Validation on customer partitions of a log: a part without calibration (or holdout) rows adds only
its counts. Known answer: the tables and summary figures of the unsplit log."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from segmentation_lib.errors import DataError
from segmentation_lib.validate.calibration import holdout_calibration
from segmentation_lib.validate.predictive import predictive_validity

HOLDOUT = 90


def _demo(demo_project) -> tuple[pl.DataFrame, dt.datetime]:
    tx = pl.read_parquet(demo_project.paths["transactions"]).drop_nulls("customer_id")
    as_of = tx["timestamp"].max().replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    return tx, as_of - dt.timedelta(days=HOLDOUT)


def _parts(tx: pl.DataFrame, cutoff: dt.datetime) -> list[pl.LazyFrame]:
    """Three customer partitions: the customers first seen at or after the cutoff (no calibration
    row), those seen before it only (no holdout row), and the rest."""
    first = pl.col("timestamp").min().over("customer_id")
    last = pl.col("timestamp").max().over("customer_id")
    new = tx.filter(first >= cutoff)
    old_only = tx.filter(last < cutoff)
    rest = tx.filter(first < cutoff, last >= cutoff)
    assert new.height and old_only.height and rest.height
    assert new.height + old_only.height + rest.height == tx.height
    return [new.lazy(), rest.lazy(), old_only.lazy()]


def _segments(features: pl.DataFrame) -> pl.DataFrame:
    return features.select("customer_id", pl.when(pl.col("n_orders") > 2).then(pl.lit("many")).otherwise(pl.lit("few"))
                           .alias("segment"))


def test_predictive_validity_on_parts_is_the_unsplit_result(demo_project):
    tx, cutoff = _demo(demo_project)
    given = pl.DataFrame({"customer_id": tx["customer_id"].unique().sort()}).with_columns(
        segment=pl.col("customer_id").str.slice(-1))
    segmenters = {"given": given, "refit": _segments}  # a table, and a callable on the calibration features
    whole = predictive_validity(tx, cutoff, segmenters, holdout_days=HOLDOUT, min_segment_size=1)
    parts = predictive_validity(_parts(tx, cutoff), cutoff, segmenters, holdout_days=HOLDOUT, min_segment_size=1)
    assert_frame_equal(parts.segments, whole.segments, check_exact=False, rel_tol=1e-9)
    assert_frame_equal(parts.separation, whole.separation, check_exact=False, rel_tol=1e-9)
    assert parts.summary == whole.summary
    n_new = tx.group_by("customer_id").agg(pl.col("timestamp").min()).filter(pl.col("timestamp") >= cutoff).height
    assert whole.summary["new_in_holdout_excluded"] == n_new > 0


def test_holdout_calibration_on_parts_is_the_unsplit_result(demo_project):
    tx, cutoff = _demo(demo_project)
    seg = pl.DataFrame({"customer_id": tx["customer_id"].unique().sort()}).with_columns(
        segment=pl.col("customer_id").str.slice(-1))
    whole = holdout_calibration(tx, cutoff, HOLDOUT, segments=seg)
    parts = holdout_calibration(_parts(tx, cutoff), cutoff, HOLDOUT, segments=seg)
    for a, b in ((parts.buckets, whole.buckets), (parts.per_customer, whole.per_customer),
                 (parts.segments, whole.segments)):
        assert_frame_equal(a, b, check_exact=False, rel_tol=1e-6)
    assert parts.summary.keys() == whole.summary.keys()
    for k, v in whole.summary.items():
        assert parts.summary[k] == (pytest.approx(v, rel=1e-6) if isinstance(v, float) else v), k
    n_new = tx.group_by("customer_id").agg(pl.col("timestamp").min()).filter(pl.col("timestamp") >= cutoff).height
    assert parts.summary["new_in_holdout_excluded"] == n_new > 0
    assert parts.summary["customers"] == tx.filter(pl.col("timestamp") < cutoff)["customer_id"].n_unique()


def test_no_calibration_row_in_any_part_still_raises(demo_project):
    tx, cutoff = _demo(demo_project)
    new = _parts(tx, cutoff)[0]
    both = [new.filter(pl.col("customer_id") < "C5"), new.filter(pl.col("customer_id") >= "C5")]
    with pytest.raises(DataError, match="no transactions before the cutoff"):
        holdout_calibration(both, cutoff, HOLDOUT)
    with pytest.raises(DataError, match="no transactions before the cutoff"):
        predictive_validity(both, cutoff, {"m": pl.DataFrame({"customer_id": ["x"], "segment": ["a"]})},
                            holdout_days=HOLDOUT)
    # and a log with calibration rows but no holdout row in any part: the predictive validity error
    old = [p.filter(pl.col("timestamp") < cutoff) for p in _parts(tx, cutoff)]
    with pytest.raises(DataError, match="holdout period has no transactions"):
        predictive_validity(old, cutoff, {"m": pl.DataFrame({"customer_id": ["x"], "segment": ["a"]})},
                            holdout_days=HOLDOUT)
