"""RFM codes and segments, value/engagement cells, rule tiers and cluster assignments on Spark
equal the single-machine ones (same edges, same model)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.engine import spark_segments as ss
from segmentation_lib.engine.spark_read import to_polars
from segmentation_lib.features.common import sort_by_text
from segmentation_lib.report.stages import filled_features, make_segmenter, purchasing, rfm_assign
from segmentation_lib.segment.rfm import RFMScorer, scorer_from_config

COLS = ["customer_id", "r_score", "f_score", "m_score", "rfm_code", "rfm_segment", "value_engagement", "tier"]


def _spark_rfm(cfg, feats, scorer):
    rc = cfg["rfm"]
    scored = ss.rfm_segments(ss.rfm_scores(feats, scorer), rc["segment_map"], bins=int(rc["bins"]))
    scored = ss.value_engagement(scored, **rc["value_engagement"])
    return sort_by_text(to_polars(ss.rule_segments(scored, cfg["rules"]).select(*COLS)), "customer_id")


def test_rfm_edges_codes_segments_cells_and_tiers_are_identical(demo_cfg, polars_side, spark_side):
    _, _, features = polars_side
    _, _, feats = spark_side
    expected_scorer = scorer_from_config(demo_cfg["rfm"]).fit(features)
    scorer = ss.fit_rfm(feats, scorer_from_config(demo_cfg["rfm"]))
    assert scorer.edges_ == expected_scorer.edges_ and scorer.n_fit_ == features.height
    expected = rfm_assign(features, demo_cfg, expected_scorer).select(COLS)
    got = _spark_rfm(demo_cfg, feats, scorer)
    assert got.equals(expected)
    assert got["rfm_segment"].n_unique() >= 8 and got["tier"].n_unique() >= 3 and got["value_engagement"].n_unique() == 4


def test_approximate_edges_state_their_error_and_frozen_edges_are_exact(demo_cfg, polars_side, spark_side):
    _, _, features = polars_side
    _, _, feats = spark_side
    exact = scorer_from_config(demo_cfg["rfm"]).fit(features)
    approx = ss.fit_rfm(feats, scorer_from_config(demo_cfg["rfm"]), accuracy=100)
    n = features.height
    for dim, d in approx.edges_.items():  # each approximate edge sits within n / accuracy ranks of a k/5 quantile
        col = features[d["column"]].cast(pl.Float64).drop_nulls().sort()
        targets = np.arange(1, 5) / 5 * (col.len() - 1)
        for e in d["edges"]:
            lo, hi = int(col.search_sorted(e, "left")), int(col.search_sorted(e, "right")) - 1
            gap = np.maximum(0, np.maximum(lo - targets, targets - hi)).min()
            assert gap <= n / 100 + 1, (dim, e, lo, hi)
        assert len(d["edges"]) == len(exact.edges_[dim]["edges"])
    frozen = ss.fit_rfm(feats, RFMScorer.from_edges(exact.edges_dict()))
    got = _spark_rfm(demo_cfg, feats, frozen)
    assert got.equals(rfm_assign(features, demo_cfg, exact).select(COLS))


def test_ten_bins_and_thresholds(demo_cfg, polars_side, spark_side):
    _, _, features = polars_side
    _, _, feats = spark_side
    for params in ({"bins": 10}, {"bins": 5, "thresholds": {"recency": [30, 90, 180]}}):
        expected = RFMScorer(**params).fit(features)
        got = ss.fit_rfm(feats, RFMScorer(**params))
        assert got.edges_ == expected.edges_
        codes = sort_by_text(to_polars(ss.rfm_scores(feats, got).select("customer_id", "rfm_code")), "customer_id")
        assert codes["rfm_code"].equals(expected.transform(features)["rfm_code"])


def test_unknown_rule_column_is_a_config_error(spark_side):
    from segmentation_lib.errors import ConfigError

    _, _, feats = spark_side
    with pytest.raises(ConfigError, match="unknown column"):
        ss.rule_segments(feats, {"default": "B", "rules": [{"name": "A", "when": "total_spnd > 1"}]})


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm"])
def test_cluster_assignments_with_the_same_model_are_identical(demo_cfg, polars_side, spark_side, algorithm):
    _, _, features = polars_side
    _, _, feats = spark_side
    cfg = dict(demo_cfg, clustering=dict(demo_cfg["clustering"], algorithm=algorithm, k=4))
    buyers = purchasing(features)
    seg = make_segmenter(cfg, 7).fit(buyers)
    labels, _ = seg.predict_with_noise(buyers)
    spark_buyers = feats.filter("first_purchase is not null")
    methods = ["expressions"] if algorithm == "kmeans" else ["arrow"]  # (k-means through Arrow: tested by the gmm case)
    for method in methods:
        got = sort_by_text(to_polars(ss.cluster_scores(spark_buyers, seg, method=method)), "customer_id")
        assert got["customer_id"].equals(buyers["customer_id"])
        np.testing.assert_array_equal(got["cluster"].to_numpy(), labels)
        names = got["cluster"].replace_strict({int(k): v for k, v in seg.segment_names_.items()}, return_dtype=pl.String)
        assert got["cluster_name"].equals(names.alias("cluster_name"))
    if algorithm == "kmeans":  # the surrogate rules' SQL runs on Spark as written for a warehouse
        from segmentation_lib.segment.surrogate import SurrogateRules

        sur = SurrogateRules(max_depth=3, features=list(cfg["clustering"]["features"]), random_state=7)
        filled = filled_features(buyers, cfg["clustering"]["features"])
        sur.fit(filled, labels, names=seg.segment_names_)
        sql = sort_by_text(to_polars(ss.surrogate_segments(spark_buyers, sur)), "customer_id")
        np.testing.assert_array_equal(sql["segment"].to_numpy(), sur.predict(filled))


def test_fit_sample_is_seeded_stratified_and_exact_in_size(spark):
    rng = np.random.default_rng(0)
    n = 4000
    table = pl.DataFrame({"customer_id": [f"c{i:05d}" for i in range(n)], "total_spend": rng.lognormal(3, 1, n)})
    sdf = spark.createDataFrame(table.to_arrow())
    a, b = ss.fit_sample(sdf, 400, seed=7), ss.fit_sample(sdf, 400, seed=7)
    assert a.height == 400 and a.equals(b) and a["customer_id"].n_unique() == 400
    assert not a.equals(ss.fit_sample(sdf, 400, seed=8))
    deciles = np.quantile(table["total_spend"].to_numpy(), np.linspace(0.1, 0.9, 9))
    per_bin = np.bincount(np.searchsorted(deciles, a["total_spend"].to_numpy()), minlength=10)
    assert per_bin.min() >= 30 and per_bin.max() <= 50  # 40 per decile, up to approximate edges
    assert ss.fit_sample(sdf, 10_000, seed=7).height == n  # everyone when the table is small
