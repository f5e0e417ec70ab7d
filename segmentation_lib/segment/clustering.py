"""Behavioural segmentation: one scikit-learn estimator over k-means, GMM, Ward and HDBSCAN.

``CustomerSegmenter`` follows scikit-learn conventions (keyword-only parameters stored unchanged
in ``__init__``, every check and all learning in ``fit``, fitted attributes end in ``_``; works
with ``clone``/``get_params``/``set_params`` and passes ``check_estimator`` with the exceptions
listed in tests/segment/test_estimators.py). Its fitted ``model_`` is a scikit-learn style
estimator for every algorithm (``KMeans``, ``MiniBatchKMeans``, ``GaussianMixture``,
:class:`NearestCentroidAssigner` for Ward, :class:`HDBSCANAssigner`) whose ``predict`` gives the
model labels of preprocessed rows (-1 = noise, HDBSCAN only).

How a fit works (every step is seeded by ``random_state``, so the same data and seed give the
same labels):

1. Preprocess (``preprocessing.make_preprocessor``: select, fill structural nulls such as the
   ``mean_days_between`` of one-time buyers, log1p, clip, scale), learned on the fit sample.
   Other nulls raise DataError naming the column (``persistence.score_customers`` reports such
   customers instead). BLAS/OpenMP run on ``n_threads`` threads (default 1, see ``thread_limit``).
2. Sample: when there are more than ``sample_size`` customers, the model is fitted on a sample
   stratified by deciles of ``order_by`` (``total_spend``), so big spenders are represented in
   proportion. Every customer is then assigned with ``predict``. Rows flagged by the boolean
   column ``fit_exclude`` (default ``is_outlier``, written by ``quality.outliers: flag``) are left
   out of everything learned in steps 1-4 (scaling, sample, k, model, label order and names), so
   a few wholesalers cannot pull the segments, and are then assigned like every other customer.
3. Number of segments: ``n_segments`` when given, else ``sweep_k`` over ``k_range`` and
   ``recommend_k`` (rule below). HDBSCAN picks its own number of clusters.
4. Label order (documented rule): segments are numbered by decreasing mean ``order_by``
   (``total_spend``) over the fitted customers (all but ``fit_exclude`` rows), ties by decreasing
   size, so segment 0 is the highest value segment in every rerun. Without that column, by
   decreasing size.

Algorithms: ``kmeans`` and ``minibatch_kmeans`` (predict = nearest centre); ``gmm`` (full
covariance, predict = most probable component); ``agglomerative`` (Ward linkage fitted on at most
``agglomerative_sample_size`` customers of the sample, because Ward needs memory quadratic in its
input; the segment centroids of that tree are kept and every customer, including the sample, is
assigned to the nearest centroid); ``hdbscan`` (the ``hdbscan`` package on the sample with
``core_dist_n_jobs=1``; ``min_cluster_size`` defaults to ``min_segment_share`` of the sample
(at least 10) and ``min_samples`` to 10; ``n_segments`` and the k sweep do not apply;
customers are assigned the label of their nearest neighbour in the fitted sample, which on 1M
customers is much faster than ``hdbscan.approximate_predict`` (see benchmarks/bench_clustering.py;
``hdbscan_assign="approximate_predict"`` uses the latter). A customer is flagged ``is_noise`` when
that neighbour is noise or lies farther away than the neighbour's core distance (outside every
dense neighbourhood); with ``noise="assign"`` it gets the segment of its nearest non-noise sample
point (its most likely segment), with ``noise="label"`` it gets -1.

Choosing k (``recommend_k``): keep k in ``[min_k, max_k]`` whose smallest segment holds at least
``min_segment_share`` of customers; among them take the k with the best mean rank over sampled
silhouette (higher is better), Calinski-Harabasz (higher) and Davies-Bouldin (lower); ties go to
the smaller k. The inertia elbow (the point farthest from the chord of the normalised inertia
curve) is reported alongside. When no k satisfies the share constraint, the k with the largest
smallest segment in range is taken and the reasons say so.

>>> import numpy as np, polars as pl
>>> rng = np.random.default_rng(0)
>>> centers = np.repeat([[1.0, 10.0], [50.0, 200.0], [400.0, 3000.0]], 100, axis=0)
>>> X = pl.DataFrame({"n_orders": centers[:, 0] * rng.uniform(0.9, 1.1, 300),
...                   "total_spend": centers[:, 1] * rng.uniform(0.9, 1.1, 300)})
>>> seg = CustomerSegmenter(features=("n_orders", "total_spend"), n_segments=3).fit(X)
>>> np.bincount(seg.labels_).tolist(), int(seg.labels_[-1])
([100, 100, 100], 0)
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Any, ContextManager, Mapping, Sequence

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.preprocessing import check_matrix, column_names, fit_selection, make_preprocessor, to_numpy
from segmentation_lib.segment.sampling import stratified_sample, subsample


ALGORITHMS = ("kmeans", "minibatch_kmeans", "gmm", "agglomerative", "hdbscan")
DEFAULT_FEATURES = ("days_since_last", "n_orders", "total_spend", "avg_order_value", "mean_days_between", "tenure_days")
SWEEP_COLUMNS = ("k", "inertia", "silhouette", "calinski_harabasz", "davies_bouldin", "bic", "min_segment_share")
#: rows preprocessed and assigned at a time: memory for the scaled features stays bounded (the
#: preprocessing and every model's predict work row by row, so the labels do not depend on it)
ASSIGN_CHUNK = 250_000


def thread_limit(n_threads: int | None) -> ContextManager[Any]:
    """Limit BLAS/OpenMP threads (None: library defaults).

    The matrices here are narrow (a handful of features), where threading gains little; on a busy
    2-core machine, OpenMP/BLAS spin-waiting made KMeans and GMM fits 10-50x slower, so the
    segmenter uses 1 thread by default (``n_threads``).
    """
    return threadpool_limits(limits=int(n_threads)) if n_threads else nullcontext()


# --------------------------------------------------------------------------------------------
# fitting helpers
# --------------------------------------------------------------------------------------------
def _centroids(Z: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.stack([np.bincount(labels, weights=Z[:, j], minlength=k) for j in range(Z.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None]


def _nearest_centroid(Z: np.ndarray, centers: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Index of the nearest centre for each row (chunked: memory is linear in rows)."""
    out = np.empty(Z.shape[0], dtype=np.int64)
    c2 = (centers**2).sum(axis=1)
    for s in range(0, Z.shape[0], chunk):
        block = Z[s:s + chunk]
        out[s:s + chunk] = np.argmin(c2[None, :] - 2.0 * block @ centers.T, axis=1)
    return out


