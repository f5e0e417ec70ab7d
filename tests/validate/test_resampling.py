"""segmentation_lib.validate.resampling: stability under bootstrap / subsample / seed refits, and the
stability and silhouette wording."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from segmentation_lib.errors import ConfigError
from segmentation_lib.validate.resampling import silhouette_reading, stability, stability_word


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


def test_stability_estimator_without_predict(blobs):
    from sklearn.cluster import AgglomerativeClustering

    X, _ = blobs
    s = stability(AgglomerativeClustering(5), X, n_resamples=2, n_seeds=1, sample_size=600)
    assert s.summary["ari_median"] > 0.9 and s.summary["sample_size"] == 600


def test_stability_and_silhouette_wording():
    assert [stability_word(v) for v in (0.75, 0.74, 0.6, 0.59, None)] == ["stable", "moderate", "moderate", "doubtful", None]
    assert stability_word(0.7, stable=0.7, doubtful=0.5) == "stable"
    assert [silhouette_reading(v) for v in (0.7, 0.69, 0.5, 0.25, 0.249, float("nan"))] == [
        "strong", "reasonable", "reasonable", "weak", "no substantial", None]
