"""Text attributes as clustering inputs (segmentation_lib.features.encoding, clustering.encodings):
known-answer encodings on a hand-made table, the error messages, planted segments that differ only
by a text attribute, the preflight check and the profiles."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation_lib.config import encoding_problems, resolve_config
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.encoding import AttributeEncoder, check_encodings
from segmentation_lib.report.pipeline import check_text_features
from segmentation_lib.segment.clustering import CustomerSegmenter, segmenter_from_config
from segmentation_lib.segment.preprocessing import make_preprocessor, one_hot_shares, readable_profiles, with_encoded
from segmentation_lib.segment.profiles import segment_profiles

PLAN = ["free", "standard", "premium", "enterprise"]

#: hand-made table: region counts EU 3, US 2, APAC 2, LATAM 1, null 1 (-> level 'missing')
HAND = pl.DataFrame({
    "customer_id": [f"c{i}" for i in range(9)],
    "n_orders": [1, 2, 3, 4, 5, 6, 7, 8, 9],
    "plan_tier": ["free", "premium", "free", "enterprise", "standard", "free", "premium", "standard", "free"],
    "region": ["EU", "US", "EU", "APAC", "US", "EU", "APAC", "LATAM", None],
})


def test_ordinal_maps_the_given_order_to_0_to_n_minus_1():
    enc = AttributeEncoder(encodings={"plan_tier": {"ordinal": PLAN}}).fit(HAND)
    assert enc.transform(HAND)["plan_tier"].to_list() == [0.0, 2.0, 0.0, 3.0, 1.0, 0.0, 2.0, 1.0, 0.0]
    assert list(enc.get_feature_names_out()) == ["plan_tier"]


def test_one_hot_keeps_the_most_frequent_levels_ties_by_name_and_the_rest_as_other():
    # cap 2: EU (3) is kept; US and APAC tie at 2 -> APAC (first by name) is kept; US, LATAM, missing -> other
    enc = AttributeEncoder(encodings={"region": {"one_hot": {"max_levels": 2}}}).fit(HAND)
    assert list(enc.get_feature_names_out()) == ["region_EU", "region_APAC", "region_other"]
    out = enc.transform(HAND)
    assert out["region_EU"].to_list() == [1, 0, 1, 0, 0, 1, 0, 0, 0]
    assert out["region_APAC"].to_list() == [0, 0, 0, 1, 0, 0, 1, 0, 0]
    assert out["region_other"].to_list() == [0, 1, 0, 0, 1, 0, 0, 1, 1]
    # cap 3: the tie is no longer at the boundary, both kept in frequency order then by name
    enc3 = AttributeEncoder(encodings={"region": {"one_hot": {"max_levels": 3}}}).fit(HAND)
    assert list(enc3.get_feature_names_out()) == ["region_EU", "region_APAC", "region_US", "region_other"]
    # unseen level at scoring time -> other; a null is the level 'missing' (here folded into other)
    new = enc.transform(pl.DataFrame({"region": ["Mars", "EU", None]}))
    assert new.rows() == [(0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]


def test_one_hot_within_the_cap_has_no_other_column_and_nulls_are_the_level_missing():
    enc = AttributeEncoder(encodings={"region": {"one_hot": {"max_levels": 8}}}).fit(HAND)
    assert list(enc.get_feature_names_out()) == ["region_EU", "region_APAC", "region_US", "region_LATAM",
                                                 "region_missing"]
    assert enc.transform(HAND)["region_missing"].to_list() == [0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert enc.transform(pl.DataFrame({"region": ["Mars"]})).row(0) == (0.0,) * 5  # unseen: no kept level


def test_an_unlisted_ordinal_level_names_the_column_levels_counts_and_the_fix():
    with pytest.raises(DataError) as err:
        AttributeEncoder(encodings={"plan_tier": {"ordinal": ["free", "standard"]}}).fit(HAND)
    msg = str(err.value)
    assert "'plan_tier'" in msg and "'premium' (2 customers)" in msg and "'enterprise' (1 customer)" in msg
    assert "3 customers in all" in msg and "clustering.encodings.plan_tier.ordinal" in msg
    enc = AttributeEncoder(encodings={"plan_tier": {"ordinal": PLAN}}).fit(HAND)
    with pytest.raises(DataError, match=r"'gold' \(1 customer\)"):  # at scoring time too
        enc.transform(pl.DataFrame({"plan_tier": ["free", "gold"]}))
    with pytest.raises(DataError, match=r"'missing' \(1 customer\)"):  # a null must be placed in the order
        enc.transform(pl.DataFrame({"plan_tier": ["free", None]}))
    with_missing = AttributeEncoder(encodings={"plan_tier": {"ordinal": ["missing", *PLAN]}}).fit(HAND)
    assert with_missing.transform(pl.DataFrame({"plan_tier": [None, "free"]}))["plan_tier"].to_list() == [0.0, 1.0]


def test_a_text_feature_without_an_encoding_names_the_column_levels_and_both_encodings():
    with pytest.raises(DataError) as err:
        make_preprocessor(["n_orders", "region"]).fit(HAND)
    msg = str(err.value)
    assert "'region' is text" in msg and "5 levels" in msg  # EU, US, APAC, LATAM + null
    assert "one_hot: {max_levels: 8}" in msg and "ordinal: [" in msg and "clustering.encodings" in msg
    with pytest.raises(ConfigError, match="not in clustering.features"):
        check_encodings(HAND.schema, ["n_orders"], {"region": {"one_hot": {"max_levels": 2}}})
    with pytest.raises(ConfigError, match="numeric"):
        check_encodings(HAND.schema, ["n_orders"], {"n_orders": {"ordinal": ["1", "2"]}})


def test_configuration_checks_the_encoding_specs():
    assert encoding_problems({}) == []
    bad = encoding_problems({"a": {"ordinal": []}, "b": {"one_hot": {"max_levels": 0}}, "c": {"hash": 3},
                             "d": {"one_hot": {"levels": 2}}, "e": {"ordinal": ["x", "x"]}})
    assert len(bad) == 5 and all(p.startswith("clustering.encodings.") for p in bad)
    with pytest.raises(ConfigError, match="clustering.encodings.region.one_hot.max_levels"):
        resolve_config({"clustering": {"encodings": {"region": {"one_hot": {"max_levels": -1}}}}})
    cfg = resolve_config({"clustering": {"features": ["n_orders", "region"],
                                         "encodings": {"region": {"one_hot": {"max_levels": 2}}}}})
    assert segmenter_from_config(cfg["clustering"]).encodings == {"region": {"one_hot": {"max_levels": 2}}}


def test_encoded_columns_are_not_logged_or_clipped():
    rng = np.random.default_rng(0)
    n = 2_000
    df = pl.DataFrame({"n_orders": rng.poisson(3, n) + 1,
                       # a rare level (0.05%) that 0.999 clipping would erase; skewed codes that auto log1p would log
                       "region": ["rare"] + ["EU"] * (n - 1),
                       "plan_tier": rng.choice(PLAN, n, p=[0.9, 0.06, 0.03, 0.01])})
    pre = make_preprocessor(["n_orders", "region", "plan_tier"], clip_quantile=0.999,
                            encodings={"region": {"one_hot": {"max_levels": 8}},
                                       "plan_tier": {"ordinal": PLAN}}).fit(df)
    assert list(pre.get_feature_names_out()) == ["n_orders", "region_EU", "region_rare", "plan_tier"]
    assert pre.named_steps["log1p"].log_features_ == []  # plan_tier codes are skewed but never logged
    assert np.isinf(pre.named_steps["clip"].upper_[1:]).all()
    z = pre.transform(df)
    assert len(np.unique(z[:, 2])) == 2  # the rare level survives


def _planted(n_per: int = 300, seed: int = 1) -> tuple[pl.DataFrame, np.ndarray]:
    """Three planted segments with the SAME behaviour distribution, differing only by plan and region."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], n_per)
    n = truth.size
    plan = np.array(["free", "premium", "enterprise"])[truth]
    region = np.array(["EU", "US", "APAC"])[truth]
    df = pl.DataFrame({"customer_id": [f"c{i:04d}" for i in range(n)],
                       "n_orders": rng.poisson(4, n) + 1, "total_spend": rng.gamma(2.0, 60.0, n),
                       "plan_tier": plan, "region": region})
    return df, truth


