"""The kit's estimators are scikit-learn estimators: estimator checks, clone, params, errors, Ward / HDBSCAN models.

``parametrize_with_checks`` runs scikit-learn's estimator checks on small settings of every estimator in
segment/ (the whole module runs in a few seconds per estimator). The few checks that fail by design are
listed with their reason in ``EXPECTED_FAILURES``; they run as strict xfails, so a check that starts
passing must be taken off the list.
"""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from segmentation_lib.errors import ConfigError, DataError, ModelError, PipelineError, SegmentationError
from segmentation_lib.segment.clustering import CustomerSegmenter, HDBSCANAssigner, NearestCentroidAssigner
from segmentation_lib.segment.preprocessing import ColumnSelector, Log1pTransformer, QuantileClipper, _NamedScaler
from segmentation_lib.segment.rfm import RFMScorer, read_edges

#: small settings: ``features=None`` clusters every column of the (numpy) check data, named x0, x1, ...
SMALL = dict(features=None, sample_size=200, metric_sample_size=100, n_init=1)

ESTIMATORS = [
    CustomerSegmenter(k_range=(2, 3), min_k=2, max_k=3, **SMALL),  # k from the sweep
    CustomerSegmenter(algorithm="gmm", n_segments=3, **SMALL),
    CustomerSegmenter(algorithm="agglomerative", n_segments=3, agglomerative_sample_size=100, **SMALL),
    CustomerSegmenter(algorithm="hdbscan", hdbscan_min_cluster_size=2, **SMALL),
    # numpy input has no column names, so the three measures are given as column positions
    RFMScorer(recency=0, frequency=1, monetary=2),
    NearestCentroidAssigner(n_clusters=3, sample_size=100),
    HDBSCANAssigner(min_cluster_size=5),
    ColumnSelector(),
    Log1pTransformer(),
    QuantileClipper(),
    _NamedScaler(),
]

_RFM_THREE_MEASURES = ("RFM scores three measures (recency, frequency, monetary); this check fits on a 2-column "
                       "array, which RFMScorer(recency=0, frequency=1, monetary=2) refuses with a DataError "
                       "naming the missing column position instead of scoring a made-up measure.")

EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "RFMScorer": {
        "check_estimators_overwrite_params": _RFM_THREE_MEASURES,
        "check_estimators_fit_returns_self": _RFM_THREE_MEASURES,
        "check_readonly_memmap_input": _RFM_THREE_MEASURES,
        "check_fit_idempotent": _RFM_THREE_MEASURES,
        "check_fit_check_is_fitted": _RFM_THREE_MEASURES,
        "check_n_features_in": _RFM_THREE_MEASURES,
    },
    "CustomerSegmenter[hdbscan]": {
        "check_estimators_nan_inf": (
            "NaN / inf are refused as the check wants; the check then fits 10 uniform random points, in which "
            "HDBSCAN finds no cluster, and CustomerSegmenter refuses an all-noise result with a DataError "
            "(documented: 'HDBSCAN found no cluster ... Fix: lower hdbscan_min_cluster_size')."),
    },
}


