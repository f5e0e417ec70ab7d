"""RFM scoring (edges, ties, degradation, frozen edges), segment maps and the value-engagement matrix."""
from __future__ import annotations

import json
import warnings

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError, ModelError
from segmentation_lib.segment.rfm_maps import MAP_FOR_BINS, SEGMENT_ACTIONS, SHIPPED_MAPS, assign_rfm_segments, load_segment_map, rescale_segment_map, validate_segment_map
from segmentation_lib.segment.rfm import RFMScorer
from segmentation_lib.describe.rfm_text import describe_cut_points, describe_measure, describe_scores, describe_segment_map, describe_value_engagement, score_axis_labels, score_ranges
from segmentation_lib.segment.value_engagement import value_engagement_cuts, value_engagement_matrix, value_engagement_summary


def _table(r, f, m):
    return pl.DataFrame({"days_since_last": r, "n_orders": f, "total_spend": [float(x) for x in m]})


def test_quantile_edges_and_reversed_recency():
    t = _table(list(range(1, 11)), list(range(1, 11)), list(range(1, 11)))
    s = RFMScorer().fit(t)
    assert s.edges_["frequency"]["edges"] == pytest.approx([2.8, 4.6, 6.4, 8.2])
    out = s.transform(t)
    assert out["f_score"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert out["r_score"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # fewer days = more recent = 5
    assert out["rfm_code"][0] == "511" and out["rfm_code"][-1] == "155" and s.degenerate_ == {}


def test_identical_values_get_identical_scores_and_levels_are_spread():
    # 14 values, 8 distinct, seven ties at 1: quantile edges 1, 1, 2.8, 5.4 -> 3 distinct edges, 4 levels
    f = [1] * 7 + [2, 3, 4, 5, 6, 7, 8]
    t = _table(list(range(14)), f, list(range(14)))
    with pytest.warns(UserWarning, match="frequency"):
        s = RFMScorer().fit(t)
    assert s.edges_["frequency"]["edges"] == pytest.approx([1.0, 2.8, 5.4])
    assert s.edges_["frequency"]["scores"] == [1, 2, 4, 5]  # 1 + round(i * 4 / 3)
    scores = dict(zip(f, s.transform(t)["f_score"].to_list()))
    assert scores == {1: 1, 2: 2, 3: 4, 4: 4, 5: 4, 6: 5, 7: 5, 8: 5}
    assert s.transform(t).filter(pl.col("n_orders") == 1)["f_score"].unique().to_list() == [1]
    assert set(s.degenerate_) == {"frequency"}


def test_few_distinct_values_each_value_its_own_level():
    t = _table([5, 5, 5, 9], [1, 1, 2, 3], [10, 10, 10, 10])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        s = RFMScorer().fit(t)
    assert len(w) == 3  # never silent
    out = s.transform(t)
    assert out["f_score"].to_list() == [1, 1, 3, 5]   # 3 levels spread over 1, 3, 5
    assert out["r_score"].to_list() == [5, 5, 5, 1]   # 2 levels -> 5 and 1 (reversed)
    assert out["m_score"].to_list() == [3, 3, 3, 3]   # constant -> middle score
    assert "spread over the scores [1, 3, 5]" in s.degenerate_["frequency"]


@pytest.mark.parametrize("bins", [3, 4, 10])
def test_other_bin_counts(bins):
    n = 100
    t = _table(list(range(n)), list(range(n)), list(range(n)))
    out = RFMScorer(bins=bins).fit_transform(t)
    counts = out.group_by("f_score").len().sort("f_score")
    assert counts["f_score"].to_list() == list(range(1, bins + 1))
    # linear quantiles of 0..99: 3 bins -> edges 33, 66 -> sizes 34, 33, 33; 4 and 10 bins split evenly
    assert counts["len"].to_list() == {3: [34, 33, 33], 4: [25] * 4, 10: [10] * 10}[bins]
    if bins == 10:
        assert out["rfm_code"][-1] == "1-10-10"


def test_nulls_score_one_and_bad_bins_raise():
    t = pl.DataFrame({"days_since_last": [1, None, 3, 4, 5, 6], "n_orders": [0, 0, 1, 2, 3, 4],
                      "total_spend": [-5.0, -10.0, 1.0, 2.0, 3.0, 4.0]})
    out = RFMScorer(bins=3).fit(t).transform(t)
    assert out["r_score"][1] == 1
    with pytest.raises(ConfigError, match="bins"):
        RFMScorer(bins=7).fit(t)
    with pytest.raises(ModelError):
        RFMScorer().transform(t)


def test_frozen_edges_round_trip(tmp_path):
    ref = _table(list(range(1, 11)), list(range(1, 11)), list(range(1, 11)))
    later = _table([1, 50, 3], [20, 1, 5], [0.5, 7.0, 100.0])
    s = RFMScorer().fit(ref)
    path = s.save_edges(tmp_path / "edges.json")
    assert json.loads(path.read_text())["bins"] == 5
    frozen = RFMScorer.from_edges(path)
    assert frozen.transform(later)["rfm_code"].to_list() == s.transform(later)["rfm_code"].to_list()
    assert frozen.transform(later)["rfm_code"].to_list() == ["551", "114", "435"]
    # the same via __init__(edges=path): fit keeps the frozen edges instead of learning new ones
    assert RFMScorer(edges=path).fit(later).edges_ == s.edges_
    with pytest.warns(UserWarning, match="3 distinct level"):  # 3 rows: each value its own level
        assert RFMScorer().fit(later).edges_ != s.edges_
    with pytest.raises(ConfigError, match="bins"):
        RFMScorer(bins=4, edges=path).fit(later)
    d = s.describe_edges()
    assert d.height == 15 and d.columns == ["dimension", "column", "level", "lower", "upper", "score"]
    rec = d.filter(pl.col("dimension") == "recency")
    assert rec["score"].to_list() == [5, 4, 3, 2, 1] and rec["upper"][0] == pytest.approx(2.8)


# --------------------------------------------------------------------------------------- maps
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


def test_value_engagement_matrix_quadrants():
    t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0, 800.0, 500.0], "n_orders": [9, 8, 1, 1, 3]})
    # medians: spend 500, orders 3; high means strictly above
    out = value_engagement_matrix(t)["value_engagement"].to_list()
    assert out == ["Promising", "Champions", "Dormant", "At Risk", "Dormant"]
    absolute = value_engagement_matrix(t, value_cut=100, engagement_cut=2, absolute=True)["value_engagement"]
    assert absolute.to_list() == ["Promising", "Champions", "Dormant", "At Risk", "Champions"]
    with pytest.raises(ConfigError):
        value_engagement_matrix(t, value_cut=5)


