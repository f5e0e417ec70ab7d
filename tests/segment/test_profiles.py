"""segmentation_lib.segment.profiles: segment_profiles, relative_importance, crosstab, name_segments."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.profiles import crosstab, name_segments, relative_importance, segment_profiles


@pytest.fixture
def small() -> pl.DataFrame:
    return pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "total_spend": [10.0, 30.0, 100.0, 60.0],
                         "n_orders": [1, 3, 10, 6]})


def test_segment_profiles_hand_computed(small):
    p = segment_profiles(small, [1, 1, 0, 0], names={0: "Big", 1: "Small"})
    assert p.columns[:5] == ["segment", "name", "size", "share", "revenue_share"]
    r0, r1 = p.to_dicts()
    assert (r0["segment"], r0["name"], r0["size"], r0["share"]) == (0, "Big", 2, 0.5)
    assert r0["revenue_share"] == pytest.approx(0.8) and r1["revenue_share"] == pytest.approx(0.2)
    assert r0["mean_total_spend"] == 80.0 and r0["median_n_orders"] == 8.0
    # overall means: spend 50, orders 5
    assert r0["rel_total_spend"] == pytest.approx(0.6) and r1["rel_n_orders"] == pytest.approx(-0.6)


def test_labels_from_column_and_length_check(small):
    p = segment_profiles(small.with_columns(seg=pl.Series([1, 1, 0, 0])), "seg")
    assert p["size"].to_list() == [2, 2] and "mean_seg" not in p.columns
    with pytest.raises(DataError, match="3 labels were given for 4 customers"):
        segment_profiles(small, [0, 1, 0])


def test_relative_importance_long_and_wide(small):
    p = segment_profiles(small, [1, 1, 0, 0])
    long = relative_importance(p)
    assert long.columns == ["segment", "feature", "relative_importance"]
    assert long.height == 4
    assert long.filter((pl.col("segment") == 1) & (pl.col("feature") == "total_spend"))[
        "relative_importance"].item() == pytest.approx(-0.6)
    wide = relative_importance(p, form="wide")
    assert wide.columns == ["segment", "total_spend", "n_orders"]


def test_crosstab_counts_and_row_shares():
    ct = crosstab([0, 0, 1, 1, 1], ["Champions", "At risk", "At risk", "At risk", "Lost"], "cluster", "rfm")
    assert ct.columns == ["cluster", "At risk", "Champions", "Lost"]
    assert ct.rows() == [(0, 1, 1, 0), (1, 2, 0, 1)]
    shares = crosstab([0, 0, 1], ["x", "y", "y"], normalize="row")
    assert shares.rows() == [(0, 0.5, 0.5), (1, 0.0, 1.0)]


def _profile_rows(rows):
    return pl.DataFrame(rows)


def test_name_segments_plain_words_unique_and_overridable():
    p = _profile_rows([
        {"segment": 0, "rel_total_spend": 2.0, "rel_n_orders": 1.0, "mean_n_orders": 12.0,
         "rel_days_since_last": -0.8, "rel_tenure_days": 0.6, "rel_avg_order_value": 0.7},
        {"segment": 1, "rel_total_spend": -0.1, "rel_n_orders": 0.0, "mean_n_orders": 4.0,
         "rel_days_since_last": 1.0, "rel_tenure_days": 0.0, "rel_avg_order_value": 0.0},
        {"segment": 2, "rel_total_spend": -0.1, "rel_n_orders": 0.0, "mean_n_orders": 4.0,
         "rel_days_since_last": 1.0, "rel_tenure_days": -0.7, "rel_avg_order_value": 0.0},
        {"segment": 3, "rel_total_spend": -0.9, "rel_n_orders": -0.8, "mean_n_orders": 1.1,
         "rel_days_since_last": 0.1, "rel_tenure_days": 0.0, "rel_avg_order_value": 0.0},
    ])
    names = name_segments(p)
    assert names[0] == "High value, frequent, recent"
    # 1 and 2 collide on the first three words and are told apart by tenure
    assert names[1] == "Mid value, regular, lapsed, established"
    assert names[2] == "Mid value, regular, lapsed, new"
    assert names[3] == "Low value, one-time, cooling"
    assert name_segments(p, overrides={"0": "Whales"})[0] == "Whales"
    with pytest.raises(ConfigError, match="segment 9"):
        name_segments(p, overrides={9: "Ghost"})
    with pytest.raises(ConfigError, match="share a name"):
        name_segments(p, overrides={0: "Same", 1: "Same"})


def test_name_segments_identical_profiles_get_numbers():
    row = {"rel_total_spend": 0.0, "rel_n_orders": 0.0, "rel_days_since_last": 0.0}
    names = name_segments(_profile_rows([{"segment": 0, **row}, {"segment": 1, **row}]))
    assert names == {0: "Mid value, regular, cooling", 1: "Mid value, regular, cooling (2)"}
