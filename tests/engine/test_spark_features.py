"""The feature table and the BTYD summary on Spark equal the single-machine tables."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.engine import spark_features as sf
from segmentation_lib.engine.spark_read import to_polars
from segmentation_lib.features.btyd import btyd_summary
from segmentation_lib.features.common import sort_by_text
from segmentation_lib.features.customer import customer_features


def assert_same_table(expected: pl.DataFrame, got: pl.DataFrame, rtol: float = 1e-9) -> None:
    """Same columns, types and rows; floats within ``rtol`` relative, nulls in the same places."""
    assert got.columns == expected.columns
    assert got.schema == expected.schema
    assert got["customer_id"].equals(expected["customer_id"])
    for c in expected.columns:
        x, y = expected[c], got[c]
        assert x.is_null().equals(y.is_null()), c
        if x.dtype.is_float():
            np.testing.assert_allclose(y.to_numpy(), x.to_numpy(), rtol=rtol, atol=0, equal_nan=True, err_msg=c)
        else:
            assert y.equals(x), c


def test_feature_table_is_identical_on_the_demo_log(polars_side, spark_side):
    _, _, expected = polars_side
    _, _, feats = spark_side
    got = sort_by_text(to_polars(feats), "customer_id")
    assert_same_table(expected, got)
    assert got.equals(expected)  # money sums are exact, so even the bytes agree here
    assert (got["n_returns"] > 0).any() and got["nonpositive_net"].any()


def test_feature_table_with_as_of_inside_a_day_and_other_windows(polars_side, spark_side):
    tx, _, _ = polars_side
    clean, _, _ = spark_side
    as_of = "2024-06-15T13:30:00"  # not a midnight: the grouped definition (windows end mid-day)
    expected = customer_features(tx, as_of, windows=(7, 60))
    got = sort_by_text(to_polars(sf.customer_features(clean, as_of, windows=(7, 60))), "customer_id")
    assert "spend_90d" in got.columns  # the trend window is added when not among the windows
    assert_same_table(expected, got)


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_btyd_summary_equals_the_single_machine_summary(polars_side, spark_side, freq):
    tx, _, _ = polars_side
    clean, _, _ = spark_side
    expected = btyd_summary(tx, "2024-12-15", freq)
    got = sort_by_text(to_polars(sf.btyd_summary(clean, "2024-12-15", freq)), "customer_id")
    assert_same_table(expected, got)
    assert (got["frequency"] > 0).any()


def test_btyd_options_and_default_end(polars_side, spark_side):
    from segmentation_lib.features.btyd import DefaultObservationEndWarning

    tx, _, _ = polars_side
    clean, _, _ = spark_side
    expected = btyd_summary(tx, "2024-12-15", "h", freq_multiplier=24, include_first_transaction=True)
    got = sf.btyd_summary(clean, "2024-12-15", "h", freq_multiplier=24, include_first_transaction=True)
    assert_same_table(expected, sort_by_text(to_polars(got), "customer_id"))
    with pytest.warns(DefaultObservationEndWarning):
        default = sf.btyd_summary(clean)
    assert default.observation_end == tx["timestamp"].max()
