"""segmentation_lib.segment.rfm: RFM scoring (edges, ties, degradation, frozen edges)."""
from __future__ import annotations

import json
import warnings

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, ModelError
from segmentation_lib.segment.rfm import RFMScorer, read_edges


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
    assert RFMScorer(edges=read_edges(path)).fit(later).edges_ == s.edges_
    with pytest.warns(UserWarning, match="3 distinct level"):  # 3 rows: each value its own level
        assert RFMScorer().fit(later).edges_ != s.edges_
    with pytest.raises(ConfigError, match="bins"):
        RFMScorer(bins=4, edges=read_edges(path)).fit(later)
    d = s.describe_edges()
    assert d.height == 15 and d.columns == ["dimension", "column", "level", "lower", "upper", "score"]
    rec = d.filter(pl.col("dimension") == "recency")
    assert rec["score"].to_list() == [5, 4, 3, 2, 1] and rec["upper"][0] == pytest.approx(2.8)


# ---- issue 13: the middle score of a constant column, and the RFM cut options -----------------
@pytest.mark.parametrize("bins, middle", [(10, 5), (4, 2), (5, 3), (3, 2)])
def test_constant_column_scores_the_middle_on_every_measure(bins, middle):
    t = _table([7] * 4, [2] * 4, [9.0] * 4)
    with pytest.warns(UserWarning):
        s = RFMScorer(bins=bins).fit(t)
    out = s.transform(t)
    assert out["r_score"].to_list() == [middle] * 4  # was 6 on 10 bins, 3 on 4 (recency reversed)
    assert out["f_score"].to_list() == out["m_score"].to_list() == [middle] * 4
    assert set(s.describe_edges()["score"].to_list()) == {middle}
    frozen = RFMScorer.from_edges(s.edges_dict())
    assert frozen.transform(t)["r_score"].to_list() == [middle] * 4