def test_value_engagement_cuts_summary_and_text_follow_the_configuration():
    t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0, 800.0, 500.0], "n_orders": [9, 8, 1, 1, 3],
                      "n_purchase_days": [5, 8, 1, 1, 2]})
    assert value_engagement_cuts(t) == {"value": 500.0, "engagement": 3.0}
    assert value_engagement_cuts(t, engagement="n_purchase_days", engagement_cut=0.75) == {"value": 500.0, "engagement": 5.0}
    scored = value_engagement_matrix(t)
    summ = value_engagement_summary(scored)
    assert summ.select("value_engagement", "high_value", "high_engagement", "customers", "revenue").rows() == [
        ("Champions", True, True, 1, 900.0), ("At Risk", True, False, 1, 800.0),
        ("Promising", False, True, 1, 10.0), ("Dormant", False, False, 2, 520.0)]
    assert summ["revenue_share"].to_list() == pytest.approx([900 / 2230, 800 / 2230, 10 / 2230, 520 / 2230])
    text = describe_value_engagement(t, summ)
    assert text.startswith("**High value** means a total net spend above the median (500); **high engagement** means "
                           "a number of orders above the median (3).")
    assert "**1 high-value customer has low engagement**" in text and "hold 36% of revenue" in text
    other = describe_value_engagement(t, value="total_spend", engagement="n_purchase_days", value_cut=0.9, engagement_cut=0.75)
    assert "above the 90th percentile (860)" in other and "number of days with a purchase above the upper quartile (5)" in other
    assert "above 100" in describe_value_engagement(None, value_cut=100, engagement_cut=2, absolute=True)
    aov = describe_value_engagement(t.with_columns(avg_order_value=pl.col("total_spend") / 2), value="avg_order_value")
    assert aov.startswith("**High value** means an average order value above the median (250);")


def test_score_descriptions_follow_the_configuration():
    assert describe_measure("avg_order_value") == ("average order value", "highest average order value")
    assert describe_measure("weeks_since", reverse=True) == ("weeks since", "lowest weeks since")
    text = describe_scores({"bins": 4, "frequency": "n_purchase_days", "monetary": "avg_order_value"})
    assert text.startswith("Every customer is scored 1-4 on **Recency** (4 = bought most recently; days since the last purchase)")
    assert "(4 = bought on the most days; number of days with a purchase)" in text
    assert "(4 = highest average order value; average order value)" in text and "most orders" not in text
    t = _table(list(range(1, 11)), list(range(1, 11)), list(range(1, 11)))
    s = RFMScorer().fit(t)  # edges 2.8, 4.6, 6.4, 8.2 on every dimension
    assert describe_scores(s) == describe_scores({"bins": 5})
    wide = score_ranges(s)
    assert wide.columns == ["score", "recency: days since the last purchase", "frequency: number of orders",
                            "monetary: total net spend"]
    assert wide.row(0) == (5, "up to 2.8", "over 8.2", "over 8.2")
    assert wide.row(2) == (3, "over 4.6, up to 6.4", "over 4.6, up to 6.4", "over 4.6, up to 6.4")
    assert describe_cut_points(s) == (
        "A recency score of 5 means the last purchase was at most 2.8 days before the analysis date; a frequency "
        "score of 5 means a number of orders over 8.2; a monetary score of 5 means a total net spend over 8.2.")
    # spread levels leave scores unused: shown as null, never dropped
    with pytest.warns(UserWarning):
        few = RFMScorer().fit(_table([5, 5, 5, 9], [1, 1, 2, 3], [10, 10, 10, 10]))
    assert score_ranges(few)["frequency: number of orders"].to_list() == ["over 2", None, "over 1, up to 2", None, "up to 1"]
    assert "every monetary score is 3" in describe_cut_points(few)
    assert "**rf4**: 9 named segments over the 16 R-F cells of 4-bin scores" in describe_segment_map("default", bins=4)
    assert "recency and frequency only" in describe_segment_map("rf")
    assert "the monetary score decides" in describe_segment_map("default")
    assert score_axis_labels(s) == {"recency": "Recency score (5 = bought most recently)",
                                    "frequency": "Frequency score (5 = most orders)",
                                    "monetary": "Monetary score (5 = highest net spend)"}
    assert score_axis_labels({"bins": 10, "monetary": "avg_order_value"})["monetary"] == \
        "Monetary score (10 = highest average order value)"


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