def _ward_labels(Z: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """Ward tree cut at each k (labels 0..k-1). Memory is quadratic in ``len(Z)``: keep it small."""
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(Z, method="ward")
    return {k: fcluster(tree, t=k, criterion="maxclust").astype(np.int64) - 1 for k in ks}


def _fit_kmodel(algorithm: str, Z: np.ndarray, k: int, random_state: int, n_init: int) -> Any:
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, n_init=n_init, random_state=random_state).fit(Z)
    if algorithm == "minibatch_kmeans":
        return MiniBatchKMeans(n_clusters=k, n_init=n_init, random_state=random_state,
                               batch_size=4096).fit(Z)
    if algorithm == "gmm":
        return GaussianMixture(n_components=k, covariance_type="full", n_init=1, random_state=random_state,
                               reg_covar=1e-5).fit(Z)
    raise ConfigError(f"clustering.algorithm '{algorithm}' is unknown. Fix: use one of {list(ALGORITHMS)}.")


def _inertia(Z: np.ndarray, labels: np.ndarray, k: int) -> float:
    centers = _centroids(Z, labels, k)
    present = np.bincount(labels, minlength=k) > 0
    centers[~present] = 0.0
    return float(((Z - centers[labels]) ** 2).sum())


def silhouettes(Z: np.ndarray, label_sets: Sequence[np.ndarray], chunk: int = 1_000) -> list[float]:
    """Mean silhouette of several labellings of the same rows, computing the distances only once.

    Same definition as ``sklearn.metrics.silhouette_score`` (euclidean; 0 for a point alone in its
    cluster). Cost is quadratic in ``len(Z)``: call it on a sample. Memory is ``chunk x len(Z)``.

    >>> Z = np.array([[0.0], [0.1], [5.0], [5.2]])
    >>> round(silhouettes(Z, [np.array([0, 0, 1, 1])])[0], 4)
    0.9703
    """
    m = Z.shape[0]
    ks = [int(lab.max()) + 1 for lab in label_sets]
    offsets = np.concatenate([[0], np.cumsum(ks)])
    H = np.zeros((m, int(offsets[-1])))
    for j, lab in enumerate(label_sets):
        H[np.arange(m), offsets[j] + lab] = 1.0
    counts = H.sum(axis=0)
    sq = (Z**2).sum(axis=1)
    totals = np.zeros(len(label_sets))
    for s in range(0, m, chunk):
        block = Z[s:s + chunk]
        D = np.sqrt(np.maximum(sq[s:s + chunk, None] + sq[None, :] - 2.0 * block @ Z.T, 0.0))
        D[np.arange(block.shape[0]), np.arange(s, s + block.shape[0])] = 0.0
        sums = D @ H
        for j, lab in enumerate(label_sets):
            own = lab[s:s + chunk]
            part = sums[:, offsets[j]:offsets[j + 1]]
            cnt = counts[offsets[j]:offsets[j + 1]]
            rows = np.arange(own.size)
            n_own = cnt[own]
            a = part[rows, own] / np.maximum(n_own - 1.0, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                mean_other = part / cnt[None, :]
            mean_other[rows, own] = np.inf
            mean_other[:, cnt == 0] = np.inf
            b = mean_other.min(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                sil = np.where(n_own > 1, (b - a) / np.maximum(a, b), 0.0)
            totals[j] += np.nan_to_num(sil).sum()
    return [float(t / m) for t in totals]


def _pair_scores(Z: np.ndarray, labels: np.ndarray, metric_idx: np.ndarray) -> tuple[float, float]:
    """Calinski-Harabasz and Davies-Bouldin on the metric sample (NaN with fewer than 2 clusters)."""
    lm = labels[metric_idx]
    if np.unique(lm).size < 2:
        return float("nan"), float("nan")
    Zm = Z[metric_idx]
    return float(calinski_harabasz_score(Zm, lm)), float(davies_bouldin_score(Zm, lm))


def sweep_k(X: Any, k_range: Sequence[int] = (2, 10), algorithm: str = "kmeans", metric_sample_size: int = 10_000,
            random_state: int = 42, n_init: int = 4, agglomerative_sample_size: int = 5_000,
            n_threads: int | None = 1) -> pl.DataFrame:
    """Fit ``algorithm`` for every k in ``k_range`` (inclusive) on the preprocessed matrix ``X``.

    Returns one row per k: ``k, inertia`` (within-segment sum of squares on ``X``),
    ``silhouette`` (on a seeded sample of ``metric_sample_size`` rows), ``calinski_harabasz``,
    ``davies_bouldin`` (same sample), ``bic`` (gmm only, else null) and ``min_segment_share``.
    ``X`` must already be preprocessed (e.g. ``segmenter.preprocessor_.transform(df)``); pass a
    sample for large inputs (CustomerSegmenter does).

    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(c, 0.1, (50, 2)) for c in (0, 5, 10)])
    >>> sweep_k(X, (2, 4))["k"].to_list()
    [2, 3, 4]
    """
    if algorithm == "hdbscan":
        raise ConfigError("sweep_k does not apply to hdbscan, which chooses its number of clusters itself. "
                          "Fix: sweep with kmeans, gmm or agglomerative.")
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"clustering.algorithm '{algorithm}' is unknown. Fix: use one of {list(ALGORITHMS)}.")
    with thread_limit(n_threads):
        return _sweep(to_numpy(X), k_range, algorithm, metric_sample_size, random_state, n_init,
                      agglomerative_sample_size)


def _sweep(Z: np.ndarray, k_range: Sequence[int], algorithm: str, metric_sample_size: int, random_state: int,
           n_init: int, agglomerative_sample_size: int) -> pl.DataFrame:
    lo, hi = _check_k_range(k_range)
    hi = min(hi, Z.shape[0] - 1)
    if hi < lo:
        raise ConfigError(f"clustering.k_range {list(k_range)} needs more customers than the {Z.shape[0]} given. "
                          "Fix: lower k_range or provide more customers.")
    ks = list(range(lo, hi + 1))
    metric_idx = subsample(Z.shape[0], metric_sample_size, random_state)
    ward: dict[int, np.ndarray] = {}
    if algorithm == "agglomerative":
        a_idx = subsample(Z.shape[0], agglomerative_sample_size, random_state)
        cut = _ward_labels(Z[a_idx], ks)
        ward = {k: _nearest_centroid(Z, _centroids(Z[a_idx], cut[k], k)) for k in ks}
    rows, label_sets = [], []
    for k in ks:
        bic = None
        if algorithm == "agglomerative":
            labels = ward[k]
        else:
            model = _fit_kmodel(algorithm, Z, k, random_state, n_init)
            labels = model.predict(Z).astype(np.int64)
            if algorithm == "gmm":
                bic = float(model.bic(Z))
        ch, db = _pair_scores(Z, labels, metric_idx)
        label_sets.append(labels[metric_idx])
        counts = np.bincount(labels, minlength=k)
        rows.append({"k": k, "inertia": _inertia(Z, labels, k), "silhouette": float("nan"), "calinski_harabasz": ch,
                     "davies_bouldin": db, "bic": bic, "min_segment_share": float(counts.min() / Z.shape[0])})
    # silhouette of every k at once on the metric sample (distances computed once)
    for row, sil, lab in zip(rows, silhouettes(Z[metric_idx], label_sets), label_sets):
        row["silhouette"] = sil if np.unique(lab).size >= 2 else float("nan")
    return pl.DataFrame(rows, schema={"k": pl.Int64, "inertia": pl.Float64, "silhouette": pl.Float64,
                                      "calinski_harabasz": pl.Float64, "davies_bouldin": pl.Float64,
                                      "bic": pl.Float64, "min_segment_share": pl.Float64})


def elbow_k(ks: Sequence[int], inertia: Sequence[float]) -> int | None:
    """Elbow of a decreasing curve: the k farthest from the chord joining its first and last points.

    Both axes are scaled to [0, 1] first. None when there are fewer than 3 points or the curve
    is flat.

    >>> elbow_k([1, 2, 3, 4, 5, 6], [100, 60, 20, 15, 12, 10])
    3
    """
    x = np.asarray(ks, dtype=np.float64)
    y = np.asarray(inertia, dtype=np.float64)
    if x.size < 3 or not np.isfinite(y).all() or y.max() == y.min():
        return None
    xn = (x - x.min()) / (x.max() - x.min())
    yn = (y - y.min()) / (y.max() - y.min())
    # distance of each point below the chord from (0, yn[0]) to (1, yn[-1])
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    gap = chord - yn
    if gap.max() <= 0:
        return None
    return int(x[int(np.argmax(gap))])


def recommend_k(sweep: pl.DataFrame, min_k: int = 3, max_k: int = 8, min_segment_share: float = 0.02) -> dict[str, Any]:
    """Recommended number of segments from a ``sweep_k`` table, with the reasons in plain words.

    Rule: keep k in ``[min_k, max_k]`` whose smallest segment holds at least ``min_segment_share``
    of customers; among them take the best mean rank over silhouette (high), Calinski-Harabasz
    (high) and Davies-Bouldin (low); ties go to the smaller k. Returns ``{"k", "elbow", "reasons"}``.

    >>> t = pl.DataFrame({"k": [2, 3, 4], "inertia": [9.0, 3.0, 2.5], "silhouette": [0.5, 0.7, 0.4],
    ...                   "calinski_harabasz": [10.0, 30.0, 20.0], "davies_bouldin": [0.9, 0.5, 0.8],
    ...                   "bic": [None] * 3, "min_segment_share": [0.3, 0.2, 0.01]})
    >>> recommend_k(t, min_k=2, max_k=4)["k"]
    3
    """
    if min_k > max_k:
        raise ConfigError(f"clustering.min_k ({min_k}) is larger than clustering.max_k ({max_k}). Fix: swap them.")
    elbow = elbow_k(sweep["k"].to_list(), sweep["inertia"].to_list())
    in_range = sweep.filter(pl.col("k").is_between(min_k, max_k))
    if in_range.height == 0:
        raise ConfigError(
            f"No k of the sweep {sweep['k'].to_list()} lies within clustering.min_k={min_k} .. max_k={max_k}. "
            "Fix: widen clustering.k_range or the min_k/max_k constraints (or provide more customers)."
        )
    ok = in_range.filter(pl.col("min_segment_share") >= min_segment_share)
    notes = []
    if ok.height == 0:
        best = in_range.sort(["min_segment_share", "k"], descending=[True, False]).row(0, named=True)
        notes.append(f"no k between {min_k} and {max_k} keeps every segment at {min_segment_share:.0%} of customers "
                     f"or more, so k={best['k']} is taken because its smallest segment is the largest "
                     f"({best['min_segment_share']:.1%})")
        k = int(best["k"])
    else:
        ranked = ok.with_columns(
            (pl.col("silhouette").fill_nan(None).rank("average", descending=True)
             + pl.col("calinski_harabasz").fill_nan(None).rank("average", descending=True)
             + pl.col("davies_bouldin").fill_nan(None).rank("average")).truediv(3).alias("_rank")
        ).sort(["_rank", "k"], nulls_last=True)
        best = ranked.row(0, named=True)
        k = int(best["k"])
        dropped = in_range.height - ok.height
        notes.append(f"k={k} has the best average rank over silhouette ({best['silhouette']:.3f}), "
                     f"Calinski-Harabasz ({best['calinski_harabasz']:.0f}, on the metric sample) and Davies-Bouldin "
                     f"({best['davies_bouldin']:.3f}) among k={min_k}..{max_k}")
        if dropped:
            notes.append(f"{dropped} k value(s) in range were excluded because a segment would hold fewer than "
                         f"{min_segment_share:.0%} of customers")
        notes.append(f"its smallest segment holds {best['min_segment_share']:.1%} of customers")
    if elbow is not None:
        notes.append(f"the inertia elbow is at k={elbow}" + (" (agrees)" if elbow == k else ""))
    reasons = "; ".join(notes)
    return {"k": k, "elbow": elbow, "reasons": reasons[0].upper() + reasons[1:] + "."}


def _check_k_range(k_range: Sequence[int]) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in k_range)
    except (TypeError, ValueError):
        raise ConfigError(f"clustering.k_range must be two integers [low, high], got {k_range!r}. "
                          "Fix: use e.g. [2, 10].") from None
    if lo < 2 or hi < lo:
        raise ConfigError(f"clustering.k_range {list(k_range)} must satisfy 2 <= low <= high. Fix: use e.g. [2, 10].")
    return lo, hi