ENC = {"plan_tier": {"ordinal": PLAN}, "region": {"one_hot": {"max_levels": 8}}}


def test_planted_segments_that_differ_only_by_text_attributes_are_recovered():
    df, truth = _planted()
    numeric_only = CustomerSegmenter(features=("n_orders", "total_spend"), n_segments=3, random_state=0).fit(df)
    assert adjusted_rand_score(truth, numeric_only.labels_) < 0.2  # behaviour alone cannot see them
    seg = CustomerSegmenter(features=("n_orders", "total_spend", "plan_tier", "region"), n_segments=3,
                            random_state=0, encodings=ENC).fit(df)
    assert adjusted_rand_score(truth, seg.labels_) >= 0.9
    assert list(seg.feature_names_in_) == ["n_orders", "total_spend", "plan_tier", "region"]
    assert list(seg.preprocessor_[0].get_feature_names_out()) == ["n_orders", "total_spend", "plan_tier",
                                                                   "region_APAC", "region_EU", "region_US"]
    assert (seg.predict(df) == seg.labels_).all()


def test_profiles_show_one_hot_as_shares_and_ordinal_as_the_median_level():
    df, truth = _planted(n_per=100)
    seg = CustomerSegmenter(features=("n_orders", "total_spend", "plan_tier", "region"), n_segments=3,
                            random_state=0, encodings=ENC).fit(df)
    frame, cols = with_encoded(seg, df)
    prof = readable_profiles(seg, segment_profiles(frame, seg.labels_, columns=cols)).sort("segment")
    by_truth = {int(t): int(s) for t, s in zip(truth, seg.labels_)}
    free_seg = prof.filter(pl.col("segment") == by_truth[0]).row(0, named=True)
    assert free_seg["median_plan_tier"] == "free" and free_seg["mean_region_EU"] == 1.0
    assert prof.filter(pl.col("segment") == by_truth[2])["median_plan_tier"].item() == "enterprise"
    shares = one_hot_shares(seg, prof)
    assert shares.columns == ["region = APAC (share)", "region = EU (share)", "region = US (share)"]
    assert np.allclose(shares.sum_horizontal().to_numpy(), 1.0)  # the shares of one segment add up to 1


