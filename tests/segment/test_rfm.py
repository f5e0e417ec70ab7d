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
