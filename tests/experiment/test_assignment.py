"""Segments as of the experiment start: never from data after it."""
from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from segmentation_lib.config import load_config
from segmentation_lib.data.quality import load_transactions
from segmentation_lib.errors import DataError
from segmentation_lib.experiment.assignment import NO_HISTORY, rfm_segments_before, segments_as_of, segments_from_run

START = dt.datetime(2024, 10, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def project(demo_project):
    cfg = load_config(demo_project.cfg)
    return cfg, load_transactions(cfg)[0]


def test_purchases_after_the_start_change_no_segment(project) -> None:
    cfg, tx = project
    before = rfm_segments_before(tx, START, cfg)
    whale = tx.head(1).with_columns(pl.lit(START + dt.timedelta(days=3)).alias("timestamp"), pl.lit(1e6).alias("amount"))
    after = rfm_segments_before(pl.concat([tx, whale]), START, cfg)
    assert before.equals(after)
    assert before.height == tx.filter(pl.col("timestamp") < START)["customer_id"].n_unique()


def test_customers_without_history_are_kept_and_named(project) -> None:
    cfg, tx = project
    late = tx.filter(pl.col("timestamp") >= START).group_by("customer_id").agg(pl.col("timestamp").min())
    early = tx.filter(pl.col("timestamp") < START)["customer_id"].unique()
    newcomer = late.filter(~pl.col("customer_id").is_in(early.implode()))["customer_id"][0]
    ex = pl.DataFrame({"customer_id": [newcomer, early[0]], "variant": ["control", "t"], "exposure_time": [START] * 2})
    out, methods, origin = segments_as_of(ex, cfg, tx, START)
    assert methods[:3] == ["rfm_segment", "value_engagement", "tier"] and methods[-1] == "archetype"
    assert out.filter(pl.col("customer_id") == newcomer)["rfm_segment"].item() == NO_HISTORY
    assert out.filter(pl.col("customer_id") == early[0])["rfm_segment"].item() != NO_HISTORY
    assert "before 2024-10-01" in origin and out.height == 2


def test_a_run_made_after_the_start_is_refused(tmp_path) -> None:
    (tmp_path / "metrics.json").write_text(json.dumps({"as_of": "2024-11-01"}))
    pl.DataFrame({"customer_id": ["a"], "rfm_segment": ["Champions"], "extra": [1]}).write_parquet(tmp_path / "assignments.parquet")
    with pytest.raises(DataError, match="as of 2024-11-01, after the experiment start 2024-10-01"):
        segments_from_run(tmp_path, START)
    assert segments_from_run(tmp_path, START + dt.timedelta(days=31)).columns == ["customer_id", "rfm_segment"]


def test_integer_ids_of_a_run_meet_text_ids_of_the_exposures():
    from segmentation_lib.experiment.assignment import with_segments

    ex = pl.DataFrame({"customer_id": [" 7", "8", "9"], "variant": ["control", "treatment", "control"]})
    seg = pl.DataFrame({"customer_id": [8, 7], "rfm_segment": ["Lost", "Champions"]})  # a run on integer ids
    out = with_segments(ex.with_columns(pl.col("customer_id").str.strip_chars()), seg, ["rfm_segment"])
    assert out.sort("customer_id")["rfm_segment"].to_list() == ["Champions", "Lost", NO_HISTORY]
