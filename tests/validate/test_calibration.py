"""segmentation_lib.validate.calibration: predicted vs actual holdout purchases, with known answers."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.validate.calibration import calibration_error_of, frequency_bucket, holdout_calibration


def test_buckets_and_the_error_definition() -> None:
    f = pl.DataFrame({"f": [0.0, 1.0, 5.0, 6.0, 40.0]}).select(frequency_bucket(pl.col("f")))["bucket"].to_list()
    assert f == ["0", "1", "5", "6+", "6+"]
    b = pl.DataFrame({"predicted": [0.5, 1.0, 9.0], "actual": [0.25, 1.5, 0.0], "customers": [3, 1, 0]})
    assert calibration_error_of(b) == pytest.approx((0.25 + 0.5) / 2)  # empty buckets do not count


def test_holdout_calibration_known_counts(demo_project) -> None:
    tx = pl.read_parquet(demo_project.paths["transactions"]).drop_nulls("customer_id")
    as_of = tx["timestamp"].max().replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    cutoff = as_of - dt.timedelta(days=90)
    seg = pl.DataFrame({"customer_id": tx["customer_id"].unique().sort()}).with_columns(segment=pl.lit("all"))
    r = holdout_calibration(tx, cutoff, 90, segments=seg)
    hold = tx.filter((pl.col("timestamp") >= cutoff) & (pl.col("timestamp") < as_of))
    cal_ids = tx.filter(pl.col("timestamp") < cutoff)["customer_id"].unique()
    hold = hold.filter(pl.col("customer_id").is_in(cal_ids.implode()))
    # actual purchases: distinct holdout days with a transaction, per calibration customer (known answer)
    expected = hold.select(pl.struct("customer_id", pl.col("timestamp").dt.date()).n_unique()).item()
    assert r.summary["actual_purchases"] == expected
    assert r.summary["customers"] == cal_ids.len() == int(r.buckets["customers"].sum())
    assert r.buckets["bucket"].to_list() == ["0", "1", "2", "3", "4", "5", "6+"]
    # the per-bucket means weight back to the totals
    pred_total = float((r.buckets["predicted"].fill_null(0) * r.buckets["customers"]).sum())
    assert pred_total == pytest.approx(r.summary["predicted_purchases"])
    assert r.segments["actual_spend"].item() == pytest.approx(float(hold["amount"].sum()))
    rel = (r.summary["predicted_purchases"] - expected) / expected
    assert r.summary["total_purchases_relative_error"] == pytest.approx(rel)
    assert r.summary["calibration_error"] == pytest.approx(calibration_error_of(r.buckets))
