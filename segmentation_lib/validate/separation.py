"""Internal quality: how well separated the segments are (silhouette, Calinski-Harabasz, Davies-Bouldin, DBCV).

Pairwise metrics run on seeded, stratified samples, so the cost does not grow with the square of
the number of customers.

>>> import numpy as np
>>> from sklearn.cluster import KMeans
>>> X = np.r_[np.zeros((50, 2)), np.full((50, 2), 10.0)] + np.random.default_rng(0).normal(size=(100, 2))
>>> q = internal_quality(X, KMeans(2, n_init=3, random_state=0).fit_predict(X))
>>> q.summary["silhouette"] > 0.8
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from segmentation_lib.segment.sampling import stratified_sample_indices
from segmentation_lib.validate.common import as_labels, as_matrix, finite_or_none, noise_mask



# --------------------------------------------------------------------------------------------
# internal quality
# --------------------------------------------------------------------------------------------
@dataclass
class QualityResult:
    """``summary``: silhouette, calinski_harabasz, davies_bouldin, noise_share, dbcv, ... (plain dict);
    ``segments``: per segment size, share, sampled and mean silhouette."""

    summary: dict[str, Any]
    segments: pl.DataFrame


def _dbcv(X: np.ndarray, labels: np.ndarray, metric: str, sample_size: int, random_state: int) -> tuple[float | None, str]:
    """HDBSCAN validity index on a stratified sample, guarded; returns (value or None, note)."""
    try:
        from hdbscan.validity import validity_index
    except ImportError:  # pragma: no cover - hdbscan is a dependency
        return None, "hdbscan not installed"
    idx = stratified_sample_indices(labels, sample_size, random_state)
    xs, ls = X[idx], labels[idx]
    noise = noise_mask(ls)
    clustered = ls[~noise]
    uniq, counts = np.unique(clustered, return_counts=True)
    if (counts >= 2).sum() < 2:
        return None, "needs at least two clusters with two or more points in the sample"
    codes = np.full(ls.shape[0], -1, dtype=np.int64)
    codes[~noise] = np.searchsorted(uniq, clustered)
    codes[np.isin(codes, np.flatnonzero(counts < 2))] = -1  # a one-point cluster breaks the index
    ls = codes
    try:
        with np.errstate(all="ignore"):
            value = validity_index(xs, ls, metric=metric)
    except (ValueError, ZeroDivisionError, FloatingPointError, IndexError) as exc:
        return None, f"validity index failed: {exc}"
    value = finite_or_none(value)
    return value, "ok" if value is not None else "validity index was NaN"


def internal_quality(
    X: Any,
    labels: Any,
    sample_size: int = 10_000,
    random_state: int = 0,
    hdbscan_model: Any = None,
    dbcv: bool | None = None,
    dbcv_sample_size: int = 2_000,
    full_size_limit: int = 2_000_000,
) -> QualityResult:
    """Silhouette (stratified sample, re-weighted to segment shares), Calinski-Harabasz,
    Davies-Bouldin, noise share (labels < 0) and the HDBSCAN validity index (DBCV).

    ``X`` is the matrix the segmentation was built on (for clusters ``segmenter.preprocessor_.transform``).
    DBCV is computed when ``dbcv`` is True, or (``dbcv=None``) when an ``hdbscan_model`` is given or
    labels contain noise. CH and DB are linear in n and use all non-noise rows up to
    ``full_size_limit`` (then a stratified sample).

    >>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 5]
    >>> internal_quality(X, np.r_[np.zeros(20), np.ones(20)]).summary["n_segments"]
    2
    """
    from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_samples

    X = as_matrix(X)
    labels = as_labels(labels, X.shape[0])
    n = X.shape[0]
    noise = noise_mask(labels)
    keep = ~noise
    Xc, lc = X[keep], labels[keep]
    uniq, counts = np.unique(lc, return_counts=True)
    k = len(uniq)
    summary: dict[str, Any] = {
        "n_customers": int(n),
        "n_segments": int(k),
        "noise_share": float(noise.mean()) if n else 0.0,
        "silhouette": None,
        "silhouette_sample_size": 0,
        "calinski_harabasz": None,
        "davies_bouldin": None,
        "dbcv": None,
        "dbcv_note": "not requested",
        "relative_validity": None,
        "note": "ok",
    }
    seg = pl.DataFrame(
        {
            "segment": pl.Series(uniq.tolist()),
            "size": counts.astype(np.int64),
            "share": counts / max(n, 1),
        }
    )
    if k < 2 or Xc.shape[0] <= k:
        summary["note"] = (
            "fewer than two segments (after removing noise): silhouette, Calinski-Harabasz and "
            "Davies-Bouldin are undefined"
        )
        seg = seg.with_columns(
            pl.lit(None, pl.Int64).alias("sampled"), pl.lit(None, pl.Float64).alias("silhouette")
        )
        return QualityResult(summary, seg)

    idx = stratified_sample_indices(lc, sample_size, random_state)
    s = silhouette_samples(Xc[idx], lc[idx])
    inv = np.searchsorted(uniq, lc[idx])
    sampled = np.bincount(inv, minlength=k)
    seg_mean = np.bincount(inv, weights=s, minlength=k) / np.maximum(sampled, 1)
    weights = counts / counts.sum()
    summary["silhouette"] = float(np.sum(weights * seg_mean))
    summary["silhouette_unweighted"] = float(s.mean())
    summary["silhouette_sample_size"] = int(idx.size)
    seg = seg.with_columns(pl.Series("sampled", sampled.astype(np.int64)), pl.Series("silhouette", seg_mean))

    if Xc.shape[0] > full_size_limit:
        j = stratified_sample_indices(lc, full_size_limit, random_state + 1)
        Xf, lf = Xc[j], lc[j]
    else:
        Xf, lf = Xc, lc
    summary["calinski_harabasz"] = finite_or_none(calinski_harabasz_score(Xf, lf))
    summary["calinski_harabasz_rows"] = int(Xf.shape[0])  # CH grows with the rows it is computed on
    summary["davies_bouldin"] = finite_or_none(davies_bouldin_score(Xf, lf))

    want_dbcv = dbcv if dbcv is not None else (hdbscan_model is not None or bool(noise.any()))
    if want_dbcv:
        metric = getattr(hdbscan_model, "metric", "euclidean") if hdbscan_model is not None else "euclidean"
        metric = metric if isinstance(metric, str) else "euclidean"
        summary["dbcv"], summary["dbcv_note"] = _dbcv(X, labels, metric, dbcv_sample_size, random_state)
    if hdbscan_model is not None:
        try:
            summary["relative_validity"] = finite_or_none(getattr(hdbscan_model, "relative_validity_", None))
        except Exception:  # hdbscan raises when gen_min_span_tree was False
            summary["relative_validity"] = None
    return QualityResult(summary, seg)