def expected_failed_checks(estimator) -> dict[str, str]:
    name = type(estimator).__name__
    if isinstance(estimator, CustomerSegmenter):
        name = f"CustomerSegmenter[{estimator.algorithm}]"
    return EXPECTED_FAILURES.get(name, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # RFM degenerate-level notes on random data
        check(estimator)


# ----------------------------------------------------------------------------------------- API basics
@pytest.mark.parametrize("est", [RFMScorer(), CustomerSegmenter(), RFMScorer(bins=3, recency="r", edges={"bins": 3}),
                                 CustomerSegmenter(algorithm="hdbscan", features=("a", "b"), names={0: "Top"}),
                                 NearestCentroidAssigner(), HDBSCANAssigner()], ids=repr)
def test_clone_and_params_round_trip(est):
    twin = clone(est)
    assert type(twin) is type(est) and twin is not est
    assert twin.get_params() == est.get_params()
    assert type(est)().set_params(**est.get_params()).get_params() == est.get_params()


@pytest.mark.parametrize("cls", [CustomerSegmenter, RFMScorer, NearestCentroidAssigner, HDBSCANAssigner,
                                 ColumnSelector, Log1pTransformer, QuantileClipper, _NamedScaler])
def test_parameters_are_keyword_only_and_checked_in_fit(cls):
    with pytest.raises(TypeError):
        cls(3)
    assert cls(**{next(iter(cls().get_params())): "not valid"}) is not None  # __init__ only stores


def test_invalid_parameters_raise_value_errors_in_fit():
    t = pl.DataFrame({"days_since_last": [1, 5, 9], "n_orders": [3, 2, 1], "total_spend": [9.0, 5.0, 1.0]})
    bad = RFMScorer(bins=7)
    with pytest.raises(ValueError, match="bins=7"):
        bad.fit(t)
    with pytest.raises(ValueError, match="unknown"):
        CustomerSegmenter(algorithm="nope").fit(t)


def test_errors_are_value_errors_with_the_common_base():
    for err in (DataError, ConfigError, ModelError):
        assert issubclass(err, ValueError) and issubclass(err, SegmentationError) and err.exit_code == 2
    assert not issubclass(PipelineError, ValueError)
    with pytest.raises(ValueError):
        raise DataError("caught by code written for scikit-learn")


# ----------------------------------------------------------------------------------------- RFM edges as data
def test_rfm_fit_never_reads_a_file_and_frozen_edges_are_data(tmp_path):
    ref = pl.DataFrame({"days_since_last": list(range(1, 11)), "n_orders": list(range(1, 11)),
                        "total_spend": [float(x) for x in range(1, 11)]})
    later = pl.DataFrame({"days_since_last": [1, 50, 3], "n_orders": [20, 1, 5], "total_spend": [0.5, 7.0, 100.0]})
    path = RFMScorer().fit(ref).save_edges(tmp_path / "edges.json")
    with pytest.raises(ConfigError, match="does not read files"):
        RFMScorer(edges=str(path)).fit(later)
    frozen = RFMScorer.from_edges(path)
    as_data = RFMScorer(edges=read_edges(path)).fit(later)
    assert as_data.edges_ == frozen.edges_
    twin = clone(frozen).fit(later)  # the edges travel with the parameters
    assert twin.transform(later)["rfm_code"].to_list() == frozen.transform(later)["rfm_code"].to_list() == \
        ["551", "114", "435"]


def test_rfm_scores_arrays_by_column_position_like_the_named_table():
    t = pl.DataFrame({"days_since_last": [1, 5, 9, 30, 200], "n_orders": [9, 5, 3, 2, 1],
                      "total_spend": [900.0, 300.0, 120.0, 50.0, 10.0]})
    named = RFMScorer().fit_transform(t).select("r_score", "f_score", "m_score").to_numpy()
    positional = RFMScorer(recency=0, frequency=1, monetary=2).fit_transform(t.to_numpy())
    assert np.array_equal(named, positional)
    with pytest.raises(DataError, match="no column names"):
        RFMScorer().fit(t.to_numpy())


# ----------------------------------------------------------------------------------------- Ward / HDBSCAN models
def _planted(n_per: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    centers = np.repeat([[1.0, 10.0, 300.0], [50.0, 200.0, 60.0], [400.0, 3000.0, 5.0]], n_per, axis=0)
    X = centers * rng.uniform(0.8, 1.25, centers.shape)
    return pl.DataFrame({"n_orders": X[:, 0], "total_spend": X[:, 1], "days_since_last": X[:, 2]})


TRAIN = _planted(60, 0)
#: 8 new customers per planted group, then two far-off customers (noise for HDBSCAN)
NEW = pl.concat([_planted(8, 1), pl.DataFrame({"n_orders": [20.0, 2000.0], "total_spend": [60.0, 30000.0],
                                               "days_since_last": [150.0, 1.0]})])
GROUPS = [2] * 8 + [1] * 8 + [0] * 8

#: labels computed with the code before the model_ dicts were replaced by estimator classes
PLANTED_CASES = [
    ("agglomerative", dict(n_segments=3), GROUPS + [1, 0], [0] * 26),
    ("agglomerative", dict(n_segments=4, agglomerative_sample_size=50),
     [3, 3, 2, 2, 3, 3, 2, 2] + [1] * 8 + [0] * 8 + [1, 0], [0] * 26),
    ("hdbscan", dict(hdbscan_min_cluster_size=15), GROUPS + [1, 0], [0] * 24 + [1, 1]),
    ("hdbscan", dict(hdbscan_min_cluster_size=15, noise="label"), GROUPS + [-1, -1], [0] * 24 + [1, 1]),
    ("hdbscan", dict(hdbscan_min_cluster_size=15, hdbscan_assign="approximate_predict"), None, None),
]


@pytest.mark.parametrize("algorithm, params, labels, noise", PLANTED_CASES)
def test_ward_and_hdbscan_predict_as_before(algorithm, params, labels, noise):
    seg = CustomerSegmenter(algorithm=algorithm, features=tuple(TRAIN.columns), clip_quantile=None, **params).fit(TRAIN)
    assert isinstance(seg.model_, NearestCentroidAssigner if algorithm == "agglomerative" else HDBSCANAssigner)
    assert np.array_equal(seg.predict(TRAIN), seg.labels_)
    got, is_noise = seg.predict_with_noise(NEW)
    if labels is None:  # approximate_predict: same planted groups on the new customers
        assert got[:24].tolist() == GROUPS and seg.model_.hdbscan_ is not None
        return
    assert got.tolist() == labels and is_noise.astype(int).tolist() == noise
    counts = np.bincount(seg.labels_[seg.labels_ >= 0]).tolist()
    assert counts == ([60, 60, 35, 25] if params.get("n_segments") == 4 else [60, 60, 60])


@pytest.mark.parametrize("algorithm", ["agglomerative", "hdbscan"])
def test_models_saved_with_a_model_dict_load_into_the_assigners(algorithm):
    seg = CustomerSegmenter(algorithm=algorithm, n_segments=3 if algorithm == "agglomerative" else None,
                            hdbscan_min_cluster_size=15, features=tuple(TRAIN.columns), clip_quantile=None).fit(TRAIN)
    m = seg.model_
    if algorithm == "agglomerative":  # the dicts the segmenter kept before
        legacy = {"kind": "ward_centroids", "centers": m.centers_, "n_fitted": m.n_fitted_}
    else:
        legacy = {"kind": "hdbscan", "hdbscan": None, "nn_all": m.nn_, "labels": m.labels_,
                  "core_distances": m.core_distances_, "nn_core": m.nn_core_, "core_labels": m.core_labels_}
    old = pickle.loads(pickle.dumps(seg))
    old.model_ = legacy
    loaded = pickle.loads(pickle.dumps(old))
    assert type(loaded.model_) is type(m)
    for a, b in zip(loaded.predict_with_noise(NEW), seg.predict_with_noise(NEW)):
        assert np.array_equal(a, b)
