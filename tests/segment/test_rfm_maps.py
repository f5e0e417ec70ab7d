"""segmentation_lib.segment.rfm_maps: the shipped segment maps (complete for every bin count), rescaling,
assignments and actions, the map validator."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.rfm import RFMScorer
from segmentation_lib.segment.rfm_maps import MAP_FOR_BINS, SEGMENT_ACTIONS, SHIPPED_MAPS, assign_rfm_segments, load_segment_map, rescale_segment_map, validate_segment_map


def _table(r, f, m):
    return pl.DataFrame({"days_since_last": r, "n_orders": f, "total_spend": [float(x) for x in m]})


@pytest.mark.parametrize("name", SHIPPED_MAPS)
def test_shipped_maps_cover_every_code_exactly_once(name):
    v = validate_segment_map(name, strict=True)
    assert v.ok and not v.gaps and not v.overlaps and not v.unreachable
    m = load_segment_map(name)
    assert all(a.endswith(".") for a in m.actions.values())  # whole sentences (a comma once cut one short)
    assert v.n_codes == {"default": 125, "rf": 25, "rfm3": 27, "rf4": 16}[name]
    assert len(m.segments) == {"default": 11, "rf": 10, "rfm3": 6, "rf4": 9}[name]
    assert m.table().height == v.n_codes
    assert set(m.actions) == set(m.segments)  # every shipped segment has a suggested action


@pytest.mark.parametrize(("name", "bins"), [(n, b) for n, by in MAP_FOR_BINS.items() for b in by])
def test_every_map_for_every_bin_count_is_complete(name, bins):
    v = validate_segment_map(name, bins=bins, strict=True)
    m = load_segment_map(name, bins=bins)
    assert v.ok and m.bins == bins and v.n_codes == bins ** len(m.dims) == m.table().height
    # scores of that many bins get a segment for every combination
    scored = RFMScorer(bins=bins).fit_transform(_table(list(range(200)), list(range(200)), list(range(200))))
    assert assign_rfm_segments(scored, name, bins=bins)["rfm_segment"].null_count() == 0


def test_default_map_per_bin_count_and_rescaling():
    assert [load_segment_map("default", bins=b).name for b in (3, 4, 5)] == ["rfm3", "rf4", "default"]
    d5, d10 = load_segment_map("default"), load_segment_map("default", bins=10)
    assert d5.codes == load_segment_map("default", bins=5).codes and len(d5.segments) == 11  # 5 bins unchanged
    # 10 bins read each score s as ceil(s / 2) of the 5-bin map: 10-9-10 -> 555 (Champions), 1-2-3 -> 112 (Lost)
    s10 = pl.DataFrame({"r_score": [10, 1, 6, 5], "f_score": [9, 2, 1, 10], "m_score": [10, 3, 2, 8]})
    out = assign_rfm_segments(s10, "default", bins=10)["rfm_segment"].to_list()
    expected5 = assign_rfm_segments(pl.DataFrame({"r_score": [5, 1, 3, 3], "f_score": [5, 1, 1, 5],
                                                  "m_score": [5, 2, 1, 4]}))["rfm_segment"].to_list()
    assert out == expected5 == ["Champions", "Lost", "New Customers", "Loyal"]
    assert sum(len(c) for c in d10.codes.values()) == 1000 and d10.actions == d5.actions
    # 3 bins: the six-group map, hand-checked codes
    s3 = pl.DataFrame({"r_score": [3, 3, 2, 2, 1, 1, 1], "f_score": [3, 1, 2, 1, 3, 1, 1], "m_score": [3, 2, 1, 3, 1, 3, 1]})
    assert assign_rfm_segments(s3, "default", bins=3)["rfm_segment"].to_list() == [
        "Champions", "Recent", "Loyal", "Needs Attention", "At Risk", "At Risk", "Inactive"]
    s4 = pl.DataFrame({"r_score": [4, 4, 2, 1], "f_score": [4, 1, 2, 4], "m_score": [1, 1, 1, 1]})
    assert assign_rfm_segments(s4, "rf", bins=4)["rfm_segment"].to_list() == [
        "Champions", "New Customers", "About To Sleep", "Cannot Lose Them"]
    # maps that cannot serve a bin count say so and what to do
    with pytest.raises(ConfigError, match="no version for 3 bins"):
        load_segment_map("rf", bins=3)
    with pytest.raises(ConfigError, match="not a multiple"):
        rescale_segment_map(load_segment_map("rfm3"), 4)
    assert validate_segment_map(rescale_segment_map(load_segment_map("rfm3"), 9), strict=True).n_codes == 729


def test_default_map_assignments_and_actions():
    s = pl.DataFrame({"r_score": [5, 1, 3, 1, 2, 4], "f_score": [5, 1, 1, 5, 2, 4], "m_score": [5, 1, 1, 5, 2, 3]})
    out = assign_rfm_segments(s)
    assert out["rfm_segment"].to_list() == ["Champions", "Lost", "New Customers", "Cannot Lose Them",
                                            "Hibernating", "Need Attention"]
    assert set(SEGMENT_ACTIONS) == set(load_segment_map("default").segments)
    rf = assign_rfm_segments(s, "rf")
    assert rf["rfm_segment"].to_list() == ["Champions", "Hibernating", "About To Sleep", "Cannot Lose Them",
                                           "Hibernating", "Loyal Customers"]
    with pytest.raises(ConfigError, match="5-bin scores and cannot be used with 3 bins"):
        assign_rfm_segments(s, load_segment_map("default"), bins=3)


def test_validator_reports_overlaps_gaps_and_unreachable(tmp_path):
    spec = {"name": "bad", "dims": "rf", "bins": 3, "segments": [
        {"name": "Top", "r": [2, 3], "f": [2, 3]},
        {"name": "Inner", "codes": ["33"]},          # fully inside Top -> overlap + unreachable
        {"name": "Low", "r": 1},                      # r = 1, any f
    ]}
    with pytest.warns(UserWarning, match="unreachable"):
        v = validate_segment_map(spec)
    assert v.overlaps == {"33": ["Top", "Inner"]}
    assert v.gaps == ["21", "31"] and v.unreachable == ["Inner"]
    with pytest.raises(ConfigError, match="21, 31"):
        validate_segment_map(spec, strict=True)
    path = tmp_path / "m.yaml"
    path.write_text("name: mine\ndims: rf\nbins: 3\nsegments:\n  - {name: All, r: [1, 3]}\n")
    assert validate_segment_map(str(path)).ok
    out = assign_rfm_segments(pl.DataFrame({"r_score": [3, 1], "f_score": [3, 2]}), spec)
    assert out["rfm_segment"].to_list() == ["Top", "Low"]  # first listed wins on overlap
    with pytest.raises(ConfigError):
        load_segment_map("no_such_map")
    # an unquoted comma inside {...} makes YAML read an extra key: reported, not silently dropped
    path.write_text("name: mine\ndims: rf\nbins: 3\nsegments:\n  - {name: All, r: [1, 3], action: Call, then mail.}\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['then mail.'\]"):
        load_segment_map(str(path))


def test_segments_read_the_bin_count_off_the_scores():
    # 3-bin scores must not meet the 5-bin map: 333 is the best 3-bin code, "Potential Loyalists" on 5 bins
    three = pl.DataFrame({"r_score": [3, 1, 2], "f_score": [3, 1, 2], "m_score": [3, 1, 2]})
    with pytest.warns(UserWarning, match="read as 3-bin scores"):
        auto = assign_rfm_segments(three)
    assert auto["rfm_segment"].to_list() == assign_rfm_segments(three, bins=3)["rfm_segment"].to_list()
    assert auto["rfm_segment"][0] != assign_rfm_segments(three, bins=5)["rfm_segment"][0]
    ten = pl.DataFrame({"r_score": [10, 1], "f_score": [10, 1], "m_score": [9, 1]})
    with pytest.warns(UserWarning, match="10-bin"):
        assert assign_rfm_segments(ten)["rfm_segment"].null_count() == 0
    with pytest.raises(DataError, match="up to 12"):
        assign_rfm_segments(ten.with_columns(pl.lit(12).alias("r_score")))


# issue 15: the segment map is applied as a lookup of all codes; it must give what a left join gives
@pytest.mark.parametrize("map_name,bins", [("default", 5), ("default", 3), ("rf", 5), ("default", 10), ("rfm3", 3)])
def test_segment_lookup_gives_the_left_join(map_name, bins):
    import numpy as np

    from segmentation_lib.segment.rfm_maps import load_segment_map

    rng = np.random.default_rng(bins)
    n = 3000
    scores = {c: pl.Series(c, rng.integers(0, bins + 2, n), dtype=pl.Int8) for c in ("r_score", "f_score", "m_score")}
    scored = pl.DataFrame(list(scores.values())).with_row_index("customer_id").with_columns(
        pl.when(pl.col("customer_id") % 97 == 0).then(None).otherwise(pl.col("f_score")).alias("f_score"))
    m = load_segment_map(map_name, bins=bins)
    table = m.table()
    keys = [c for c in table.columns if c != "rfm_segment"]
    expected = scored.join(table, on=keys, how="left", maintain_order="left")["rfm_segment"]
    with pytest.warns(UserWarning, match="no RFM segment"):
        got = assign_rfm_segments(scored, map_name, bins=bins)
    assert got["rfm_segment"].to_list() == expected.to_list()
    assert got.columns == [*scored.columns, "rfm_segment"]
    assert got["rfm_segment"].null_count() > 0 and got["rfm_segment"].n_unique() > 3  # out-of-range and nulls unmapped
    lazy = assign_rfm_segments(scored.lazy(), map_name, bins=bins).collect()
    assert lazy["rfm_segment"].to_list() == expected.to_list()
