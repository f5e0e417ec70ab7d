"""segmentation_lib.validate.separation: internal_quality (silhouette, Calinski-Harabasz, Davies-Bouldin,
DBCV, noise share) on constructed data whose answers are known."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.cluster import KMeans

from segmentation_lib.errors import DataError
from segmentation_lib.validate.separation import internal_quality


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


def test_quality_string_labels_with_null_segment_as_noise(blobs):
    X, y = blobs
    names = np.array(["a", "b", "c", "d", "e"], dtype=object)[y]
    names[:30] = None
    q = internal_quality(X, pl.Series(names), sample_size=800, dbcv=True)
    assert q.summary["noise_share"] == pytest.approx(0.01)
    assert sorted(q.segments["segment"].to_list()) == ["a", "b", "c", "d", "e"]
    assert q.summary["silhouette"] > 0.85 and q.summary["dbcv"] > 0.5
