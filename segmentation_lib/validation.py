"""Segment validation: internal quality, stability, predictive validity, migration, actionability.

Every function works for any segmentation the kit produces (RFM maps, rules, clusters) and
depends on the rest of the kit only through small arguments: arrays, polars tables, an
sklearn-compatible estimator or a ``fit_predict(data, seed) -> labels`` callable, and a
``feature_fn(transactions, as_of) -> features`` callable. Results are polars tables plus a
plain ``summary`` dict; :func:`headline_metrics` folds them into one JSON-safe dict for
``metrics.json``. Work is bounded: pairwise metrics and refits run on seeded samples.

>>> import numpy as np
>>> from sklearn.cluster import KMeans
>>> X = np.r_[np.zeros((50, 2)), np.full((50, 2), 10.0)] + np.random.default_rng(0).normal(size=(100, 2))
>>> q = internal_quality(X, KMeans(2, n_init=3, random_state=0).fit_predict(X))
>>> q.summary["silhouette"] > 0.8
True
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence, Union

import numpy as np
import polars as pl

from .errors import ConfigError, DataError

__all__ = [
    "DEFAULT_AT_RISK",
    "QualityResult",
    "StabilityResult",
    "HoldoutSplit",
    "PredictiveResult",
    "MigrationResult",
    "TruthResult",
    "stratified_sample_indices",
    "internal_quality",
    "stability",
    "stability_reading",
    "stability_word",
    "silhouette_reading",
    "STABLE_THRESHOLD",
    "DOUBTFUL_THRESHOLD",
    "MIN_SEGMENT_RECALL",
    "SILHOUETTE_READINGS",
    "split_calibration_holdout",
    "holdout_outcomes",
    "predictive_validity",
    "migration",
    "actionability_checks",
    "ground_truth_agreement",
    "headline_metrics",
]

#: segment names (case-insensitive) counted as "at risk or lost" by :func:`migration`
DEFAULT_AT_RISK: tuple[str, ...] = (
    "At Risk",
    "Cannot Lose Them",
    "Can't Lose Them",
    "Cant Lose Them",
    "Hibernating",
    "Lost",
    "Lost Customers",
    "Churned",
    "Lapsed",
)

#: Stability cut-offs (defaults of ``validation.stable_threshold`` / ``doubtful_threshold``), after
#: Hennig (2007, "Cluster-wise assessment of cluster stability"; R ``fpc::clusterboot``): a segment
#: whose mean Jaccard over refits is >= 0.75 is "stable", 0.6 to 0.75 "moderate" (a pattern, but
#: its boundary moves), below 0.6 "doubtful" (Hennig: <= 0.5 means it dissolves). The report reads
#: the median refit ARI of the whole segmentation with the same cut-offs (:func:`stability_word`),
#: so the per-segment table and the summary sentence never disagree in wording.
STABLE_THRESHOLD = 0.75
DOUBTFUL_THRESHOLD = 0.6

#: Per-segment recall of the surrogate rules (share of a segment's customers the rules put back in
#: it) below which ``identifiable`` warns: under one half, the rules give most of the segment to
#: other segments, so the exported SQL cannot target it.
MIN_SEGMENT_RECALL = 0.5

#: Silhouette wording, after Kaufman & Rousseeuw (1990, "Finding Groups in Data"): the lowest
#: bound a value reaches names its structure; below 0.25 "no substantial structure".
SILHOUETTE_READINGS: tuple[tuple[float, str], ...] = ((0.7, "strong"), (0.5, "reasonable"), (0.25, "weak"))

FitPredict = Callable[[Any, int], np.ndarray]
Assignments = Union[pl.DataFrame, Callable[[pl.DataFrame], pl.DataFrame]]


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def _as_matrix(X: Any, name: str = "X") -> np.ndarray:
    """Float64 2-D array from a numpy array, polars or pandas frame (numeric columns)."""
    if isinstance(X, pl.LazyFrame):
        X = X.collect()
    if isinstance(X, pl.DataFrame):
        num = X.select(pl.selectors.numeric())
        if num.width == 0:
            raise DataError(f"{name}: no numeric columns to measure distances on. Fix: pass the scaled feature matrix.")
        X = num.to_numpy()
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D feature matrix, got shape {arr.shape}. Fix: pass rows = customers.")
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise DataError(
            f"{name}: row {bad} holds NaN or infinite values. Fix: impute or drop such customers "
            f"(or pass the preprocessed matrix, e.g. segmenter.preprocessor_.transform(features))."
        )
    return arr


def _as_labels(labels: Any, n: int | None = None, name: str = "labels") -> np.ndarray:
    """1-D label array; numeric labels stay numeric (negative = noise), others become strings with
    nulls mapped to -1 codes via :func:`_noise_mask` (null segment = noise)."""
    if isinstance(labels, pl.DataFrame):
        labels = labels.to_series(labels.width - 1)
    if not isinstance(labels, pl.Series):
        raw = np.asarray(labels).ravel()
        labels = pl.Series("labels", raw.tolist() if raw.dtype == object else raw, strict=False)
    ser = pl.Series("labels", labels.to_list(), strict=False) if labels.dtype == pl.Object else labels
    if ser.dtype.is_numeric():
        arr = ser.fill_null(-1).to_numpy()
    else:
        arr = ser.cast(pl.String).fill_null("\x00noise").to_numpy().astype(object)
    if n is not None and arr.shape[0] != n:
        raise DataError(
            f"{name}: {arr.shape[0]} labels for {n} rows of X. Fix: pass one label per row, in the same order."
        )
    return arr


def _noise_mask(labels: np.ndarray) -> np.ndarray:
    """Noise / missing labels: negative integers (hdbscan -1, sklearn HDBSCAN -2/-3)."""
    if np.issubdtype(labels.dtype, np.number):
        return labels < 0
    return labels == "\x00noise"


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def stratified_sample_indices(
    labels: np.ndarray, sample_size: int, random_state: int = 0, min_per_segment: int | None = None
) -> np.ndarray:
    """Row indices of a sample stratified by label: proportional allocation, but every segment gets
    at least ``min_per_segment`` rows (default ``sample_size // (4 * k)``) or all its rows if smaller.

    >>> idx = stratified_sample_indices(np.array([0] * 990 + [1] * 10), 100)
    >>> int((np.array([0] * 990 + [1] * 10)[idx] == 1).sum())
    10
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n <= sample_size:
        return np.arange(n)
    rng = np.random.default_rng(random_state)
    uniq, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    k = len(uniq)
    floor = max(2, sample_size // (4 * k)) if min_per_segment is None else min_per_segment
    alloc = np.maximum(np.floor(counts / n * sample_size).astype(int), np.minimum(counts, floor))
    alloc = np.minimum(alloc, counts)
    # random key per row; keep the alloc[g] smallest keys of each group (no loop over rows)
    keys = rng.random(n)
    order = np.lexsort((keys, inv))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    return np.flatnonzero(rank < alloc[inv])


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
    noise = _noise_mask(ls)
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
    value = _finite_or_none(value)
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

    X = _as_matrix(X)
    labels = _as_labels(labels, X.shape[0])
    n = X.shape[0]
    noise = _noise_mask(labels)
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
    summary["calinski_harabasz"] = _finite_or_none(calinski_harabasz_score(Xf, lf))
    summary["calinski_harabasz_rows"] = int(Xf.shape[0])  # CH grows with the rows it is computed on
    summary["davies_bouldin"] = _finite_or_none(davies_bouldin_score(Xf, lf))

    want_dbcv = dbcv if dbcv is not None else (hdbscan_model is not None or bool(noise.any()))
    if want_dbcv:
        metric = getattr(hdbscan_model, "metric", "euclidean") if hdbscan_model is not None else "euclidean"
        metric = metric if isinstance(metric, str) else "euclidean"
        summary["dbcv"], summary["dbcv_note"] = _dbcv(X, labels, metric, dbcv_sample_size, random_state)
    if hdbscan_model is not None:
        try:
            summary["relative_validity"] = _finite_or_none(getattr(hdbscan_model, "relative_validity_", None))
        except Exception:  # hdbscan raises when gen_min_span_tree was False
            summary["relative_validity"] = None
    return QualityResult(summary, seg)


# --------------------------------------------------------------------------------------------
# stability
# --------------------------------------------------------------------------------------------
@dataclass
class StabilityResult:
    """``resamples``: one row per refit (kind, seed, n_compared, ari, n_segments);
    ``segments``: per reference segment mean/min Jaccard and a plain ``reading``; ``summary``: dict."""

    resamples: pl.DataFrame
    segments: pl.DataFrame
    summary: dict[str, Any]


def stability_reading(jaccard: pl.Expr, stable: float = STABLE_THRESHOLD, doubtful: float = DOUBTFUL_THRESHOLD) -> pl.Expr:
    """Polars expression: "stable" (>= stable), "doubtful" (< doubtful), else "moderate" (see :func:`stability_word`)."""
    return (
        pl.when(jaccard >= stable)
        .then(pl.lit("stable"))
        .when(jaccard < doubtful)
        .then(pl.lit("doubtful"))
        .otherwise(pl.lit("moderate"))
    )


def stability_word(value: float | None, stable: float = STABLE_THRESHOLD,
                   doubtful: float = DOUBTFUL_THRESHOLD) -> str | None:
    """The same reading as :func:`stability_reading` for one number (None stays None).

    >>> [stability_word(v) for v in (0.8, 0.75, 0.7, 0.59, None)]
    ['stable', 'stable', 'moderate', 'doubtful', None]
    """
    if value is None or not math.isfinite(float(value)):
        return None
    return "stable" if value >= stable else "doubtful" if value < doubtful else "moderate"


def silhouette_reading(value: float | None) -> str | None:
    """Kaufman & Rousseeuw's wording of a mean silhouette (:data:`SILHOUETTE_READINGS`).

    >>> [silhouette_reading(v) for v in (0.72, 0.5, 0.3, 0.1, None)]
    ['strong', 'reasonable', 'weak', 'no substantial', None]
    """
    if value is None or not math.isfinite(float(value)):
        return None
    return next((word for bound, word in SILHOUETTE_READINGS if value >= bound), "no substantial")


def _make_fit_predict(estimator_or_factory: Any) -> FitPredict:
    """Turn an sklearn-style estimator into ``fit_predict(data, seed) -> labels``; pass callables through."""
    if hasattr(estimator_or_factory, "fit"):
        from sklearn.base import clone

        def fit_predict(data: Any, seed: int) -> np.ndarray:
            est = clone(estimator_or_factory)
            if "random_state" in est.get_params(deep=False):
                est.set_params(random_state=int(seed))
            if hasattr(est, "predict"):
                return np.asarray(est.fit(data).predict(data))
            return np.asarray(est.fit_predict(data))

        return fit_predict
    if callable(estimator_or_factory):
        return estimator_or_factory
    raise ConfigError(
        f"stability: got {type(estimator_or_factory).__name__}, expected an sklearn-style estimator "
        "(with fit and predict or fit_predict) or a callable fit_predict(data, seed) -> labels. "
        "Fix: pass e.g. CustomerSegmenter(...) or lambda data, seed: KMeans(5, random_state=seed).fit_predict(data)."
    )


def _take(data: Any, idx: np.ndarray) -> Any:
    if isinstance(data, pl.DataFrame):
        return data[idx]
    return data[idx]


def _jaccard_max(ref: np.ndarray, new: np.ndarray, ref_uniq: np.ndarray) -> np.ndarray:
    """For each reference segment (in ``ref_uniq`` order): max Jaccard over the new segments (NaN if absent)."""
    from sklearn.metrics.cluster import contingency_matrix

    r_u, r_inv = np.unique(ref, return_inverse=True)
    cm = contingency_matrix(r_inv, new, sparse=False).astype(np.float64)
    a = cm.sum(axis=1, keepdims=True)
    b = cm.sum(axis=0, keepdims=True)
    jac = cm / (a + b - cm)
    best = jac.max(axis=1)
    out = np.full(ref_uniq.shape[0], np.nan)
    out[np.searchsorted(ref_uniq, r_u)] = best
    return out


def stability(
    estimator_or_factory: Any,
    features: Any,
    n_resamples: int = 10,
    sample_size: int = 20_000,
    random_state: int = 0,
    method: str = "bootstrap",
    subsample_fraction: float = 0.8,
    n_seeds: int = 3,
    stable_threshold: float = STABLE_THRESHOLD,
    doubtful_threshold: float = DOUBTFUL_THRESHOLD,
) -> StabilityResult:
    """Refit on resamples and on other seeds; ARI and per-segment Jaccard vs the reference labels.

    A base sample of at most ``sample_size`` rows is drawn once; the reference labels come from a
    fit on it with ``random_state``. Each of ``n_resamples`` refits uses a bootstrap (or, with
    ``method="subsample"``, a ``subsample_fraction`` subsample) of the base sample and a new seed and
    is compared on the distinct resampled rows (as ``fpc::clusterboot``): ARI, and for every
    reference segment the best Jaccard over the refit's segments. ``n_seeds`` more refits use the
    whole base sample with other seeds only (``kind="seed"``). Per-segment stability is the mean
    Jaccard over the resamples (``jaccard_worst``: the lowest single resample; ``dissolved_share``:
    share of resamples with Jaccard < 0.5). ``summary["jaccard_min"]`` is the lowest per-segment
    mean Jaccard.

    ``estimator_or_factory``: an sklearn-style estimator (cloned; ``random_state`` set per refit)
    or ``fit_predict(data, seed) -> labels`` where ``data`` is a row subset of ``features``
    (same type: numpy array or polars DataFrame).

    >>> from sklearn.cluster import KMeans
    >>> X = np.r_[np.zeros((100, 2)), np.full((100, 2), 9.0)] + np.random.default_rng(1).normal(size=(200, 2))
    >>> stability(KMeans(2, n_init=2), X, n_resamples=3).summary["ari_median"] > 0.9
    True
    """
    from sklearn.metrics import adjusted_rand_score

    if method not in ("bootstrap", "subsample"):
        raise ConfigError(f"stability: method '{method}' is not known. Fix: use 'bootstrap' or 'subsample'.")
    if not 0 < subsample_fraction <= 1:
        raise ConfigError("stability: subsample_fraction must be in (0, 1]. Fix: e.g. 0.8.")
    if n_resamples < 1:
        raise ConfigError("validation.n_resamples must be at least 1. Fix: set e.g. n_resamples: 10.")
    if isinstance(features, pl.LazyFrame):
        features = features.collect()
    fit_predict = _make_fit_predict(estimator_or_factory)
    n = features.height if isinstance(features, pl.DataFrame) else len(features)
    if n < 4:
        raise DataError(f"stability: only {n} customers. Fix: pass the feature table of the whole segmentation.")
    rng = np.random.default_rng(random_state)
    base_idx = np.sort(rng.choice(n, size=sample_size, replace=False)) if n > sample_size else np.arange(n)
    base = _take(features, base_idx)
    m = base_idx.size
    ref = _as_labels(fit_predict(base, int(random_state)), m, "reference labels")
    ref_uniq, ref_counts = np.unique(ref, return_counts=True)

    rows: list[dict[str, Any]] = []
    jac_rows: list[np.ndarray] = []
    seeds = rng.integers(0, 2**31 - 1, size=n_resamples + n_seeds)
    for b in range(n_resamples):
        if method == "bootstrap":
            draw = rng.integers(0, m, size=m)
        else:
            draw = np.sort(rng.choice(m, size=max(4, int(round(subsample_fraction * m))), replace=False))
        labels = _as_labels(fit_predict(_take(base, draw), int(seeds[b])), draw.size, "resample labels")
        # compare on distinct rows (first occurrence of each drawn row)
        uniq_rows, first = np.unique(draw, return_index=True)
        new = labels[first]
        r = ref[uniq_rows]
        jac_rows.append(_jaccard_max(r, new, ref_uniq))
        rows.append(
            {"kind": method, "resample": b, "seed": int(seeds[b]), "n_compared": int(uniq_rows.size),
             "ari": float(adjusted_rand_score(r, new)), "n_segments": int(np.unique(new).size)}
        )
    seed_jac: list[np.ndarray] = []
    for j in range(n_seeds):
        s = int(seeds[n_resamples + j])
        new = _as_labels(fit_predict(base, s), m, "refit labels")
        seed_jac.append(_jaccard_max(ref, new, ref_uniq))
        rows.append(
            {"kind": "seed", "resample": n_resamples + j, "seed": s, "n_compared": int(m),
             "ari": float(adjusted_rand_score(ref, new)), "n_segments": int(np.unique(new).size)}
        )
    resamples = pl.DataFrame(rows, schema={"kind": pl.String, "resample": pl.Int64, "seed": pl.Int64,
                                            "n_compared": pl.Int64, "ari": pl.Float64, "n_segments": pl.Int64})
    J = np.vstack(jac_rows)
    with np.errstate(all="ignore"):
        mean_j = np.nanmean(J, axis=0)
        min_j = np.nanmin(J, axis=0)
        dissolved = np.nanmean(J < 0.5, axis=0)
        seed_mean = np.nanmean(np.vstack(seed_jac), axis=0) if seed_jac else np.full(ref_uniq.size, np.nan)
    segments = pl.DataFrame(
        {
            "segment": pl.Series(ref_uniq.tolist()),
            "size_in_sample": ref_counts.astype(np.int64),
            "jaccard_mean": mean_j,
            "jaccard_worst": min_j,
            "dissolved_share": dissolved,
            "jaccard_seed_mean": seed_mean,
        }
    ).with_columns(pl.col("jaccard_mean", "jaccard_worst", "jaccard_seed_mean").fill_nan(None)).with_columns(
        stability_reading(pl.col("jaccard_mean"), stable_threshold, doubtful_threshold).alias("reading")
    )
    ari = resamples.filter(pl.col("kind") != "seed")["ari"]
    ari_seed = resamples.filter(pl.col("kind") == "seed")["ari"]
    summary = {
        "n_customers": int(n),
        "sample_size": int(m),
        "n_resamples": int(n_resamples),
        "method": method,
        "ari_median": float(ari.median()),
        "ari_min": float(ari.min()),
        "ari_q10": float(ari.quantile(0.1, "nearest")),
        "ari_seed_median": _finite_or_none(ari_seed.median()) if ari_seed.len() else None,
        "jaccard_min": _finite_or_none(segments["jaccard_mean"].min()),
        "jaccard_mean": _finite_or_none(segments["jaccard_mean"].mean()),
        "n_stable": int((segments["reading"] == "stable").sum()),
        "n_moderate": int((segments["reading"] == "moderate").sum()),
        "n_doubtful": int((segments["reading"] == "doubtful").sum()),
        "stable_threshold": stable_threshold,
        "doubtful_threshold": doubtful_threshold,
    }
    return StabilityResult(resamples, segments, summary)


# --------------------------------------------------------------------------------------------
# predictive validity
# --------------------------------------------------------------------------------------------
@dataclass
class HoldoutSplit:
    """Calibration rows (before ``cutoff``), holdout rows (``cutoff <= t < holdout_end``) of
    customers seen in calibration, and the count of customers first seen in the holdout (excluded)."""

    calibration: pl.DataFrame
    holdout: pl.DataFrame
    cutoff: datetime
    holdout_end: datetime | None
    n_calibration_customers: int
    n_new_in_holdout: int
    summary: dict[str, Any] = field(default_factory=dict)


def _to_datetime(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{name}: '{value}' is not a date. Fix: give it as 'YYYY-MM-DD' (or a date/datetime).")


def _time_literal(value: datetime, dtype: pl.DataType) -> pl.Expr:
    """A literal comparable with a column of ``dtype`` (Datetime with or without zone, or Date)."""
    if dtype == pl.Date:
        return pl.lit(value.date())
    tz = getattr(dtype, "time_zone", None)
    if tz is None:
        naive = value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
        return pl.lit(naive)
    aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return pl.lit(aware.astimezone(timezone.utc)).dt.convert_time_zone(tz)


def _check_columns(df_schema: Mapping[str, Any], cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df_schema]
    if missing:
        raise DataError(
            f"{what}: column(s) {missing} not found (columns: {list(df_schema)}). Fix: rename them to the "
            f"canonical names (docs/architecture.md) or pass the column names as arguments."
        )


def split_calibration_holdout(
    transactions: pl.DataFrame | pl.LazyFrame,
    cutoff: str | date | datetime,
    holdout_days: int | None = None,
    id_col: str = "customer_id",
    time_col: str = "timestamp",
) -> HoldoutSplit:
    """Split a transaction log at ``cutoff``: calibration ``t < cutoff``; holdout ``cutoff <= t <
    cutoff + holdout_days`` (all later rows when None) restricted to calibration customers; the
    customers first seen in the holdout are excluded and counted (as lifetimes'
    ``calibration_and_holdout_data``). A cutoff without a time zone is read in UTC.

    >>> from datetime import datetime
    >>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "timestamp": [datetime(2024, 1, 1), datetime(2024, 3, 1), datetime(2024, 3, 2)]})
    >>> s = split_calibration_holdout(tx, "2024-02-01")
    >>> (s.calibration.height, s.holdout.height, s.n_new_in_holdout)
    (1, 1, 1)
    """
    lf = transactions.lazy()
    schema = lf.collect_schema()
    _check_columns(schema, [id_col, time_col], "split_calibration_holdout (transactions)")
    cut = _to_datetime(cutoff, "validation cutoff")
    if holdout_days is not None and holdout_days <= 0:
        raise ConfigError(f"validation.holdout_days is {holdout_days}. Fix: use a positive number of days, e.g. 90.")
    end = cut + timedelta(days=holdout_days) if holdout_days is not None else None
    tcol = pl.col(time_col)
    cut_lit = _time_literal(cut, schema[time_col])
    calibration = lf.filter(tcol < cut_lit).collect()
    later = tcol >= cut_lit
    if end is not None:
        later = later & (tcol < _time_literal(end, schema[time_col]))
    holdout_all = lf.filter(later).collect()
    cal_ids = calibration.select(pl.col(id_col).unique())
    holdout = holdout_all.join(cal_ids, on=id_col, how="semi")
    n_new = holdout_all.select(pl.col(id_col)).unique().join(cal_ids, on=id_col, how="anti").height
    n_cal = cal_ids.height
    if n_cal == 0:
        raise DataError(
            f"split_calibration_holdout: no transactions before the cutoff {cut.date()}. Fix: choose a later "
            f"cutoff (e.g. holdout_days before the last transaction)."
        )
    summary = {
        "cutoff": cut.isoformat(),
        "holdout_end": end.isoformat() if end else None,
        "calibration_rows": calibration.height,
        "holdout_rows": holdout.height,
        "calibration_customers": n_cal,
        "holdout_customers": holdout.select(pl.col(id_col).n_unique()).item(),
        "new_in_holdout_excluded": n_new,
    }
    return HoldoutSplit(calibration, holdout, cut, end, n_cal, n_new, summary)


@dataclass
class PredictiveResult:
    """``segments``: per method and segment holdout behaviour; ``separation``: one row per method
    (eta-squared of holdout spend, purchase-rate spread, ...), side by side; ``summary``: dict."""

    segments: pl.DataFrame
    separation: pl.DataFrame
    summary: dict[str, Any]


def _assignment_table(value: pl.DataFrame, method: str, id_col: str) -> pl.DataFrame:
    if isinstance(value, pl.LazyFrame):
        value = value.collect()
    if not isinstance(value, pl.DataFrame):
        raise ConfigError(
            f"predictive_validity: segmenter '{method}' returned {type(value).__name__}. Fix: return a polars "
            f"DataFrame with columns {id_col} and segment."
        )
    if id_col not in value.columns:
        raise DataError(f"predictive_validity: assignments of '{method}' have no column '{id_col}'. Fix: include the customer id.")
    if "segment" in value.columns:
        seg = "segment"
    else:
        others = [c for c in value.columns if c != id_col]
        if len(others) != 1:
            raise DataError(
                f"predictive_validity: assignments of '{method}' have no 'segment' column (columns: "
                f"{value.columns}). Fix: name the segment column 'segment'."
            )
        seg = others[0]
    return value.select(pl.col(id_col).cast(pl.String), pl.col(seg).cast(pl.String).alias("segment")).unique(
        subset=id_col, keep="first", maintain_order=True
    )


def holdout_outcomes(
    split: HoldoutSplit,
    id_col: str = "customer_id",
    time_col: str = "timestamp",
    amount_col: str = "amount",
    retention_days: int | None = None,
) -> pl.DataFrame:
    """One row per calibration customer: holdout_spend, holdout_purchase (any row with amount > 0),
    and active_before (a purchase in the ``retention_days`` before the cutoff; retention denominator)."""
    cal, hold = split.calibration, split.holdout
    _check_columns(cal.schema, [amount_col], "predictive_validity (transactions)")
    days = retention_days or (
        (split.holdout_end - split.cutoff).days if split.holdout_end is not None else 90
    )
    start = _time_literal(split.cutoff - timedelta(days=days), cal.schema[time_col])
    base = cal.group_by(id_col).agg(
        ((pl.col(time_col) >= start) & (pl.col(amount_col) > 0)).any().alias("active_before")
    )
    out = hold.group_by(id_col).agg(
        pl.col(amount_col).sum().alias("holdout_spend"),
        (pl.col(amount_col) > 0).any().alias("holdout_purchase"),
    )
    return (
        base.join(out, on=id_col, how="left")
        .with_columns(
            pl.col(id_col).cast(pl.String),
            pl.col("holdout_spend").fill_null(0.0).cast(pl.Float64),
            pl.col("holdout_purchase").fill_null(False),
        )
    )


def _eta_squared(value: pl.Expr, group: str) -> pl.Expr:
    """Share of the variance of ``value`` explained by ``group`` (a polars expression over the frame)."""
    grand = value.mean()
    ss_total = ((value - grand) ** 2).sum()
    ss_between = ((value.mean().over(group) - grand) ** 2).sum()
    return pl.when(ss_total > 0).then(ss_between / ss_total).otherwise(None)


def predictive_validity(
    transactions: pl.DataFrame | pl.LazyFrame,
    cutoff: str | date | datetime,
    segmenters: Mapping[str, Assignments],
    holdout_days: int | None = 90,
    feature_fn: Callable[[pl.DataFrame, Any], pl.DataFrame] | None = None,
    id_col: str = "customer_id",
    time_col: str = "timestamp",
    amount_col: str = "amount",
    min_segment_size: int = 30,
) -> PredictiveResult:
    """Segment on the calibration period, score on the holdout: does the segmentation predict value?

    ``segmenters`` maps a method name ("clusters", "rfm", ...) to either a callable
    ``calibration_features -> DataFrame(customer_id, segment)`` or precomputed assignments. The
    calibration features come from ``feature_fn(calibration_transactions, as_of=cutoff)``
    (default :func:`segmentation_lib.features.customer_features`), computed once and only if a
    callable is given. Per method and segment: customers, share, holdout purchase rate, mean
    holdout spend, retention (share of customers active in the ``holdout_days`` before the cutoff
    who bought again in the holdout). Per method: ``eta_squared_spend`` (share of holdout spend
    variance explained by segment), the same on log1p spend and on the purchase flag, the highest
    minus the lowest purchase rate (``purchase_rate_spread``) and ``best_segment`` /
    ``worst_segment`` by mean holdout spend (the order of ``rank_by_spend``), all among segments with
    at least ``min_segment_size`` customers (all segments when none is that large), so a handful of
    customers cannot make the spread. Segments of a callable are those of the calibration refit,
    named by it: they need not match the names of the full-period segmentation.
    """
    if not segmenters:
        raise ConfigError("predictive_validity: no segmentations given. Fix: pass e.g. {'rfm': assign_fn, 'clusters': table}.")
    split = split_calibration_holdout(transactions, cutoff, holdout_days, id_col, time_col)
    if split.calibration.height == 0 or split.holdout.height == 0:
        empty = "calibration period (before the cutoff)" if split.calibration.height == 0 else "holdout period"
        raise DataError(
            f"Predictive validity: the {empty} has no transactions (cutoff {split.cutoff:%Y-%m-%d}"
            + (f", holdout end {split.holdout_end:%Y-%m-%d}" if split.holdout_end else "")
            + "), so future value cannot be measured. Fix: set run.as_of to a date "
            f"within the data (or null for the day after the last transaction), or change validation.holdout_days."
        )
    outcomes = holdout_outcomes(split, id_col, time_col, amount_col)
    features = None
    seg_tables, sep_rows = [], []
    unassigned: dict[str, int] = {}
    for method, seg in segmenters.items():
        if callable(seg) and not isinstance(seg, pl.DataFrame):
            if features is None:
                if feature_fn is None:
                    from .features import customer_features as feature_fn  # lazy: owned by another module
                features = feature_fn(split.calibration, split.cutoff)
                if isinstance(features, pl.LazyFrame):
                    features = features.collect()
            assign = _assignment_table(seg(features), method, id_col)
        else:
            assign = _assignment_table(seg, method, id_col)
        joined = (
            outcomes.join(assign, on=id_col, how="inner")
            .with_columns(pl.col("segment").fill_null("(null)"))
            .sort(id_col)  # fixed row order: sums (and so the figures) do not depend on join order
        )
        unassigned[method] = outcomes.height - joined.height
        if joined.height == 0:
            raise DataError(
                f"predictive_validity: none of the calibration customers has a segment in '{method}'. Fix: "
                f"segment the calibration features (customers before the cutoff {split.cutoff.date()})."
            )
        per_seg = (
            joined.group_by("segment")
            .agg(
                pl.len().alias("customers"),
                pl.col("holdout_purchase").mean().alias("purchase_rate"),
                pl.col("holdout_spend").mean().alias("mean_holdout_spend"),
                pl.col("holdout_spend").sum().alias("total_holdout_spend"),
                pl.col("active_before").sum().alias("active_before"),
                (pl.col("holdout_purchase") & pl.col("active_before")).sum().alias("_retained"),
            )
            .with_columns(
                pl.lit(method).alias("method"),
                (pl.col("customers") / joined.height).alias("share"),
                pl.when(pl.col("active_before") > 0)
                .then(pl.col("_retained") / pl.col("active_before"))
                .otherwise(None)
                .alias("retention"),
            )
            .drop("_retained")
            .sort(["mean_holdout_spend", "segment"], descending=[True, False])
            .with_columns(pl.int_range(1, pl.len() + 1).alias("rank_by_spend"))
        )
        seg_tables.append(per_seg)
        eligible = per_seg.filter(pl.col("customers") >= min_segment_size)
        eligible = eligible if eligible.height else per_seg
        # best / worst by mean holdout spend, the measure the segments are ranked by (rank_by_spend)
        best = eligible.sort(["mean_holdout_spend", "purchase_rate", "segment"],
                             descending=[True, True, False]).row(0, named=True)
        worst = eligible.sort(["mean_holdout_spend", "purchase_rate", "segment"],
                              descending=[False, False, False]).row(0, named=True)
        rates = eligible["purchase_rate"]
        etas = joined.select(
            _eta_squared(pl.col("holdout_spend"), "segment").alias("eta_squared_spend"),
            _eta_squared(pl.col("holdout_spend").clip(0).log1p(), "segment").alias("eta_squared_log_spend"),
            _eta_squared(pl.col("holdout_purchase").cast(pl.Float64), "segment").alias("eta_squared_purchase"),
        ).row(0, named=True)
        sep_rows.append(
            {
                "method": method,
                "n_segments": per_seg.height,
                "customers": joined.height,
                **etas,
                "purchase_rate_spread": float(rates.max()) - float(rates.min()),
                "best_segment": best["segment"],
                "worst_segment": worst["segment"],
                "overall_purchase_rate": float(joined["holdout_purchase"].mean()),
                "overall_mean_holdout_spend": float(joined["holdout_spend"].mean()),
            }
        )
    cols = ["method", "segment", "customers", "share", "purchase_rate", "mean_holdout_spend",
            "total_holdout_spend", "retention", "active_before", "rank_by_spend"]
    segments = pl.concat([t.select(cols) for t in seg_tables], how="vertical_relaxed")
    separation = pl.DataFrame(sep_rows).with_columns(
        pl.col("eta_squared_spend", "eta_squared_log_spend", "eta_squared_purchase").cast(pl.Float64)
    )
    summary = {**split.summary, "unassigned_calibration_customers": unassigned}
    return PredictiveResult(segments, separation, summary)


# --------------------------------------------------------------------------------------------
# migration
# --------------------------------------------------------------------------------------------
@dataclass
class MigrationResult:
    """Transition tables between two snapshots. ``counts`` / ``shares`` long (from_segment,
    to_segment, count, share) over customers in both; ``counts_wide`` / ``shares_wide`` (rows =
    before); ``moved_to_at_risk`` customers; ``sankey_data`` (source, target, count) with "(new)"
    and "(gone)" nodes for customers who appeared / disappeared; ``summary`` dict."""

    counts: pl.DataFrame
    shares: pl.DataFrame
    counts_wide: pl.DataFrame
    shares_wide: pl.DataFrame
    moved_to_at_risk: pl.DataFrame
    sankey_data: pl.DataFrame
    summary: dict[str, Any]


def _snapshot(df: pl.DataFrame | pl.LazyFrame, id_col: str, segment_col: str, name: str) -> pl.DataFrame:
    lf = df.lazy()
    _check_columns(lf.collect_schema(), [id_col, segment_col], f"migration ({name} snapshot)")
    out = lf.select(pl.col(id_col).cast(pl.String), pl.col(segment_col).cast(pl.String).alias("segment")).collect()
    dup = out.filter(pl.col(id_col).is_duplicated())
    if dup.height:
        raise DataError(
            f"migration: the {name} snapshot has {dup[id_col].n_unique()} customer(s) with more than one row "
            f"(e.g. '{dup[id_col][0]}') in column '{id_col}'. Fix: pass one segment per customer."
        )
    return out.with_columns(pl.col("segment").fill_null("(null)"))


def _in_set(col: pl.Expr, names: Sequence[str]) -> pl.Expr:
    return col.str.to_lowercase().is_in([s.lower() for s in names])


def migration(
    before: pl.DataFrame | pl.LazyFrame,
    after: pl.DataFrame | pl.LazyFrame,
    id_col: str = "customer_id",
    segment_col: str = "segment",
    at_risk: Sequence[str] = DEFAULT_AT_RISK,
    order: Sequence[str] | None = None,
) -> MigrationResult:
    """Segment transitions between two snapshots assigned with the same frozen model / RFM edges.

    >>> b = pl.DataFrame({"customer_id": ["a", "b"], "segment": ["Champions", "Champions"]})
    >>> a = pl.DataFrame({"customer_id": ["a", "b"], "segment": ["Champions", "At Risk"]})
    >>> migration(b, a).summary["changed_share"]
    0.5
    """
    b = _snapshot(before, id_col, segment_col, "before")
    a = _snapshot(after, id_col, segment_col, "after")
    both = b.join(a, on=id_col, how="inner", suffix="_after").rename(
        {"segment": "from_segment", "segment_after": "to_segment"}
    )
    appeared = a.join(b, on=id_col, how="anti")
    gone = b.join(a, on=id_col, how="anti")
    names = order or sorted(set(b["segment"].unique().to_list()) | set(a["segment"].unique().to_list()))
    rank = {s: i for i, s in enumerate(names)}
    counts = (
        both.group_by("from_segment", "to_segment").agg(pl.len().cast(pl.Int64).alias("count"))
        .with_columns((pl.col("count") / pl.col("count").sum().over("from_segment")).alias("share"))
        .sort(pl.col("from_segment").replace_strict(rank, default=len(rank)),
              pl.col("to_segment").replace_strict(rank, default=len(rank)))
    )
    from_names = [s for s in names if s in set(both["from_segment"].to_list())]
    to_names = [s for s in names if s in set(both["to_segment"].to_list())]

    def wide(value: str) -> pl.DataFrame:
        if counts.height == 0:
            return pl.DataFrame({"from_segment": pl.Series([], dtype=pl.String)})
        w = counts.pivot(on="to_segment", index="from_segment", values=value).fill_null(0)
        w = w.select("from_segment", *[c for c in to_names if c in w.columns])
        return w.sort(pl.col("from_segment").replace_strict(rank, default=len(rank)))

    moved = (
        both.filter(_in_set(pl.col("to_segment"), at_risk) & ~_in_set(pl.col("from_segment"), at_risk))
        .sort(id_col)
    )
    sankey = pl.concat(
        [
            counts.select(pl.col("from_segment").alias("source"), pl.col("to_segment").alias("target"), "count"),
            appeared.group_by("segment").agg(pl.len().cast(pl.Int64).alias("count"))
            .select(pl.lit("(new)").alias("source"), pl.col("segment").alias("target"), "count").sort("target"),
            gone.group_by("segment").agg(pl.len().cast(pl.Int64).alias("count"))
            .select(pl.col("segment").alias("source"), pl.lit("(gone)").alias("target"), "count").sort("source"),
        ]
    )
    n_both = both.height
    changed = int((both["from_segment"] != both["to_segment"]).sum()) if n_both else 0
    summary = {
        "customers_before": b.height,
        "customers_after": a.height,
        "customers_in_both": n_both,
        "appeared": appeared.height,
        "disappeared": gone.height,
        "changed": changed,
        "changed_share": changed / n_both if n_both else None,
        "moved_to_at_risk": moved.height,
        "moved_to_at_risk_share": moved.height / n_both if n_both else None,
        "segments_before": from_names,
        "segments_after": to_names,
    }
    return MigrationResult(
        counts.select("from_segment", "to_segment", "count"),
        counts.select("from_segment", "to_segment", "share"),
        wide("count"),
        wide("share"),
        moved,
        sankey,
        summary,
    )


# --------------------------------------------------------------------------------------------
# actionability
# --------------------------------------------------------------------------------------------
def _check(name: str, ok: bool, value: float | None, reason: str) -> dict[str, Any]:
    return {"check": name, "status": "pass" if ok else "warn", "value": _finite_or_none(value), "reason": reason}


def _cohens_d_matrix(stats: pl.DataFrame, cols: list[str]) -> np.ndarray:
    """|Cohen's d| for every pair of segments and feature -> array (k, k, f); pooled SD."""
    n = stats["_n"].to_numpy().astype(np.float64)
    means = stats.select([f"{c}__mean" for c in cols]).to_numpy().astype(np.float64)
    vars_ = np.nan_to_num(stats.select([f"{c}__var" for c in cols]).to_numpy().astype(np.float64))
    ni, nj = n[:, None, None], n[None, :, None]
    dof = np.maximum(ni + nj - 2, 1)
    pooled = np.sqrt(((ni - 1) * vars_[:, None, :] + (nj - 1) * vars_[None, :, :]) / dof)
    diff = np.abs(means[:, None, :] - means[None, :, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(pooled > 0, diff / pooled, np.where(diff > 0, np.inf, 0.0))
    return d


def _identifiable(fidelity: float, min_fidelity: float, segments: list[str],
                  recall: Mapping[Any, float] | None, min_recall: float) -> dict[str, Any]:
    """The ``identifiable`` row: overall fidelity and the worst per-segment recall of the surrogate rules.

    >>> _identifiable(0.92, 0.8, ["a", "b"], {"a": 0.99}, 0.5)["status"]
    'warn'
    """
    ok = fidelity >= min_fidelity
    text = f"surrogate rules reproduce {fidelity:.1%} of assignments (threshold {min_fidelity:.0%})"
    if recall is None:
        text += "; per-segment recall not checked (pass segment_recall)"
    else:
        by_seg = {str(k): float(v) for k, v in recall.items()}
        if segments and not set(segments) & set(by_seg):
            raise DataError(
                f"actionability_checks: segment_recall names {sorted(by_seg)[:5]}, none of the segments "
                f"{sorted(segments)[:5]}. Fix: key it by the segment values of the table (e.g. "
                "SurrogateRules.recall_by_name() when the segments are names)."
            )
        values = {s: by_seg.get(s, 0.0) for s in segments}
        unreached = sorted(s for s, v in values.items() if s not in by_seg or v == 0.0)
        poor = sorted((v, s) for s, v in values.items() if v < min_recall)
        worst_v, worst_s = min((v, s) for s, v in values.items()) if values else (None, None)
        if worst_v is not None:
            text += f"; worst segment recall {worst_v:.1%} ({worst_s}; threshold {min_recall:.0%})"
        if unreached:
            text += f"; reached by no rule: {', '.join(unreached)}"
        elif poor:
            text += f"; {len(poor)} segment(s) mostly given to other segments by the rules"
        ok = ok and not poor
    if not ok:
        text += "; the rules do not describe every segment: deepen the surrogate (clustering.surrogate_depth) or simplify the segmentation"
    return _check("identifiable", ok, fidelity, text)


def actionability_checks(
    segments: pl.DataFrame | pl.LazyFrame,
    features: pl.DataFrame | pl.LazyFrame | None = None,
    min_k: int = 3,
    max_k: int = 8,
    min_share: float = 0.02,
    fidelity: float | None = None,
    min_fidelity: float = 0.8,
    revenue_col: str = "total_spend",
    min_effect_size: float = 0.5,
    id_col: str = "customer_id",
    segment_col: str = "segment",
    feature_cols: Sequence[str] | None = None,
    noise_col: str | None = None,
    segment_recall: Mapping[Any, float] | None = None,
    min_segment_recall: float = MIN_SEGMENT_RECALL,
) -> pl.DataFrame:
    """Can the segments be acted on? -> DataFrame(check, status "pass"/"warn"/"info", value, reason).

    Checks: ``n_segments`` within [min_k, max_k]; ``min_share`` (every segment at least
    ``min_share`` of customers); ``identifiable`` (surrogate rules ``fidelity`` >= ``min_fidelity``
    and, when ``segment_recall`` is given, every segment's recall >= ``min_segment_recall``: the
    share of its customers the rules put back in it; a segment missing from ``segment_recall`` is
    reached by no rule and counts as 0; keys are matched as text to the segment values, e.g.
    ``SurrogateRules.recall_by_name()`` for named segments). Overall fidelity alone can hide a
    small segment folded into another, so without ``segment_recall`` the reason says it was not
    checked;
    ``measurable`` (no null segment; sizes and ``revenue_col`` per segment available);
    ``distinct`` (every pair of segments differs on at least one feature by |Cohen's d| >=
    ``min_effect_size``). ``features`` is joined on ``id_col`` when given; otherwise numeric
    columns of ``segments`` are used.

    ``noise_col`` names a boolean column marking customers that belong to no segment (HDBSCAN
    noise labelled -1): they are left out of the segment count, the distinctness test and the
    null-segment count, segment shares stay shares of *all* customers, and an extra ``noise``
    row (status ``"info"``, value = noise share) reports them. Only "pass"/"warn" rows are checks.

    >>> seg = pl.DataFrame({"customer_id": list("abcdef"), "segment": list("xxyyzz"), "total_spend": [1., 2, 10, 11, 50, 52]})
    >>> actionability_checks(seg, fidelity=0.9).filter(pl.col("status") == "warn")["check"].to_list()
    []
    """
    seg = segments.lazy().collect() if isinstance(segments, pl.LazyFrame) else segments
    _check_columns(seg.schema, [segment_col] + ([noise_col] if noise_col else []), "actionability_checks (segments)")
    table = seg
    if features is not None:
        feat = features.collect() if isinstance(features, pl.LazyFrame) else features
        _check_columns(seg.schema, [id_col], "actionability_checks (segments)")
        _check_columns(feat.schema, [id_col], "actionability_checks (features)")
        extra = [c for c in feat.columns if c not in seg.columns or c == id_col]
        table = seg.join(feat.select(extra), on=id_col, how="left")
    n = table.height
    if n == 0:
        raise DataError("actionability_checks: the segment table is empty. Fix: pass the assigned customers.")
    n_noise = 0
    if noise_col:
        is_noise = pl.col(noise_col).cast(pl.Boolean).fill_null(False)
        n_noise = int(table.select(is_noise.sum()).item())
        table = table.filter(~is_noise).drop(noise_col)
    sizes = (
        table.group_by(segment_col).agg(pl.len().alias("_n")).with_columns((pl.col("_n") / n).alias("_share"))
    )
    non_null = sizes.filter(pl.col(segment_col).is_not_null())
    k = non_null.height
    rows = [
        _check(
            "n_segments", min_k <= k <= max_k, k,
            f"{k} segments, within the bounds {min_k}..{max_k}" if min_k <= k <= max_k
            else f"{k} segments, outside the bounds {min_k}..{max_k}: "
            + ("merge segments or lower k" if k > max_k else "split segments or raise k")
            + " (clustering.min_k / max_k)",
        )
    ]
    small = non_null.filter(pl.col("_share") < min_share).sort("_share")
    smallest = non_null["_share"].min() if k else None
    rows.append(
        _check(
            "min_share", small.height == 0 and k > 0, smallest,
            f"every segment holds at least {min_share:.1%} of customers (smallest {smallest:.1%})" if small.height == 0 and k
            else f"{small.height} segment(s) below {min_share:.1%} of customers: "
            + ", ".join(f"{s} ({v:.2%})" for s, v in small.select(pl.col(segment_col).cast(pl.String), "_share").iter_rows())
            + "; merge them or raise the minimum segment size",
        )
    )
    if fidelity is None:
        rows.append(_check("identifiable", False, None,
                           "surrogate rules fidelity not computed; fit profiles.SurrogateRules and pass fidelity"))
    else:
        rows.append(_identifiable(fidelity, min_fidelity, non_null[segment_col].cast(pl.String).to_list(),
                                  segment_recall, min_segment_recall))
    n_null = table.height - int(non_null["_n"].sum())
    has_rev = revenue_col in table.columns and table.schema[revenue_col].is_numeric()
    rev_nulls = int(table[revenue_col].null_count()) if has_rev else None
    problems = []
    if n_null:
        problems.append(f"{n_null} customer(s) without a segment")
    if not has_rev:
        problems.append(f"revenue column '{revenue_col}' not available (pass features with it)")
    elif rev_nulls:
        problems.append(f"{rev_nulls} customer(s) with null '{revenue_col}'")
    rows.append(_check(
        "measurable", not problems, n_null,
        f"sizes and '{revenue_col}' reported for all {k} segments" if not problems else "; ".join(problems),
    ))
    cols = list(feature_cols) if feature_cols is not None else [
        c for c, t in table.schema.items() if t.is_numeric() and c not in (id_col, segment_col)
    ]
    _check_columns(table.schema, cols, "actionability_checks (feature_cols)")
    if k < 2 or not cols:
        rows.append(_check("distinct", False, None,
                           "needs at least two segments and one numeric feature" if cols
                           else "no numeric features given; pass features="))
    else:
        stats = (
            table.filter(pl.col(segment_col).is_not_null())
            .group_by(segment_col)
            .agg(pl.len().alias("_n"), *[pl.col(c).cast(pl.Float64).mean().alias(f"{c}__mean") for c in cols],
                 *[pl.col(c).cast(pl.Float64).var().alias(f"{c}__var") for c in cols])
            .sort(pl.col(segment_col).cast(pl.String))
        )
        d = _cohens_d_matrix(stats, cols)
        best = d.max(axis=2)
        np.fill_diagonal(best, np.inf)
        i, j = np.unravel_index(np.argmin(best), best.shape)
        worst = float(best[i, j])
        names = stats[segment_col].cast(pl.String).to_list()
        feat_best = cols[int(np.argmax(d[i, j]))]
        ok = worst >= min_effect_size
        n_bad = int(((best < min_effect_size).sum()) // 2)
        rows.append(_check(
            "distinct", ok, worst,
            f"every pair of segments differs by |d| >= {min_effect_size} on some feature; least distinct pair "
            f"{names[i]} / {names[j]} (|d| = {worst:.2f} on {feat_best})" if ok
            else f"{n_bad} pair(s) of segments differ by less than |d| = {min_effect_size} on every feature; "
            f"least distinct {names[i]} / {names[j]} (best |d| = {worst:.2f} on {feat_best}); merge them",
        ))
    if n_noise:
        rows.append({"check": "noise", "status": "info", "value": n_noise / n,
                     "reason": f"{n_noise:,} customers ({n_noise / n:.1%}) fit no segment (noise); reported apart, "
                               "not counted as a segment"})
    return pl.DataFrame(rows, schema={"check": pl.String, "status": pl.String, "value": pl.Float64, "reason": pl.String})


# --------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------
@dataclass
class TruthResult:
    """ARI / NMI against known archetypes and a long confusion table (segment, truth, count,
    share_of_segment, share_of_truth)."""

    ari: float
    nmi: float
    confusion: pl.DataFrame
    summary: dict[str, Any]


def ground_truth_agreement(
    assign: pl.DataFrame | pl.LazyFrame,
    truth: pl.DataFrame | pl.LazyFrame,
    id_col: str = "customer_id",
    segment_col: str = "segment",
    truth_col: str = "archetype",
) -> TruthResult:
    """Agreement of a segmentation with planted archetypes (demo data), on the customers in both.

    >>> a = pl.DataFrame({"customer_id": ["1", "2", "3", "4"], "segment": [0, 0, 1, 1]})
    >>> t = pl.DataFrame({"customer_id": ["1", "2", "3", "4"], "archetype": ["x", "x", "y", "y"]})
    >>> ground_truth_agreement(a, t).ari
    1.0
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    a = assign.lazy()
    t = truth.lazy()
    _check_columns(a.collect_schema(), [id_col, segment_col], "ground_truth_agreement (assignments)")
    _check_columns(t.collect_schema(), [id_col, truth_col], "ground_truth_agreement (truth)")
    a = a.select(pl.col(id_col).cast(pl.String), pl.col(segment_col).cast(pl.String).alias("segment")).collect()
    t = t.select(pl.col(id_col).cast(pl.String), pl.col(truth_col).cast(pl.String).alias("truth")).collect()
    j = a.join(t, on=id_col, how="inner")
    if j.height == 0:
        raise DataError(
            f"No customer id of the segment assignments is in the truth table (column '{id_col}', "
            f"{t.height:,} rows; ground-truth agreement needs both). The usual cause is a copied demo config whose "
            "data.truth still points to the demo truth file while data.path points to other data. "
            "Fix: set data.truth: null (it is only for the demo data) or point it at a truth table for this data."
        )
    seg_codes = j["segment"].fill_null("(null)").cast(pl.Categorical).to_physical().to_numpy()
    truth_codes = j["truth"].fill_null("(null)").cast(pl.Categorical).to_physical().to_numpy()
    ari = float(adjusted_rand_score(truth_codes, seg_codes))
    nmi = float(normalized_mutual_info_score(truth_codes, seg_codes))
    confusion = (
        j.group_by("segment", "truth").agg(pl.len().cast(pl.Int64).alias("count"))
        .with_columns(
            (pl.col("count") / pl.col("count").sum().over("segment")).alias("share_of_segment"),
            (pl.col("count") / pl.col("count").sum().over("truth")).alias("share_of_truth"),
        )
        .sort("segment", "truth")
    )
    summary = {
        "ari": ari,
        "nmi": nmi,
        "matched": j.height,
        "unmatched_assignments": a.height - j.height,
        "unmatched_truth": t.height - j.height,
        "purity": float(confusion.group_by("segment").agg(pl.col("count").max())["count"].sum() / j.height),
    }
    return TruthResult(ari, nmi, confusion, summary)


# --------------------------------------------------------------------------------------------
# headline metrics
# --------------------------------------------------------------------------------------------
def headline_metrics(
    quality: QualityResult | None = None,
    stability_result: StabilityResult | None = None,
    predictive: PredictiveResult | None = None,
    migration_result: MigrationResult | None = None,
    checks: pl.DataFrame | None = None,
    truth: TruthResult | None = None,
) -> dict[str, Any]:
    """Small JSON-safe dict for ``metrics.json`` (NaN / missing -> None), so a scheduled run can
    alert on a drop in stability or a jump in migration.

    >>> headline_metrics()["silhouette"] is None
    True
    """
    q = quality.summary if quality is not None else {}
    s = stability_result.summary if stability_result is not None else {}
    m = migration_result.summary if migration_result is not None else {}
    out: dict[str, Any] = {
        "silhouette": _finite_or_none(q.get("silhouette")),
        "calinski_harabasz": _finite_or_none(q.get("calinski_harabasz")),
        "davies_bouldin": _finite_or_none(q.get("davies_bouldin")),
        "noise_share": _finite_or_none(q.get("noise_share")),
        "dbcv": _finite_or_none(q.get("dbcv")),
        "stability_ari_median": _finite_or_none(s.get("ari_median")),
        "stability_ari_min": _finite_or_none(s.get("ari_min")),
        "stability_jaccard_min": _finite_or_none(s.get("jaccard_min")),
        "stability_doubtful_segments": s.get("n_doubtful"),
        "stable_threshold": s.get("stable_threshold"),
        "doubtful_threshold": s.get("doubtful_threshold"),
        "migration_changed_share": _finite_or_none(m.get("changed_share")),
        "migration_to_at_risk_share": _finite_or_none(m.get("moved_to_at_risk_share")),
        "checks_passed": None,
        "checks_total": None,
        "truth_ari": _finite_or_none(truth.ari) if truth is not None else None,
        "truth_nmi": _finite_or_none(truth.nmi) if truth is not None else None,
        "separation": {},
    }
    if checks is not None and checks.height:
        graded = checks.filter(pl.col("status").is_in(["pass", "warn"]))  # "info" rows (noise) are not checks
        out["checks_passed"] = int((graded["status"] == "pass").sum())
        out["checks_total"] = int(graded.height)
    if predictive is not None:
        for r in predictive.separation.iter_rows(named=True):
            out["separation"][str(r["method"])] = {
                "n_segments": int(r["n_segments"]),
                "eta_squared_spend": _finite_or_none(r["eta_squared_spend"]),
                "eta_squared_log_spend": _finite_or_none(r["eta_squared_log_spend"]),
                "purchase_rate_spread": _finite_or_none(r["purchase_rate_spread"]),
            }
        out["new_in_holdout_excluded"] = predictive.summary.get("new_in_holdout_excluded")
    return out
