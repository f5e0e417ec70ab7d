"""segmentation_lib.validate.actionability: the checks (number of segments, smallest share, identifiable
by rules, measurable, distinct, noise) on constructed segments."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.validate.actionability import actionability_checks
from segmentation_lib.validate.headline import headline_metrics
from tests.conftest import segments_table as _segments


def _status(checks: pl.DataFrame) -> dict[str, str]:
    return dict(checks.select("check", "status").iter_rows())


def test_actionability_all_pass():
    c = actionability_checks(_segments(), fidelity=0.95)
    assert c.columns == ["check", "status", "value", "reason"]
    assert _status(c) == {k: "pass" for k in ["n_segments", "min_share", "identifiable", "measurable", "distinct"]}


def test_actionability_each_check_fails():
    assert _status(actionability_checks(_segments((100, 100)), fidelity=0.95))["n_segments"] == "warn"
    assert _status(actionability_checks(_segments((30,) * 9), fidelity=0.95))["n_segments"] == "warn"
    c = actionability_checks(_segments((200, 200, 4)), fidelity=0.95, min_effect_size=0.5)
    assert _status(c)["min_share"] == "warn" and "S2" in c.filter(pl.col("check") == "min_share")["reason"][0]
    assert _status(actionability_checks(_segments(), fidelity=0.5))["identifiable"] == "warn"
    assert _status(actionability_checks(_segments(), fidelity=None))["identifiable"] == "warn"
    with_null = _segments().with_columns(pl.when(pl.col("customer_id") == "0").then(None)
                                         .otherwise(pl.col("segment")).alias("segment"))
    assert _status(actionability_checks(with_null, fidelity=0.95))["measurable"] == "warn"
    assert _status(actionability_checks(_segments().drop("total_spend"), fidelity=0.95))["measurable"] == "warn"
    same = _segments(gap=0.0)
    c = actionability_checks(same, fidelity=0.95)
    assert _status(c)["distinct"] == "warn"
    assert c.filter(pl.col("check") == "distinct")["value"][0] < 0.5


def test_actionability_features_joined():
    s = _segments()
    c = actionability_checks(s.select("customer_id", "segment"), features=s.drop("segment"), fidelity=0.9)
    assert _status(c)["distinct"] == "pass" and _status(c)["measurable"] == "pass"
    c = actionability_checks(s.select("customer_id", "segment"), fidelity=0.9)
    assert _status(c)["distinct"] == "warn" and _status(c)["measurable"] == "warn"


def test_actionability_cohens_d_value():
    # two segments: means 0 and 2, both sd 1 -> d = 2 exactly (pooled)
    seg = pl.DataFrame({"customer_id": list("abcdef"), "segment": list("xxxyyy"),
                        "total_spend": [-1.0, 0.0, 1.0, 1.0, 2.0, 3.0]})
    c = actionability_checks(seg, min_k=2, fidelity=0.9)
    assert c.filter(pl.col("check") == "distinct")["value"][0] == pytest.approx(2.0)


def test_actionability_noise_reported_apart_not_a_segment():
    # 10 customers: x 3, y 3, noise 4 (HDBSCAN -1, named "Noise")
    seg = pl.DataFrame({"customer_id": list("abcdefghij"), "segment": list("xxxyyy") + ["Noise"] * 4,
                        "total_spend": [1.0, 2.0, 3.0, 11.0, 12.0, 13.0, 5.0, 50.0, 500.0, 0.5]})
    seg = seg.with_columns((pl.col("segment") == "Noise").alias("is_noise"))
    c = actionability_checks(seg, min_k=2, max_k=2, min_share=0.35, fidelity=0.9, noise_col="is_noise",
                             feature_cols=["total_spend"])
    rows = {r["check"]: r for r in c.iter_rows(named=True)}
    assert rows["n_segments"]["value"] == 2 and rows["n_segments"]["status"] == "pass"
    # shares stay shares of all 10 customers: x and y hold 30% each, below 35%
    assert rows["min_share"]["value"] == pytest.approx(0.3) and rows["min_share"]["status"] == "warn"
    assert "Noise" not in rows["min_share"]["reason"]
    assert rows["measurable"]["value"] == 0 and rows["measurable"]["status"] == "pass"
    assert (rows["noise"]["status"], rows["noise"]["value"]) == ("info", pytest.approx(0.4))
    assert "4 customers (40.0%) fit no segment" in rows["noise"]["reason"]
    assert c["check"].to_list()[-1] == "noise"
    h = headline_metrics(checks=c)
    assert (h["checks_passed"], h["checks_total"]) == (4, 5)  # the info row is not a check
    # without noise_col the noise is counted as a third segment of 40%
    plain = actionability_checks(seg.drop("is_noise"), min_k=2, max_k=2, fidelity=0.9, feature_cols=["total_spend"])
    assert plain.filter(pl.col("check") == "n_segments")["value"][0] == 3 and "noise" not in plain["check"].to_list()


def _reason(checks: pl.DataFrame, name: str) -> str:
    return checks.filter(pl.col("check") == name)["reason"][0]


def test_identifiable_warns_when_a_segment_has_no_rule_or_poor_recall():
    # overall fidelity 0.95 passes min_fidelity 0.8, but S2 is reached by no rule
    c = actionability_checks(_segments(), fidelity=0.95, segment_recall={"S0": 1.0, "S1": 0.98})
    assert _status(c)["identifiable"] == "warn"
    assert "reached by no rule: S2" in _reason(c, "identifiable")
    assert "worst segment recall 0.0% (S2; threshold 50%)" in _reason(c, "identifiable")
    poor = actionability_checks(_segments(), fidelity=0.95, segment_recall={"S0": 1.0, "S1": 1.0, "S2": 0.3})
    assert _status(poor)["identifiable"] == "warn" and "1 segment(s) mostly given" in _reason(poor, "identifiable")
    good = actionability_checks(_segments(), fidelity=0.95, segment_recall={"S0": 1.0, "S1": 0.97, "S2": 0.9})
    assert _status(good)["identifiable"] == "pass"
    assert "worst segment recall 90.0% (S2" in _reason(good, "identifiable")
    stricter = actionability_checks(_segments(), fidelity=0.95, segment_recall={"S0": 1.0, "S1": 0.97, "S2": 0.9},
                                    min_segment_recall=0.95)
    assert _status(stricter)["identifiable"] == "warn"
    assert "not checked" in _reason(actionability_checks(_segments(), fidelity=0.95), "identifiable")
    with pytest.raises(DataError, match="recall_by_name"):
        actionability_checks(_segments(), fidelity=0.95, segment_recall={0: 1.0, 1: 1.0})


def test_identifiable_with_a_surrogate_that_misses_a_segment():
    from segmentation_lib.segment.surrogate import SurrogateRules

    rng = np.random.default_rng(3)
    days = np.r_[rng.integers(0, 100, 1000), rng.integers(101, 700, 1000)].astype(float)
    spend = np.r_[rng.uniform(6000, 9000, 100), rng.uniform(10, 4000, 1900)]
    names = np.array(["VIP"] * 100 + ["Recent"] * 900 + ["Lapsed"] * 1000)
    code = {"VIP": 0, "Recent": 1, "Lapsed": 2}
    feats = pl.DataFrame({"customer_id": [str(i) for i in range(2000)], "days_since_last": days, "total_spend": spend})
    y = np.array([code[n] for n in names])
    seg = feats.with_columns(pl.Series("segment", names))
    label = {v: k for k, v in code.items()}
    miss = SurrogateRules(max_depth=1, extra_depth=0).fit(feats.drop("customer_id"), y, names=label)
    c = actionability_checks(seg, fidelity=miss.fidelity_, segment_recall=miss.recall_by_name(),
                             min_k=3, feature_cols=["days_since_last", "total_spend"])
    assert miss.fidelity_ == pytest.approx(0.95) and _status(c)["identifiable"] == "warn"
    assert "reached by no rule: VIP" in _reason(c, "identifiable")
    full = SurrogateRules(max_depth=1).fit(feats.drop("customer_id"), y, names=label)
    c = actionability_checks(seg, fidelity=full.fidelity_, segment_recall=full.recall_by_name(),
                             min_k=3, feature_cols=["days_since_last", "total_spend"])
    assert _status(c)["identifiable"] == "pass"
