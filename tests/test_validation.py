"""Tests for segmentation_lib.validation with constructed data whose answers are known."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.validate.actionability import actionability_checks
from segmentation_lib.validate.truth import ground_truth_agreement
from segmentation_lib.validate.headline import headline_metrics
from segmentation_lib.validate.separation import internal_quality
from segmentation_lib.validate.movement import migration
from segmentation_lib.validate.predictive import predictive_validity, split_calibration_holdout
from segmentation_lib.validate.resampling import silhouette_reading, stability, stability_word
from segmentation_lib.segment.sampling import stratified_sample_indices


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(3000, centers=5, n_features=4, cluster_std=0.5, center_box=(-20, 20), random_state=0)
    return X, y


@pytest.fixture(scope="module")
def uniform():
    return np.random.default_rng(1).uniform(size=(2000, 5))


# ------------------------------------------------------------------ internal quality
def test_quality_blobs_high_noise_low(blobs, uniform):
    X, y = blobs
    good = internal_quality(X, y, sample_size=1000)
    bad = internal_quality(uniform, KMeans(5, n_init=1, random_state=0).fit_predict(uniform), sample_size=1000)
    assert good.summary["silhouette"] > 0.85
    assert bad.summary["silhouette"] < 0.3
    assert good.summary["calinski_harabasz"] > 100 * bad.summary["calinski_harabasz"]
    assert good.summary["davies_bouldin"] < 0.3 < bad.summary["davies_bouldin"]
    assert good.summary["silhouette_sample_size"] == 1000
    assert good.summary["noise_share"] == 0.0
    assert good.segments["size"].sum() == 3000


def test_stratified_sample_keeps_small_segments():
    labels = np.r_[np.zeros(49_980, dtype=int), np.ones(20, dtype=int)]
    idx = stratified_sample_indices(labels, 2000, random_state=3)
    assert (labels[idx] == 1).sum() == 20  # all of the small segment (floor 2000 // 8 = 250 > 20)
    assert abs(idx.size - 2000) <= 25
    assert np.unique(idx).size == idx.size
    np.testing.assert_array_equal(idx, stratified_sample_indices(labels, 2000, random_state=3))


def test_quality_small_segment_counted_in_sample():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (20_000, 2)), rng.normal(30, 1, (30, 2))]
    labels = np.r_[np.zeros(20_000, dtype=int), np.ones(30, dtype=int)]
    q = internal_quality(X, labels, sample_size=500)
    row = q.segments.filter(pl.col("segment") == 1).row(0, named=True)
    assert row["sampled"] == 30 and row["silhouette"] > 0.9


def test_quality_noise_share_and_dbcv(blobs):
    X, y = blobs
    labels = y.copy()
    labels[:300] = -1
    q = internal_quality(X, labels)
    assert q.summary["noise_share"] == pytest.approx(0.1)
    assert q.summary["dbcv"] is not None and 0.5 < q.summary["dbcv"] <= 1.0
    assert q.segments.height == 5  # noise not a segment


def test_quality_guards_single_cluster_and_all_noise(blobs):
    X, _ = blobs
    one = np.r_[np.zeros(2900, dtype=int), -np.ones(100, dtype=int)]
    q = internal_quality(X, one)
    assert q.summary["silhouette"] is None and q.summary["dbcv"] is None
    assert "fewer than two" in q.summary["note"]
    q = internal_quality(X, -np.ones(3000, dtype=int), dbcv=True)
    assert q.summary["noise_share"] == 1.0 and q.summary["dbcv"] is None and q.summary["calinski_harabasz"] is None
    # two clusters but one of them a single point in the sample -> no NaN, guarded
    two = np.r_[np.zeros(2999, dtype=int), [1]]
    assert internal_quality(X, two, dbcv=True).summary["dbcv"] is None


def test_quality_bad_input():
    with pytest.raises(DataError, match="labels"):
        internal_quality(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(DataError, match="row 3"):
        X = np.zeros((10, 2))
        X[3, 1] = np.nan
        internal_quality(X, np.zeros(10))


# ------------------------------------------------------------------ stability
def test_stability_blobs_stable(blobs):
    X, _ = blobs
    s = stability(KMeans(5, n_init=1), X, n_resamples=6, n_seeds=2, random_state=0)
    assert s.summary["ari_median"] > 0.9
    assert s.summary["jaccard_min"] > 0.75
    assert s.segments["reading"].to_list() == ["stable"] * 5
    assert s.resamples.height == 8 and set(s.resamples["kind"]) == {"bootstrap", "seed"}


def test_stability_noise_less_stable_and_flagged(blobs, uniform):
    X, _ = blobs
    good = stability(KMeans(5, n_init=1), X, n_resamples=6, random_state=0)
    bad = stability(KMeans(5, n_init=1), uniform, n_resamples=6, random_state=0)
    assert bad.summary["ari_median"] < good.summary["ari_median"] - 0.3
    assert bad.summary["jaccard_min"] < 0.6
    assert set(bad.segments["reading"]) <= {"doubtful", "moderate"}
    assert bad.summary["n_stable"] == 0


def test_stability_factory_polars_bounded_and_deterministic():
    X, _ = make_blobs(20_000, centers=3, n_features=2, cluster_std=0.3, center_box=(-10, 10), random_state=2)
    df = pl.DataFrame({"customer_id": [str(i) for i in range(X.shape[0])], "a": X[:, 0], "b": X[:, 1]})
    seen: list[int] = []

    def fit_predict(data: pl.DataFrame, seed: int) -> np.ndarray:
        assert isinstance(data, pl.DataFrame)
        seen.append(data.height)
        return KMeans(3, n_init=1, random_state=seed).fit_predict(data.select("a", "b").to_numpy())

    s1 = stability(fit_predict, df, n_resamples=3, sample_size=800, method="subsample", n_seeds=1, random_state=5)
    assert max(seen) == 800 and len(seen) == 1 + 3 + 1
    assert seen[1] == 640  # 0.8 subsample
    s2 = stability(fit_predict, df, n_resamples=3, sample_size=800, method="subsample", n_seeds=1, random_state=5)
    assert s1.resamples.equals(s2.resamples)
    assert s1.summary["ari_median"] > 0.9


def test_stability_thresholds_configurable(uniform):
    s = stability(KMeans(5, n_init=1), uniform, n_resamples=3, random_state=0,
                  stable_threshold=0.0, doubtful_threshold=0.0)
    assert set(s.segments["reading"]) == {"stable"}


def test_stability_bad_arguments(blobs):
    X, _ = blobs
    with pytest.raises(ConfigError):
        stability(42, X)
    with pytest.raises(ConfigError):
        stability(KMeans(2), X, method="jackknife")


# ------------------------------------------------------------------ predictive validity
def _ts(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 12, tzinfo=timezone.utc)


@pytest.fixture()
def planted_log() -> pl.DataFrame:
    rows = []
    for c in ["L1", "L2", "L3", "L4"]:  # loyal: buy before and in the holdout
        rows += [(c, _ts(2024, 6, 15), 10.0), (c, _ts(2024, 7, 15), 20.0)]
    for c in ["D1", "D2", "D3", "D4"]:  # lapsed: buy before only
        rows += [(c, _ts(2024, 6, 10), 10.0)]
    rows += [("D4", _ts(2024, 11, 1), 100.0)]  # after the 90-day holdout: ignored
    rows += [("N1", _ts(2024, 7, 20), 50.0), ("N2", _ts(2024, 8, 1), 5.0)]  # first seen in the holdout
    return pl.DataFrame(rows, schema={"customer_id": pl.String, "timestamp": pl.Datetime("us", "UTC"),
                                      "amount": pl.Float64}, orient="row")


def test_split_excludes_and_counts_new_customers(planted_log):
    s = split_calibration_holdout(planted_log, "2024-07-01", holdout_days=90)
    assert s.n_new_in_holdout == 2
    assert s.n_calibration_customers == 8
    assert s.calibration.height == 8
    assert sorted(s.holdout["customer_id"].to_list()) == ["L1", "L2", "L3", "L4"]
    with pytest.raises(DataError, match="no transactions before"):
        split_calibration_holdout(planted_log, "2020-01-01")
    with pytest.raises(DataError, match="amount_x"):
        split_calibration_holdout(planted_log.rename({"timestamp": "amount_x"}), "2024-07-01")


def test_predictive_planted_separation_and_ordering(planted_log):
    ids = ["L1", "L2", "L3", "L4", "D1", "D2", "D3", "D4"]
    planted = pl.DataFrame({"customer_id": ids, "segment": ["loyal"] * 4 + ["lapsed"] * 4})
    mixed = pl.DataFrame({"customer_id": ids, "segment": ["A", "A", "B", "B", "A", "A", "B", "B"]})
    calls = []

    def feature_fn(tx: pl.DataFrame, as_of):
        calls.append((tx["timestamp"].max(), as_of))
        return tx.group_by("customer_id").agg(pl.col("timestamp").max().alias("last"))

    def by_recency(features: pl.DataFrame) -> pl.DataFrame:  # last purchase after 2024-06-12 -> "recent"
        return features.select("customer_id", pl.when(pl.col("last") > _ts(2024, 6, 12)).then(pl.lit("recent"))
                               .otherwise(pl.lit("older")).alias("segment"))

    r = predictive_validity(planted_log, "2024-07-01", {"clusters": mixed, "rfm": planted, "fn": by_recency},
                            holdout_days=90, feature_fn=feature_fn)
    assert len(calls) == 1 and calls[0][0] < _ts(2024, 7, 1)  # features from calibration only
    assert r.summary["new_in_holdout_excluded"] == 2
    sep = {row["method"]: row for row in r.separation.iter_rows(named=True)}
    assert sep["rfm"]["eta_squared_spend"] == pytest.approx(1.0)
    assert sep["rfm"]["purchase_rate_spread"] == pytest.approx(1.0)
    assert (sep["rfm"]["best_segment"], sep["rfm"]["worst_segment"]) == ("loyal", "lapsed")
    assert sep["clusters"]["eta_squared_spend"] == pytest.approx(0.0)
    assert sep["clusters"]["purchase_rate_spread"] == pytest.approx(0.0)
    assert sep["fn"]["eta_squared_spend"] == pytest.approx(1.0)
    seg = {(row["method"], row["segment"]): row for row in r.segments.iter_rows(named=True)}
    loyal, lapsed = seg[("rfm", "loyal")], seg[("rfm", "lapsed")]
    assert (loyal["customers"], loyal["purchase_rate"], loyal["mean_holdout_spend"], loyal["retention"]) == (4, 1.0, 20.0, 1.0)
    assert (lapsed["customers"], lapsed["purchase_rate"], lapsed["mean_holdout_spend"], lapsed["retention"]) == (4, 0.0, 0.0, 0.0)
    assert loyal["rank_by_spend"] == 1
    assert seg[("clusters", "A")]["mean_holdout_spend"] == 10.0


def test_predictive_unassigned_counted_and_errors(planted_log):
    part = pl.DataFrame({"customer_id": ["L1", "D1"], "segment": ["x", "y"]})
    r = predictive_validity(planted_log, "2024-07-01", {"m": part}, holdout_days=90)
    assert r.summary["unassigned_calibration_customers"] == {"m": 6}
    with pytest.raises(DataError, match="none of the calibration customers"):
        predictive_validity(planted_log, "2024-07-01", {"m": pl.DataFrame({"customer_id": ["zz"], "segment": ["x"]})})
    with pytest.raises(ConfigError):
        predictive_validity(planted_log, "2024-07-01", {})
    with pytest.raises(ConfigError, match="holdout_days"):
        predictive_validity(planted_log, "2024-07-01", {"m": part}, holdout_days=0)


# ------------------------------------------------------------------ migration
def test_migration_hand_counted():
    before = pl.DataFrame({"customer_id": list("abcdef"),
                           "segment": ["Champions", "Champions", "Loyal", "Loyal", "Lost", "At Risk"]})
    after = pl.DataFrame({"customer_id": list("abcdeg"),
                          "segment": ["Champions", "At Risk", "Champions", "Hibernating", "Lost", "New"]})
    m = migration(before, after)
    got = {(r["from_segment"], r["to_segment"]): r["count"] for r in m.counts.iter_rows(named=True)}
    assert got == {("Champions", "Champions"): 1, ("Champions", "At Risk"): 1, ("Loyal", "Champions"): 1,
                   ("Loyal", "Hibernating"): 1, ("Lost", "Lost"): 1}
    assert m.summary["changed"] == 3 and m.summary["changed_share"] == pytest.approx(0.6)
    assert (m.summary["appeared"], m.summary["disappeared"], m.summary["customers_in_both"]) == (1, 1, 5)
    assert m.moved_to_at_risk["customer_id"].to_list() == ["b", "d"]
    assert m.counts_wide.columns == ["from_segment", "At Risk", "Champions", "Hibernating", "Lost"]
    assert m.counts_wide["from_segment"].to_list() == ["Champions", "Lost", "Loyal"]
    assert m.counts_wide.row(0) == ("Champions", 1, 1, 0, 0)
    assert m.shares_wide.row(2) == ("Loyal", 0.0, 0.5, 0.5, 0.0)
    sk = {(r["source"], r["target"]): r["count"] for r in m.sankey_data.iter_rows(named=True)}
    assert sk[("(new)", "New")] == 1 and sk[("At Risk", "(gone)")] == 1 and sum(sk.values()) == 7


def test_migration_errors():
    b = pl.DataFrame({"customer_id": ["a", "a"], "segment": ["x", "y"]})
    with pytest.raises(DataError, match="more than one row"):
        migration(b, b)
    with pytest.raises(DataError, match="tier"):
        migration(b, b, segment_col="tier")


# ------------------------------------------------------------------ actionability
def _segments(sizes=(100, 100, 100), gap=5.0, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    seg, spend, freq = [], [], []
    for i, n in enumerate(sizes):
        seg += [f"S{i}"] * n
        spend.append(rng.normal(100 + gap * 10 * i, 10, n))
        freq.append(rng.normal(5, 1, n))
    n = sum(sizes)
    return pl.DataFrame({"customer_id": [str(i) for i in range(n)], "segment": seg,
                         "total_spend": np.concatenate(spend), "n_orders": np.concatenate(freq)})


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


def test_stability_and_silhouette_wording():
    assert [stability_word(v) for v in (0.75, 0.74, 0.6, 0.59, None)] == ["stable", "moderate", "moderate", "doubtful", None]
    assert stability_word(0.7, stable=0.7, doubtful=0.5) == "stable"
    assert [silhouette_reading(v) for v in (0.7, 0.69, 0.5, 0.25, 0.249, float("nan"))] == [
        "strong", "reasonable", "reasonable", "weak", "no substantial", None]


# ------------------------------------------------------------------ ground truth and headline
def test_ground_truth_agreement():
    a = pl.DataFrame({"customer_id": ["1", "2", "3", "4", "5", "6", "9"], "segment": [2, 2, 0, 0, 1, 1, 1]})
    t = pl.DataFrame({"customer_id": ["1", "2", "3", "4", "5", "6", "7"],
                      "archetype": ["vip", "vip", "new", "new", "lost", "new", "lost"]})
    r = ground_truth_agreement(a, t)
    assert r.summary["matched"] == 6 and r.summary["unmatched_assignments"] == 1 and r.summary["unmatched_truth"] == 1
    conf = {(x["segment"], x["truth"]): x["count"] for x in r.confusion.iter_rows(named=True)}
    assert conf == {("0", "new"): 2, ("1", "lost"): 1, ("1", "new"): 1, ("2", "vip"): 2}
    assert r.summary["purity"] == pytest.approx(5 / 6)
    assert 0 < r.ari < 1 and 0 < r.nmi < 1
    perfect = ground_truth_agreement(a.filter(pl.col("customer_id") != "6"), t)
    assert perfect.ari == pytest.approx(1.0) and perfect.nmi == pytest.approx(1.0)


def test_headline_metrics_json_safe(blobs, planted_log):
    X, y = blobs
    q = internal_quality(X, y, sample_size=500)
    s = stability(KMeans(5, n_init=1), X, n_resamples=2, n_seeds=0, sample_size=500)
    ids = ["L1", "L2", "L3", "L4", "D1", "D2", "D3", "D4"]
    p = predictive_validity(planted_log, "2024-07-01",
                            {"rfm": pl.DataFrame({"customer_id": ids, "segment": ["a"] * 4 + ["b"] * 4})})
    seg = _segments()
    m = migration(seg, seg)
    c = actionability_checks(seg, fidelity=0.9)
    t = ground_truth_agreement(seg, seg.rename({"segment": "archetype"}))
    h = headline_metrics(q, s, p, m, c, t)
    json.dumps(h, allow_nan=False)
    assert h["silhouette"] > 0.85 and h["stability_ari_median"] > 0.9
    assert h["migration_changed_share"] == 0.0 and h["checks_passed"] == 5 and h["truth_ari"] == 1.0
    assert h["separation"]["rfm"]["eta_squared_spend"] == pytest.approx(1.0)
    assert h["new_in_holdout_excluded"] == 2
    assert h["separation"]["rfm"]["n_segments"] == 2
    assert (h["stable_threshold"], h["doubtful_threshold"]) == (0.75, 0.6)
    empty = headline_metrics()
    json.dumps(empty, allow_nan=False)
    assert empty["stability_ari_median"] is None


def test_predictive_return_only_holdout_is_not_a_purchase():
    tx = pl.DataFrame(
        [("R1", _ts(2024, 6, 1), 30.0), ("R1", _ts(2024, 7, 5), -30.0), ("B1", _ts(2024, 6, 1), 10.0),
         ("B1", _ts(2024, 7, 6), 15.0), ("Z1", _ts(2023, 1, 1), 10.0)],
        schema={"customer_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "amount": pl.Float64}, orient="row")
    assign = pl.DataFrame({"customer_id": ["R1", "B1", "Z1"], "segment": ["r", "b", "b"]})
    r = predictive_validity(tx, "2024-07-01", {"m": assign}, holdout_days=30)
    seg = {row["segment"]: row for row in r.segments.iter_rows(named=True)}
    assert (seg["r"]["purchase_rate"], seg["r"]["mean_holdout_spend"], seg["r"]["retention"]) == (0.0, -30.0, 0.0)
    # Z1 bought long before the 30-day pre-cutoff window: not in the retention denominator
    assert (seg["b"]["purchase_rate"], seg["b"]["active_before"], seg["b"]["retention"]) == (0.5, 1, 1.0)


def test_quality_string_labels_with_null_segment_as_noise(blobs):
    X, y = blobs
    names = np.array(["a", "b", "c", "d", "e"], dtype=object)[y]
    names[:30] = None
    q = internal_quality(X, pl.Series(names), sample_size=800, dbcv=True)
    assert q.summary["noise_share"] == pytest.approx(0.01)
    assert sorted(q.segments["segment"].to_list()) == ["a", "b", "c", "d", "e"]
    assert q.summary["silhouette"] > 0.85 and q.summary["dbcv"] > 0.5


def test_stability_estimator_without_predict(blobs):
    from sklearn.cluster import AgglomerativeClustering

    X, _ = blobs
    s = stability(AgglomerativeClustering(5), X, n_resamples=2, n_seeds=1, sample_size=600)
    assert s.summary["ari_median"] > 0.9 and s.summary["sample_size"] == 600


def test_predictive_spread_ignores_tiny_segments(planted_log):
    ids = ["L1", "L2", "L3", "L4", "D1", "D2", "D3", "D4"]
    a = pl.DataFrame({"customer_id": ids, "segment": ["solo"] + ["mix"] * 3 + ["mix"] * 2 + ["lapsed"] * 2})
    r = predictive_validity(planted_log, "2024-07-01", {"m": a}, holdout_days=90, min_segment_size=2)
    row = r.separation.row(0, named=True)
    # eligible: mix (3 of 5 buy: 0.6) and lapsed (0.0); "solo" (1 customer, 1.0) is left out
    assert row["purchase_rate_spread"] == pytest.approx(0.6)
    assert (row["best_segment"], row["worst_segment"]) == ("mix", "lapsed")


def test_empty_holdout_is_a_clear_data_error():
    import datetime as _dt

    from segmentation_lib.errors import DataError as _DataError
    from segmentation_lib.validate.predictive import predictive_validity as _pv

    tx = pl.DataFrame({"customer_id": ["a", "b"], "amount": [10.0, 20.0],
                       "timestamp": [_dt.datetime(2024, 1, 5, tzinfo=_dt.timezone.utc),
                                     _dt.datetime(2024, 1, 9, tzinfo=_dt.timezone.utc)]})
    seg = pl.DataFrame({"customer_id": ["a", "b"], "segment": ["x", "y"]})
    with pytest.raises(_DataError, match="holdout period has no transactions"):
        _pv(tx, "2024-03-01", {"m": seg}, holdout_days=30)


# ------------------------------------------------------------------ review fixes
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


def test_ground_truth_no_match_names_the_setting():
    a = pl.DataFrame({"customer_id": ["u1", "u2"], "segment": [0, 1]})
    t = pl.DataFrame({"customer_id": ["1", "2"], "archetype": ["x", "y"]})
    with pytest.raises(DataError, match=r"set data\.truth: null \(it is only for the demo data\) or point it") as e:
        ground_truth_agreement(a, t)
    assert str(e.value).startswith("No customer id of the segment assignments is in the truth table")


def test_predictive_best_segment_by_mean_holdout_spend():
    import datetime as _dt

    def ts(d: str) -> _dt.datetime:
        return _dt.datetime.fromisoformat(d).replace(tzinfo=_dt.timezone.utc)

    # calibration: everyone buys once; holdout: "often" 2 of 2 buy 10 each, "big" 1 of 2 buys 500
    tx = pl.DataFrame({
        "customer_id": ["o1", "o2", "b1", "b2", "o1", "o2", "b1"],
        "timestamp": [ts("2024-03-01")] * 4 + [ts("2024-08-01")] * 3,
        "amount": [5.0, 5.0, 5.0, 5.0, 10.0, 10.0, 500.0],
    })
    seg = pl.DataFrame({"customer_id": ["o1", "o2", "b1", "b2"], "segment": ["often", "often", "big", "big"]})
    r = predictive_validity(tx, "2024-07-01", {"m": seg}, holdout_days=90, min_segment_size=1)
    row = r.separation.row(0, named=True)
    # mean holdout spend: big 250, often 10 -> best "big" (rank 1 by spend); purchase rates 0.5 / 1.0
    assert (row["best_segment"], row["worst_segment"]) == ("big", "often")
    assert row["purchase_rate_spread"] == pytest.approx(0.5)
    ranks = dict(r.segments.select("segment", "rank_by_spend").iter_rows())
    assert ranks == {"big": 1, "often": 2}