def test_preflight_stops_a_text_feature_without_an_encoding(tmp_path):
    path = tmp_path / "customers.parquet"
    HAND.select("customer_id", "plan_tier", "region").write_parquet(path)
    cfg = resolve_config({"data": {"customers": {"path": str(path)}},
                          "clustering": {"features": ["n_orders", "plan_tier"]}})
    with pytest.raises(DataError, match=r"my.yaml: data.customers: clustering feature 'plan_tier' is text \(not numeric; 4 levels\)"):
        check_text_features(cfg, "my.yaml")
    cfg["clustering"]["encodings"] = {"plan_tier": {"ordinal": PLAN}}
    check_text_features(cfg, "my.yaml")  # declared: passes
    cfg["clustering"]["encodings"]["region"] = {"one_hot": {"max_levels": 2}}
    with pytest.raises(ConfigError, match=r"names \['region'\], which are not in clustering.features"):
        check_text_features(cfg, "my.yaml")


def test_an_encoding_of_a_column_that_is_not_a_feature_is_refused_by_the_segmenter():
    with pytest.raises(ConfigError, match=r"names \['region'\], which are not in clustering.features"):
        CustomerSegmenter(features=("n_orders", "plan_tier"), n_segments=2,
                          encodings={"plan_tier": {"ordinal": PLAN}, "region": {"one_hot": {"max_levels": 2}}}).fit(HAND)
    with pytest.raises(ConfigError, match=r"names \['region'\], which are not in clustering.features"):
        CustomerSegmenter(features=("n_orders",), n_segments=2,
                          encodings={"region": {"one_hot": {"max_levels": 2}}}).fit(HAND)


def test_a_single_level_left_over_still_goes_to_other():
    # 5 levels, cap 4: exactly max_levels named columns, the fifth (the alphabetically last of the 1-count ties) in other
    enc = AttributeEncoder(encodings={"region": {"one_hot": {"max_levels": 4}}}).fit(HAND)
    assert list(enc.get_feature_names_out()) == ["region_EU", "region_APAC", "region_US", "region_LATAM", "region_other"]
    assert enc.transform(HAND)["region_other"].to_list() == [0, 0, 0, 0, 0, 0, 0, 0, 1]  # the null ('missing')
    enc5 = AttributeEncoder(encodings={"region": {"one_hot": {"max_levels": 5}}}).fit(HAND)
    assert list(enc5.get_feature_names_out())[-1] == "region_missing"  # within the cap: no other column