# --------------------------------------------------------------------------------------------
# fitted models for Ward and HDBSCAN (CustomerSegmenter.model_)
# --------------------------------------------------------------------------------------------
class NearestCentroidAssigner(ClusterMixin, BaseEstimator):
    """Ward clustering that scales: a Ward tree on a sample, then every row goes to the nearest centroid.

    ``fit`` builds the Ward tree on at most ``sample_size`` rows of ``X`` (seeded by
    ``random_state``; Ward needs memory quadratic in its input), cuts it at ``n_clusters`` and keeps
    the centroids of those clusters (``centers_``); ``predict`` assigns each row to the nearest centre
    (euclidean). Fitted: ``centers_``, ``n_fitted_`` (rows in the tree), ``labels_`` (``predict`` of
    the training rows), ``n_features_in_``.

    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> a = NearestCentroidAssigner(n_clusters=2).fit(X)
    >>> a.labels_.tolist(), a.predict([[4.0, 4.0], [0.5, 0.0]]).tolist()
    ([1, 1, 0, 0], [0, 1])
    """

    def __init__(self, *, n_clusters: int = 8, sample_size: int = 5_000, random_state: int | None = 42):
        self.n_clusters = n_clusters
        self.sample_size = sample_size
        self.random_state = random_state

    def fit(self, X: Any, y: Any = None) -> "NearestCentroidAssigner":
        """Cut a Ward tree of (a sample of) ``X`` at ``n_clusters`` and keep the cluster centroids."""
        Z = check_matrix(X, self, reset=True)
        k = self.n_clusters
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ConfigError(f"n_clusters must be a positive integer, got {k!r}. Fix: use e.g. 5.")
        if not isinstance(self.sample_size, (int, np.integer)) or self.sample_size < 2:
            raise ConfigError(f"sample_size must be an integer >= 2, got {self.sample_size!r}. Fix: use e.g. 5000.")
        if Z.shape[0] < 2:
            raise DataError(f"Ward clustering needs at least 2 rows, got n_samples={Z.shape[0]}. Fix: provide more data.")
        idx = subsample(Z.shape[0], int(self.sample_size), self.random_state)
        cut = _ward_labels(Z[idx], [int(k)])[int(k)]
        self.centers_ = _centroids(Z[idx], cut, int(k))
        self.n_fitted_ = int(idx.size)
        self.labels_ = _nearest_centroid(Z, self.centers_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Index of the nearest centre of every row (int64)."""
        check_is_fitted(self, "centers_")
        return _nearest_centroid(check_matrix(X, self, reset=False), self.centers_)


class HDBSCANAssigner(ClusterMixin, BaseEstimator):
    """HDBSCAN (the ``hdbscan`` package) on a sample, with a fast nearest-neighbour ``predict``.

    ``fit`` runs ``hdbscan.HDBSCAN(min_cluster_size, min_samples, core_dist_n_jobs=1)`` on ``X``
    (``min_samples=None``: ``min(10, min_cluster_size)``) and keeps the fitted sample (in the
    nearest-neighbour index ``nn_``), its ``labels_`` (-1 = noise) and ``core_distances_`` (distance
    of each sample point to its ``min_samples``-th neighbour, itself included as in the hdbscan
    package). ``predict`` gives a row the label of its nearest sample point, or -1 (noise) when
    that point is noise or lies farther away than its core distance (outside every dense
    neighbourhood); ``assign="approximate_predict"`` uses ``hdbscan.approximate_predict`` instead.
    ``nearest_cluster`` gives the label of the nearest non-noise sample point (a noise row's most
    likely cluster). Fitted: ``labels_``, ``core_distances_``, ``n_clusters_``, ``nn_``,
    ``nn_core_`` / ``core_labels_`` (the non-noise sample points), ``hdbscan_`` (the fitted
    HDBSCAN for ``approximate_predict``, else None), ``n_features_in_``.

    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (30, 2))])
    >>> a = HDBSCANAssigner(min_cluster_size=10).fit(X)
    >>> a.n_clusters_, a.predict([[0.0, 0.05], [50.0, 50.0]]).tolist()
    (2, [0, -1])
    >>> a.nearest_cluster([[50.0, 50.0]]).tolist()
    [1]
    """

    def __init__(self, *, min_cluster_size: int = 10, min_samples: int | None = None, assign: str = "nearest"):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.assign = assign

    def fit(self, X: Any, y: Any = None) -> "HDBSCANAssigner":
        """Cluster ``X`` with HDBSCAN and index the fitted sample for ``predict``."""
        import hdbscan

        Z = check_matrix(X, self, reset=True)
        n = Z.shape[0]
        mcs = self.min_cluster_size
        if self.assign not in ("nearest", "approximate_predict"):
            raise ConfigError(f"hdbscan_assign='{self.assign}' is unknown. Fix: use 'nearest' or 'approximate_predict'.")
        if not isinstance(mcs, (int, np.integer)) or mcs < 2:
            raise ConfigError(f"hdbscan_min_cluster_size must be an integer >= 2, got {mcs!r}. Fix: use e.g. 50.")
        if self.min_samples is not None and (not isinstance(self.min_samples, (int, np.integer)) or self.min_samples < 1):
            raise ConfigError(f"hdbscan_min_samples must be a positive integer or null, got {self.min_samples!r}. "
                              "Fix: use e.g. 10.")
        if mcs >= n:
            raise ConfigError(f"hdbscan_min_cluster_size={mcs} is not smaller than the {n:,} customers fitted "
                              f"(n_samples={n}). Fix: lower it or provide more customers.")
        ms = int(self.min_samples or min(10, mcs))
        model = hdbscan.HDBSCAN(min_cluster_size=int(mcs), min_samples=ms, core_dist_n_jobs=1,
                                prediction_data=self.assign == "approximate_predict")
        model.fit(Z if Z.flags.writeable else Z.copy())  # the hdbscan package cannot read read-only memory
        labels = model.labels_.astype(np.int64)
        keep = labels >= 0
        self.labels_ = labels
        self.n_clusters_ = int(labels.max()) + 1
        self.hdbscan_ = model if self.assign == "approximate_predict" else None
        self.nn_ = NearestNeighbors(n_neighbors=1).fit(Z)
        self.core_distances_ = self.nn_.kneighbors(Z, n_neighbors=int(min(ms + 1, n)), return_distance=True)[0][:, -1]
        self.nn_core_ = NearestNeighbors(n_neighbors=1).fit(Z[keep]) if keep.any() else None
        self.core_labels_ = labels[keep]
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Cluster of every row, -1 for noise (see the class docstring)."""
        check_is_fitted(self, "labels_")
        Z = check_matrix(X, self, reset=False)
        if self.hdbscan_ is not None:
            import hdbscan

            return hdbscan.approximate_predict(self.hdbscan_, Z)[0].astype(np.int64)
        dist, nn = self.nn_.kneighbors(Z, return_distance=True)
        raw = self.labels_[nn[:, 0]]
        return np.where(dist[:, 0] > self.core_distances_[nn[:, 0]], -1, raw)

    def nearest_cluster(self, X: Any) -> np.ndarray:
        """Label of the nearest non-noise sample point of every row (-1 when HDBSCAN found no cluster)."""
        check_is_fitted(self, "labels_")
        Z = check_matrix(X, self, reset=False)
        if self.nn_core_ is None:
            return np.full(Z.shape[0], -1, dtype=np.int64)
        return self.core_labels_[self.nn_core_.kneighbors(Z, return_distance=False)[:, 0]]