def test_bins_per_measure():
    t = _table(list(range(1, 11)), list(range(1, 11)), list(range(1, 11)))
    s = RFMScorer(bins={"recency": 5, "frequency": 3, "monetary": 5}).fit(t)
    # 1..10 at 1/3 and 2/3 (linear): positions 3 and 6 -> edges 4 and 7
    assert s.edges_["frequency"]["edges"] == pytest.approx([4.0, 7.0])
    out = s.transform(t)
    assert out["f_score"].to_list() == [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert out["r_score"].to_list() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out["m_score"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert out["rfm_code"][0] == "511"
    again = RFMScorer.from_edges(s.edges_dict())  # per-measure counts survive the edges file
    assert again.transform(t)["rfm_code"].to_list() == out["rfm_code"].to_list()
    with pytest.raises(ConfigError, match="bins"):
        RFMScorer(bins={"recency": 7}).fit(t)
    with pytest.raises(ConfigError, match="unknown measure"):
        RFMScorer(bins={"spend": 5}).fit(t)


def test_percentile_cuts():
    t = _table(list(range(1, 11)), list(range(1, 11)), list(range(1, 11)))
    s = RFMScorer(cuts=[0.2, 0.5, 0.8]).fit(t)
    # positions 9 * q = 1.8, 4.5, 7.2 on 1..10 -> edges 2.8, 5.5, 8.2; four scores
    assert s.edges_["monetary"]["edges"] == pytest.approx([2.8, 5.5, 8.2])
    out = s.transform(t)
    assert out["m_score"].to_list() == [1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    assert out["r_score"].to_list() == [4, 4, 3, 3, 3, 2, 2, 2, 1, 1]
    only_m = RFMScorer(cuts={"monetary": [0.5]}).fit(t).transform(t)  # 2 scores on monetary, 5 elsewhere
    assert only_m["m_score"].to_list() == [1] * 5 + [2] * 5
    assert only_m["f_score"].to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    for bad in ([0.5, 0.2], [0.0, 0.5], [1.5]):
        with pytest.raises(ConfigError, match="cuts"):
            RFMScorer(cuts=bad).fit(t)
    with pytest.raises(ConfigError, match="make 4 scores"):
        RFMScorer(bins={"recency": 5}, cuts={"recency": [0.2, 0.5, 0.8]}).fit(t)


def test_value_thresholds():
    t = _table([10, 30, 31, 90, 200], [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    s = RFMScorer(thresholds={"recency": [30, 90, 180]}).fit(t)
    assert s.edges_["recency"]["edges"] == [30.0, 90.0, 180.0]
    out = s.transform(t)
    # (.., 30] (30, 90] (90, 180] (180, ..) -> levels 0 0 1 1 3, reversed on 4 scores
    assert out["r_score"].to_list() == [4, 4, 3, 3, 1]
    assert out["f_score"].to_list() == [1, 2, 3, 4, 5]
    assert "recency" not in s.degenerate_
    with pytest.raises(ConfigError, match="only one"):
        RFMScorer(cuts={"recency": [0.5]}, thresholds={"recency": [30]}).fit(t)
    with pytest.raises(ConfigError, match="thresholds"):
        RFMScorer(thresholds=[90, 30]).fit(t)


def test_filters_exclude_count_and_give_a_null_score():
    t = _table([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 900], [-5, 10, 20, 30, 40, 50])
    s = RFMScorer(bins=3, filters={"total_spend": {"min": 0}, "frequency": {"max": 500}}).fit(t)
    assert s.excluded_ == 2 and s.n_fit_ == 4
    assert s.excluded_reasons_ == {"total_spend < 0 (min filter)": 1, "n_orders > 500 (max filter)": 1}
    # edges learned on 10, 20, 30, 40 only: positions 1 and 2 -> 20, 30
    assert s.edges_["monetary"]["edges"] == pytest.approx([20.0, 30.0])
    out = s.transform(t)
    assert out.height == 6  # nobody dropped
    assert out["m_score"].to_list() == [None, 1, 1, 2, 3, None]
    assert out["rfm_code"][0] is None and out["rfm_code"][5] is None
    assert out["rfm_excluded"].to_list() == ["total_spend < 0 (min filter)", None, None, None, None,
                                             "n_orders > 500 (max filter)"]
    with pytest.raises(ConfigError, match="min"):
        RFMScorer(filters={"total_spend": {"min": 5, "max": 1}}).fit(t)
    assert "rfm_excluded" not in RFMScorer().fit(t).transform(t).columns  # no filters: the old output


# issue 15: edges from one sort per measure give the edges of the unique() + quantile() definition
@pytest.mark.parametrize("seed,bins", [(1, 5), (2, 3), (3, 10), (4, 4)])
def test_edges_from_sorted_values_match_the_definition(seed, bins):
    import numpy as np

    from segmentation_lib.segment.rfm import _cut_edges, _learn_edges

    rng = np.random.default_rng(seed)
    v = pl.Series(np.round(rng.lognormal(3, 1, 5000), 1)).extend(pl.Series([None, float("nan")], dtype=pl.Float64))
    few = pl.Series(rng.integers(1, bins, 400).astype(float))  # fewer distinct values than bins

    def reference(values, b):
        x = values.drop_nulls().cast(pl.Float64)
        x = x.filter(x.is_not_nan())
        distinct = x.unique().sort()
        if distinct.len() <= b:
            return distinct.to_list()[:-1]
        qs = [x.quantile(k / b, interpolation="linear") for k in range(1, b)]
        return sorted({float(q) for q in qs if q < distinct[-1]})

    assert _learn_edges(v, bins) == reference(v, bins) and len(_learn_edges(v, bins)) == bins - 1
    assert _learn_edges(few, bins) == reference(few, bins) == sorted(set(few.to_list()))[:-1]
    x = v.drop_nulls().filter(v.drop_nulls().is_not_nan())
    assert _cut_edges(v, [0.2, 0.5, 0.9]) == sorted({x.quantile(q, interpolation="linear") for q in (0.2, 0.5, 0.9)})
