"""CustomerSegmenter, sweep_k, recommend_k: planted segments, ordering, determinism, errors."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score, silhouette_score

from segmentation_lib.segment.clustering import CustomerSegmenter, elbow_k, recommend_k, silhouettes, sweep_k
from segmentation_lib.errors import ConfigError, DataError

FEATURES = ["days_since_last", "n_orders", "total_spend", "avg_order_value", "mean_days_between", "tenure_days"]
# planted segments (medians of each feature); segment order = decreasing total_spend
CENTERS = np.array([
    [10, 30, 5000, 160, 12, 700],   # high value, frequent, recent
    [40, 8, 600, 75, 45, 400],      # regular
    [300, 3, 150, 50, 120, 600],    # lapsed
    [20, 1, 40, 40, np.nan, 20],    # new one-time buyers (no gap: null, filled with tenure)
])


def planted(sizes=(300, 500, 400, 300), seed=0, sigma=0.12) -> tuple[pl.DataFrame, np.ndarray]:
    """Well separated synthetic customers in feature space and their true segment."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    vals = CENTERS[truth] * rng.lognormal(0.0, sigma, (truth.size, CENTERS.shape[1]))
    vals[:, [0, 1, 5]] = np.round(vals[:, [0, 1, 5]])
    perm = rng.permutation(truth.size)  # mix the rows so segments are not contiguous
    vals, truth = vals[perm], truth[perm]
    df = pl.DataFrame({"customer_id": [f"C{i:05d}" for i in range(truth.size)]}).with_columns(
        [pl.Series(f, vals[:, j]).fill_nan(None) for j, f in enumerate(FEATURES)])
    return df, truth


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def fitted(data):
    return CustomerSegmenter().fit(data[0])


def test_planted_segments_recovered_with_recommended_k(data, fitted):
    df, truth = data
    assert fitted.n_segments_ == 4
    assert fitted.recommendation_["k"] == 4
    assert adjusted_rand_score(truth, fitted.labels_) == 1.0
    # segment ids follow decreasing mean total_spend: planted order 0..3 is exactly that
    assert (fitted.labels_ == truth).all()


def test_labels_ordered_by_mean_spend_descending(data, fitted):
    means = (pl.DataFrame({"s": fitted.labels_, "t": data[0]["total_spend"]})
             .group_by("s").agg(pl.col("t").mean()).sort("s")["t"].to_list())
    assert means == sorted(means, reverse=True)
    assert fitted.segment_names_[0].startswith("High value")


def test_sweep_table_and_reasons(fitted):
    sw = fitted.sweep_
    assert sw.columns == ["k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "bic",
                          "min_segment_share"]
    assert sw["k"].to_list() == list(range(2, 11))
    assert sw["bic"].null_count() == 9  # kmeans: no BIC
    inertia = sw["inertia"].to_list()
    assert all(a >= b for a, b in zip(inertia, inertia[1:]))
    assert sw.filter(pl.col("k") == 4)["min_segment_share"].item() == pytest.approx(300 / 1500)
    assert "k=4" in fitted.recommendation_["reasons"]


def test_determinism_two_runs(data):
    a = CustomerSegmenter(sample_size=800, random_state=7).fit(data[0])
    b = CustomerSegmenter(sample_size=800, random_state=7).fit(data[0])
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.sample_index_, b.sample_index_)
    assert a.sweep_.equals(b.sweep_)


def test_large_input_path_fits_on_sample_and_assigns_everyone(data):
    df, truth = data
    seg = CustomerSegmenter(n_segments=4, sample_size=400).fit(df)
    assert seg.sample_index_.size == 400
    assert seg.labels_.size == df.height
    assert adjusted_rand_score(truth, seg.labels_) > 0.99
    assert np.array_equal(seg.predict(df), seg.labels_)
    assert np.array_equal(seg.fit_predict(df), seg.labels_)


def test_sklearn_conventions_get_set_params_clone(fitted):
    params = fitted.get_params()
    assert params["algorithm"] == "kmeans" and params["n_segments"] is None and params["min_k"] == 3
    c = clone(fitted)
    assert c.get_params() == params
    assert not hasattr(c, "labels_")
    c.set_params(n_segments=3, algorithm="gmm")
    assert c.n_segments == 3 and c.algorithm == "gmm"
    assert CustomerSegmenter(n_segments=5).n_segments == 5  # __init__ stores only


@pytest.mark.parametrize("algorithm", ["minibatch_kmeans", "gmm", "agglomerative"])
def test_other_algorithms_recover_planted_segments(data, algorithm):
    df, truth = data
    seg = CustomerSegmenter(algorithm=algorithm, n_segments=4).fit(df)
    assert adjusted_rand_score(truth, seg.labels_) > 0.98
    assert np.array_equal(seg.predict(df), seg.labels_)


def test_gmm_sweep_has_bic(data):
    seg = CustomerSegmenter(algorithm="gmm", k_range=(2, 5), n_segments=None).fit(data[0])
    assert seg.sweep_["bic"].null_count() == 0
    assert seg.n_segments_ == 4