def _model_from_dict(m: Mapping[str, Any]) -> BaseEstimator:
    """The assigner equivalent to a ``model_`` dict of models saved before the assigner classes existed."""
    if m.get("kind") == "ward_centroids":
        model = NearestCentroidAssigner(n_clusters=len(m["centers"]))
        model.centers_, model.n_fitted_ = m["centers"], m.get("n_fitted")
        model.n_features_in_ = int(m["centers"].shape[1])
        return model
    model = HDBSCANAssigner(assign="approximate_predict" if m.get("hdbscan") is not None else "nearest")
    model.hdbscan_, model.nn_, model.labels_ = m.get("hdbscan"), m["nn_all"], m["labels"]
    model.core_distances_, model.nn_core_, model.core_labels_ = m["core_distances"], m["nn_core"], m["core_labels"]
    model.n_clusters_ = int(m["labels"].max()) + 1
    model.n_features_in_ = int(m["nn_all"].n_features_in_)
    return model


# --------------------------------------------------------------------------------------------
# the estimator
# --------------------------------------------------------------------------------------------
class CustomerSegmenter(ClusterMixin, BaseEstimator):
    """Segment customers from a feature table; see the module docstring for the full behaviour.

    Parameters are keyword-only and checked in ``fit`` (ConfigError, a ValueError). ``features``
    names the columns to cluster on; ``None`` takes every column of ``X`` but ``fit_exclude``
    (``x0, x1, ...`` for a numpy array, whose columns must otherwise be the ``features`` in order).

    Fitted attributes: ``preprocessor_``, ``model_`` (an estimator whose ``predict`` gives the raw
    model labels of preprocessed rows, see the module docstring), ``n_segments_``, ``labels_``
    (ordered), ``is_noise_``, ``noise_share_`` (0 unless hdbscan), ``sweep_`` (pl.DataFrame or
    None), ``recommendation_`` ({"k", "elbow", "reasons"}), ``segment_names_`` (dict id -> name),
    ``segment_shares_``, ``label_order_`` (raw model label -> segment id), ``feature_names_in_``
    (the features used), ``n_features_in_``, ``sample_index_`` (rows used to fit),
    ``n_excluded_from_fit_`` (rows flagged by ``fit_exclude``).

    ``encodings`` (``clustering.encodings``) declares how text features become numbers
    (segmentation_lib.features.encoding); ``preprocessor_[0].get_feature_names_out()`` then lists
    the encoded columns the model clusters on.
    """

    #: models saved before text encodings existed unpickle without it; ``get_params`` then reads this
    encodings: Mapping[str, Any] | None = None

    #: models saved before ``fit_exclude`` existed unpickle without it; ``get_params`` then reads this
    fit_exclude: str | None = "is_outlier"

    def __init__(self, *, algorithm: str = "kmeans", n_segments: int | None = None,
                 k_range: Sequence[int] = (2, 10), min_k: int = 3, max_k: int = 8,
                 min_segment_share: float = 0.02, features: Sequence[str] | None = DEFAULT_FEATURES,
                 log_features: str | Sequence[str] | None = "auto", clip_quantile: float | None = 0.999,
                 scaler: str = "standard", sample_size: int = 50_000, metric_sample_size: int = 10_000,
                 random_state: int = 42, noise: str = "assign", hdbscan_min_cluster_size: int | None = None,
                 hdbscan_min_samples: int | None = None, hdbscan_assign: str = "nearest",
                 agglomerative_sample_size: int = 5_000, n_init: int = 4, order_by: str = "total_spend",
                 names: Mapping[Any, str] | None = None, fill_null: str | None = "auto", n_threads: int | None = 1,
                 fit_exclude: str | None = "is_outlier", encodings: Mapping[str, Any] | None = None):
        self.algorithm = algorithm
        self.n_segments = n_segments
        self.k_range = k_range
        self.min_k = min_k
        self.max_k = max_k
        self.min_segment_share = min_segment_share
        self.features = features
        self.log_features = log_features
        self.clip_quantile = clip_quantile
        self.scaler = scaler
        self.sample_size = sample_size
        self.metric_sample_size = metric_sample_size
        self.random_state = random_state
        self.noise = noise
        self.hdbscan_min_cluster_size = hdbscan_min_cluster_size
        self.hdbscan_min_samples = hdbscan_min_samples
        self.hdbscan_assign = hdbscan_assign
        self.agglomerative_sample_size = agglomerative_sample_size
        self.n_init = n_init
        self.order_by = order_by
        self.names = names
        self.fill_null = fill_null
        self.n_threads = n_threads
        self.fit_exclude = fit_exclude
        self.encodings = encodings

    # ---- parameter checks -------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"clustering.algorithm '{self.algorithm}' is unknown. Fix: use one of {list(ALGORITHMS)}.")
        if self.features is not None and (isinstance(self.features, str) or len(list(self.features)) == 0):
            raise ConfigError("clustering.features must be a non-empty list of column names (or null for every "
                              f"column), got {self.features!r}. Fix: e.g. [days_since_last, n_orders, total_spend].")
        _check_k_range(self.k_range)
        if not (isinstance(self.min_k, (int, np.integer)) and isinstance(self.max_k, (int, np.integer))
                and 1 <= self.min_k <= self.max_k):
            raise ConfigError(f"clustering.min_k={self.min_k} and max_k={self.max_k} must be integers with "
                              "1 <= min_k <= max_k. Fix: use e.g. min_k 3, max_k 8.")
        if self.n_segments is not None and (not isinstance(self.n_segments, (int, np.integer)) or self.n_segments < 2):
            raise ConfigError(f"clustering.k must be an integer >= 2 or null, got {self.n_segments!r}. "
                              "Fix: use e.g. 5, or null to recommend k from the sweep.")
        if not 0 <= float(self.min_segment_share) < 1:
            raise ConfigError(f"clustering.min_segment_share must be in [0, 1), got {self.min_segment_share}. "
                              "Fix: use e.g. 0.02.")
        for name in ("sample_size", "metric_sample_size", "agglomerative_sample_size", "n_init"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"clustering.{name} must be a positive integer, got {v!r}. Fix: use the default.")
        if self.noise not in ("assign", "label"):
            raise ConfigError(f"clustering noise='{self.noise}' is unknown. Fix: use 'assign' (noise customers get "
                              "their most likely segment, flagged is_noise) or 'label' (segment -1).")
        if self.fit_exclude is not None and not isinstance(self.fit_exclude, str):
            raise ConfigError(f"clustering.fit_exclude must be a column name or null, got {self.fit_exclude!r}. "
                              "Fix: use is_outlier (the flag written by quality.outliers: flag) or null.")
        if self.hdbscan_assign not in ("nearest", "approximate_predict"):
            raise ConfigError(f"hdbscan_assign='{self.hdbscan_assign}' is unknown. "
                              "Fix: use 'nearest' or 'approximate_predict'.")

    # ---- fit ----------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "CustomerSegmenter":
        """Learn preprocessing, k and the model on a sample of ``X``; label every customer."""
        self._check_params()
        with thread_limit(self.n_threads):
            return self._fit(X)

    def _fit(self, X: Any) -> "CustomerSegmenter":
        if self.features is None:
            features = column_names(X, exclude=[self.fit_exclude] if self.fit_exclude else [])
        else:
            features = list(self.features)
        self.preprocessor_ = make_preprocessor(features, self.log_features, self.clip_quantile, self.scaler,
                                               self.fill_null, self.encodings)
        raw = fit_selection(self.preprocessor_, X)  # selection + structural fills + text encodings, checked finite
        selected = [str(c) for c in self.preprocessor_[0].get_feature_names_out()]  # = features unless encoded
        n = raw.shape[0]
        if n < 2:
            raise DataError(f"Feature table has {n} customer(s) (n_samples={n}); clustering needs at least 2. "
                            "Fix: provide more data.")
        order_values = self._order_values(X, raw, selected)
        fit_rows = np.flatnonzero(~self._excluded_rows(X, n))
        if fit_rows.size < 2:
            raise DataError(f"Only {fit_rows.size} of {n:,} customers are left to fit the clustering after leaving out "
                            f"the rows flagged '{self.fit_exclude}'. Fix: raise quality.outlier_quantile (fewer customers "
                            "flagged), set quality.outliers: keep, or set clustering.fit_exclude: null.")
        strata = order_values[fit_rows] if order_values is not None else None
        idx = fit_rows[stratified_sample(fit_rows.size, int(self.sample_size), strata, random_state=self.random_state)]
        self.n_excluded_from_fit_ = int(n - fit_rows.size)
        self.preprocessor_[1:].fit(raw[idx])  # log1p, clipping and scaling learned on the sample
        Zs = self.preprocessor_[1:].transform(raw[idx])  # row-wise: the same rows as transforming all
        self.sample_index_ = idx
        self.sweep_ = None
        if self.algorithm == "hdbscan":
            self._fit_hdbscan(Zs)
        else:
            k = self._choose_k(Zs)
            self._fit_k(Zs, k)
        raw_labels, is_noise = self._assign_chunked(raw)
        self.label_order_ = self._order_labels(raw_labels[fit_rows],
                                               order_values[fit_rows] if order_values is not None else None)
        self.labels_ = self._map(raw_labels, is_noise)
        self.is_noise_ = is_noise
        self.noise_share_ = float(is_noise.mean())
        self.feature_names_in_ = np.array(features, dtype=object)
        self.n_features_in_ = len(features)
        counts = np.bincount(self.labels_[self.labels_ >= 0], minlength=self.n_segments_)
        self.segment_shares_ = {i: float(c / n) for i, c in enumerate(counts)}
        if self.algorithm == "hdbscan":
            self.recommendation_ = {
                "k": self.n_segments_, "elbow": None,
                "reasons": (f"HDBSCAN found {self.n_segments_} clusters with min_cluster_size={self.min_cluster_size_} "
                            f"on a sample of {len(idx):,} customers; {self.noise_share_:.1%} of customers are noise"
                            + (" (assigned to their nearest segment and flagged is_noise)." if self.noise == "assign"
                               else " (segment -1)."))}
        if fit_rows.size == n:  # no row left out: no copy of the matrix
            self.segment_names_ = self._names(raw, self.labels_, selected)
        else:
            self.segment_names_ = self._names(raw[fit_rows], self.labels_[fit_rows], selected)
        return self

    def _excluded_rows(self, X: Any, n: int) -> np.ndarray:
        """True for rows whose ``fit_exclude`` column is True (all False without that column or for arrays)."""
        col = self.fit_exclude
        if col and isinstance(X, (pl.DataFrame, pl.LazyFrame)):
            df = X.collect() if isinstance(X, pl.LazyFrame) else X
            if col in df.columns:
                if df.schema[col] != pl.Boolean:
                    raise DataError(f"Feature table: column '{col}' (clustering.fit_exclude) has type "
                                    f"{df.schema[col]}, not Boolean. Fix: pass a true/false flag or set "
                                    "clustering.fit_exclude: null.")
                return df[col].fill_null(False).to_numpy().astype(bool)
        return np.zeros(n, dtype=bool)

    def _order_values(self, X: Any, raw: np.ndarray, features: list[str]) -> np.ndarray | None:
        if self.order_by in features:
            return raw[:, features.index(self.order_by)]
        if isinstance(X, (pl.DataFrame, pl.LazyFrame)):
            df = X.collect() if isinstance(X, pl.LazyFrame) else X
            if self.order_by in df.columns and df.schema[self.order_by].is_numeric():
                vals = df[self.order_by].cast(pl.Float64).fill_null(float("nan")).to_numpy()
                return vals if np.isfinite(vals).all() else None
        return None

    def _choose_k(self, Zs: np.ndarray) -> int:
        n = Zs.shape[0]
        if self.n_segments is not None:
            k = int(self.n_segments)
            if k >= n:
                raise ConfigError(f"clustering.k={k} is not smaller than the number of customers fitted ({n:,}). "
                                  "Fix: choose fewer segments or provide more customers.")
            self.recommendation_ = {"k": k, "elbow": None, "reasons": f"k={k} was set in the configuration."}
            return k
        self.sweep_ = _sweep(Zs, self.k_range, self.algorithm, int(self.metric_sample_size), self.random_state,
                             int(self.n_init), int(self.agglomerative_sample_size))
        self.recommendation_ = recommend_k(self.sweep_, self.min_k, self.max_k, self.min_segment_share)
        return int(self.recommendation_["k"])

    def _fit_k(self, Zs: np.ndarray, k: int) -> None:
        if self.algorithm == "agglomerative":
            self.model_ = NearestCentroidAssigner(n_clusters=k, sample_size=int(self.agglomerative_sample_size),
                                                  random_state=self.random_state).fit(Zs)
        else:
            self.model_ = _fit_kmodel(self.algorithm, Zs, k, self.random_state, int(self.n_init))
        self.n_segments_ = k

    def _fit_hdbscan(self, Zs: np.ndarray) -> None:
        n = Zs.shape[0]
        mcs = self.hdbscan_min_cluster_size or max(10, int(round(float(self.min_segment_share) * n)))
        if mcs >= n:
            raise ConfigError(f"hdbscan_min_cluster_size={mcs} is not smaller than the {n:,} customers fitted "
                              f"(n_samples={n}). Fix: lower it or provide more customers.")
        ms = self.hdbscan_min_samples or min(10, mcs)
        model = HDBSCANAssigner(min_cluster_size=int(mcs), min_samples=int(ms), assign=self.hdbscan_assign).fit(Zs)
        if model.n_clusters_ < 1:
            raise DataError(f"HDBSCAN found no cluster in {n:,} customers (all noise) with min_cluster_size={mcs}. "
                            "Fix: lower hdbscan_min_cluster_size / min_segment_share, or use algorithm kmeans.")
        self.min_cluster_size_ = int(mcs)
        self.n_segments_ = model.n_clusters_
        self.sample_noise_share_ = float((model.labels_ < 0).mean())
        self.model_ = model

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; models saved before the assigner classes kept ``model_`` as a dict: convert it."""
        super().__setstate__(state)
        if isinstance(self.__dict__.get("model_"), dict):
            self.model_ = _model_from_dict(self.model_)

    # ---- prediction ----------------------------------------------------------------------------
    def _predict_raw(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model labels (before ordering) and the noise flag for preprocessed rows ``Z``.

        Rows the model calls noise (-1, HDBSCAN only) get their nearest cluster and are flagged.
        """
        raw = np.asarray(self.model_.predict(Z), dtype=np.int64)
        is_noise = raw < 0
        if is_noise.any():
            raw = raw.copy()
            raw[is_noise] = self.model_.nearest_cluster(Z[is_noise])
        return raw, is_noise

    def _assign_chunked(self, raw: np.ndarray, chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``_predict_raw`` of the preprocessed rows of ``raw`` (selected, filled), ``chunk`` rows at a
        time (default ``ASSIGN_CHUNK``), so the scaled copies never hold more than one chunk.

        The labels equal those of preprocessing and predicting all rows at once (both are row-wise).
        """
        step = int(chunk or ASSIGN_CHUNK)
        n = raw.shape[0]
        labels = np.empty(n, dtype=np.int64)
        noise = np.empty(n, dtype=bool)
        for s in range(0, n, step):
            labels[s:s + step], noise[s:s + step] = self._predict_raw(self.preprocessor_[1:].transform(raw[s:s + step]))
        return labels, noise

    def _order_labels(self, raw: np.ndarray, order_values: np.ndarray | None) -> np.ndarray:
        k = self.n_segments_
        counts = np.bincount(raw, minlength=k).astype(np.float64)
        if order_values is None:
            means = np.zeros(k)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.bincount(raw, weights=order_values, minlength=k) / counts
            means = np.nan_to_num(means, nan=-np.inf)
        order = np.lexsort((np.arange(k), -counts, -means))  # mean desc, size desc, raw label
        mapping = np.empty(k, dtype=np.int64)
        mapping[order] = np.arange(k)
        return mapping

    def _map(self, raw: np.ndarray, is_noise: np.ndarray) -> np.ndarray:
        labels = self.label_order_[raw]
        if self.noise == "label":
            labels = np.where(is_noise, -1, labels)
        return labels

    def predict_with_noise(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Segment ids and the ``is_noise`` flag (always False except for hdbscan) for every row."""
        check_is_fitted(self, "label_order_")
        return self.predict_selected(self.preprocessor_[0].transform(X))

    def predict_selected(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like ``predict_with_noise`` for a float matrix already selected and filled (finite)."""
        check_is_fitted(self, "label_order_")
        with thread_limit(self.n_threads):
            raw_labels, is_noise = self._assign_chunked(raw)
        return self._map(raw_labels, is_noise), is_noise

    def predict(self, X: Any) -> np.ndarray:
        """Segment id of every row of ``X`` (a feature table with the training features)."""
        return self.predict_with_noise(X)[0]

    def fit_predict(self, X: Any, y: Any = None, **kwargs: Any) -> np.ndarray:
        """Fit on ``X`` and return ``labels_``."""
        return self.fit(X).labels_

    # ---- names ---------------------------------------------------------------------------------
    def _names(self, raw: np.ndarray, labels: np.ndarray, features: list[str]) -> dict[int, str]:
        from segmentation_lib.segment.profiles import name_segments, segment_profiles

        frame = pl.DataFrame(raw, schema=features, orient="row") if raw.size else pl.DataFrame(schema=features)
        keep = labels >= 0
        profiles = segment_profiles(frame.filter(pl.Series(keep)), labels[keep])
        names = name_segments(profiles, overrides=self.names)
        return {i: names.get(i, f"Segment {i}") for i in range(self.n_segments_)}


#: configuration keys (``clustering:`` section) that are not CustomerSegmenter parameters
_CONFIG_ONLY = ("surrogate_depth",)


def segmenter_from_config(section: Mapping[str, Any], random_state: int | None = None) -> CustomerSegmenter:
    """A CustomerSegmenter from the ``clustering:`` section of a run configuration.

    ``k`` maps to ``n_segments``; ``surrogate_depth`` is for SurrogateRules and ignored here;
    ``random_state`` (e.g. ``run.seed``) wins over a ``random_state`` key.

    >>> segmenter_from_config({"algorithm": "gmm", "k": 4, "k_range": [2, 6], "names": {}}).n_segments
    4
    """
    params = {k: v for k, v in dict(section).items() if k not in _CONFIG_ONLY}
    if "k" in params:
        params["n_segments"] = params.pop("k")
    for key in ("k_range", "features"):
        if isinstance(params.get(key), list):
            params[key] = tuple(params[key])
    if isinstance(params.get("log_features"), list):
        params["log_features"] = tuple(params["log_features"])
    if params.get("names") == {}:
        params["names"] = None
    if random_state is not None:
        params["random_state"] = int(random_state)
    known = CustomerSegmenter._get_param_names()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"clustering: unknown setting(s) {unknown}. Fix: use only {sorted(known + ['k'])}.")
    return CustomerSegmenter(**params)