def test_hdbscan_noise_flagged_and_assigned(data):
    df, truth = data
    outliers = pl.DataFrame({"customer_id": ["X1", "X2"], "days_since_last": [5000.0, 1.0],
                             "n_orders": [900.0, 1.0], "total_spend": [1.0, 9e6], "avg_order_value": [1e5, 1.0],
                             "mean_days_between": [1.0, 3000.0], "tenure_days": [1.0, 9000.0]})
    full = pl.concat([df, outliers])
    seg = CustomerSegmenter(algorithm="hdbscan", hdbscan_min_cluster_size=50, clip_quantile=None).fit(full)
    assert seg.n_segments_ == 4
    assert adjusted_rand_score(truth, seg.labels_[:-2]) > 0.95
    assert seg.is_noise_[-2:].all()
    assert 0 < seg.noise_share_ < 0.05
    assert (seg.labels_ >= 0).all()  # noise="assign": everyone gets a segment
    lab, noise = seg.predict_with_noise(outliers)
    assert noise.all() and (lab >= 0).all()
    seg_label = CustomerSegmenter(algorithm="hdbscan", hdbscan_min_cluster_size=50, clip_quantile=None,
                                  noise="label").fit(full)
    assert (seg_label.labels_[-2:] == -1).all()
    assert "noise" in seg_label.recommendation_["reasons"]


def test_silhouettes_match_sklearn():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(300, 3))
    labs = [rng.integers(0, k, 300) for k in (2, 4)]
    labs[1][0] = 3  # keep 4 labels present
    ours = silhouettes(Z, labs, chunk=64)
    assert ours == pytest.approx([silhouette_score(Z, lab) for lab in labs], abs=1e-10)


def test_sweep_k_on_matrix():
    rng = np.random.default_rng(0)
    Z = np.vstack([rng.normal(c, 0.2, (60, 2)) for c in (0, 4, 8)])
    sw = sweep_k(Z, (2, 5), metric_sample_size=100)
    best = sw.sort("silhouette", descending=True)["k"][0]
    assert best == 3


def test_elbow_rule():
    assert elbow_k([1, 2, 3, 4, 5, 6], [100, 60, 20, 15, 12, 10]) == 3
    assert elbow_k([2, 3], [5.0, 4.0]) is None
    assert elbow_k([2, 3, 4], [1.0, 1.0, 1.0]) is None


def _table(shares, sil):
    k = list(range(2, 2 + len(shares)))
    return pl.DataFrame({"k": k, "inertia": [100.0 / x for x in k], "silhouette": sil,
                         "calinski_harabasz": sil, "davies_bouldin": [1 - s for s in sil], "bic": [None] * len(k),
                         "min_segment_share": shares}, schema_overrides={"bic": pl.Float64})


def test_recommend_k_respects_range_and_share():
    t = _table([0.4, 0.3, 0.2, 0.01, 0.1], [0.9, 0.5, 0.6, 0.8, 0.4])
    r = recommend_k(t, min_k=3, max_k=6, min_segment_share=0.02)
    assert r["k"] == 4  # k=2 best but below min_k; k=5 better but a segment under 2%
    assert "excluded" in r["reasons"] and "k=4" in r["reasons"]
    r2 = recommend_k(_table([0.01, 0.015, 0.005], [0.9, 0.8, 0.7]), min_k=2, max_k=4, min_segment_share=0.02)
    assert r2["k"] == 3 and r2["reasons"].startswith("No k between 2 and 4")
    with pytest.raises(ConfigError, match="min_k"):
        recommend_k(t, min_k=5, max_k=3)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_segments": 5000}, ConfigError, "not smaller than the number of customers"),
    ({"features": ()}, ConfigError, "non-empty"),
    ({"features": ("n_orders", "loyalty_points")}, DataError, "loyalty_points"),
    ({"algorithm": "dbscan"}, ConfigError, "unknown"),
    ({"k_range": (1, 4)}, ConfigError, "k_range"),
    ({"min_k": 6, "max_k": 3}, ConfigError, "min_k"),
    ({"scaler": "minmax"}, ConfigError, "scaler"),
    ({"noise": "drop"}, ConfigError, "noise"),
    ({"n_segments": 1}, ConfigError, "integer >= 2"),
])
def test_clear_errors_for_bad_parameters(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        CustomerSegmenter(**kwargs).fit(data[0])


def test_constant_feature_error(data):
    df = data[0].with_columns(pl.lit(3.0).alias("n_orders"))
    with pytest.raises(DataError, match=r"\['n_orders'\] are constant"):
        CustomerSegmenter(n_segments=3).fit(df)


def test_null_feature_error_names_column(data):
    df = data[0].with_columns(pl.when(pl.int_range(pl.len()) == 5).then(None).otherwise(pl.col("total_spend"))
                              .alias("total_spend"))
    with pytest.raises(DataError, match="'total_spend' \\(1 rows, first at row 5\\)"):
        CustomerSegmenter(n_segments=3).fit(df)


def test_demo_truth_recovered_with_default_config():
    demo = pytest.importorskip("segmentation_lib.data.demo")
    features = pytest.importorskip("segmentation_lib.features.customer")
    from datetime import timedelta

    d = demo.make_transactions(n_customers=8_000, seed=3)
    tx = d.transactions.filter(pl.col("customer_id").is_not_null()).unique()  # duplicates out
    as_of = tx["timestamp"].max().date() + timedelta(days=1)
    f = features.customer_features(tx, as_of).join(d.truth, on="customer_id")
    seg = CustomerSegmenter().fit(f)
    assert 3 <= seg.n_segments_ <= 8
    assert adjusted_rand_score(f["archetype"], seg.labels_) >= 0.8
    six = CustomerSegmenter(n_segments=6).fit(f)
    assert adjusted_rand_score(f["archetype"], six.labels_) >= 0.9


def test_segmenter_from_default_config():
    import yaml
    from pathlib import Path

    from segmentation_lib.segment.clustering import segmenter_from_config

    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "default.yaml").read_text())
    seg = segmenter_from_config(cfg["clustering"], random_state=7)
    assert seg.algorithm == "kmeans" and seg.n_segments is None and seg.random_state == 7
    assert seg.k_range == (2, 10) and seg.features[0] == "days_since_last"
    with pytest.raises(ConfigError, match="unknown setting"):
        segmenter_from_config({"n_clusters": 3})


def test_hdbscan_approximate_predict_option_agrees_on_training_rows(data):
    df, truth = data
    seg = CustomerSegmenter(algorithm="hdbscan", hdbscan_min_cluster_size=50, hdbscan_assign="approximate_predict",
                            clip_quantile=None).fit(df)
    assert adjusted_rand_score(truth, seg.labels_) > 0.95
    assert seg.model_.hdbscan_ is not None


# --------------------------------------------------------------------------- outliers left out of fitting


def _with_wholesalers(flag: bool = True) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Three planted segments (1,200 customers) plus 3 wholesalers with ~1,000x their spend, flagged is_outlier."""
    df, truth = planted(sizes=(300, 500, 400))
    whales = pl.DataFrame({"customer_id": ["W0", "W1", "W2"], "days_since_last": [2.0] * 3, "n_orders": [400.0, 500.0, 450.0],
                           "total_spend": [2e6, 3e6, 2.5e6], "avg_order_value": [5000.0, 6000.0, 5500.0],
                           "mean_days_between": [1.5] * 3, "tenure_days": [700.0] * 3})
    full = pl.concat([df.with_columns(pl.lit(False).alias("is_outlier")),
                      whales.select(df.columns).with_columns(pl.lit(flag).alias("is_outlier"))], how="vertical_relaxed")
    return df, full, truth


RAW_KMEANS = dict(n_segments=3, log_features=(), clip_quantile=None, features=("days_since_last", "n_orders", "total_spend"))


def test_flagged_outliers_left_out_of_fitting_but_assigned():
    df, full, truth = _with_wholesalers()
    # without the exclusion the 3 wholesalers take a segment of their own and two planted segments merge
    distorted = CustomerSegmenter(fit_exclude=None, **RAW_KMEANS).fit(full)
    assert np.bincount(distorted.labels_).tolist() == [3, 800, 400]
    seg = CustomerSegmenter(**RAW_KMEANS).fit(full)  # default fit_exclude="is_outlier"
    assert seg.n_excluded_from_fit_ == 3
    assert (seg.labels_[:1200] == truth).all()        # the planted segments, exactly
    assert seg.labels_[1200:].tolist() == [0, 0, 0]   # wholesalers assigned to the highest-value segment
    assert np.bincount(seg.labels_).tolist() == [303, 500, 400]
    ref = CustomerSegmenter(**RAW_KMEANS).fit(df)     # the same fit as without those rows at all
    assert (seg.labels_[:1200] == ref.labels_).all() and seg.segment_names_ == ref.segment_names_
    assert (seg.predict(full) == seg.labels_).all()


def test_fit_exclude_absent_column_and_errors():
    df, full, _ = _with_wholesalers(flag=False)
    assert CustomerSegmenter(**RAW_KMEANS).fit(df).n_excluded_from_fit_ == 0  # no is_outlier column
    assert CustomerSegmenter(**RAW_KMEANS).fit(full).n_excluded_from_fit_ == 0  # column, nothing flagged
    with pytest.raises(DataError, match="'is_outlier'.*not Boolean"):
        CustomerSegmenter(**RAW_KMEANS).fit(full.with_columns(pl.col("is_outlier").cast(pl.Int8)))
    with pytest.raises(DataError, match="Only 1 of 1,203 customers are left"):
        CustomerSegmenter(**RAW_KMEANS).fit(full.with_columns(pl.int_range(pl.len()).gt(0).alias("is_outlier")))
    with pytest.raises(ConfigError, match="fit_exclude"):
        CustomerSegmenter(fit_exclude=3).fit(df)
