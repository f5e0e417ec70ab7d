"""Stability: refit the segmentation on resampled customers and other seeds, compare with ARI and Jaccard.

>>> stability_word(0.8)
'stable'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.validate.common import DOUBTFUL_THRESHOLD, FitPredict, SILHOUETTE_READINGS, STABLE_THRESHOLD, as_labels, finite_or_none



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
    ref = as_labels(fit_predict(base, int(random_state)), m, "reference labels")
    ref_uniq, ref_counts = np.unique(ref, return_counts=True)

    rows: list[dict[str, Any]] = []
    jac_rows: list[np.ndarray] = []
    seeds = rng.integers(0, 2**31 - 1, size=n_resamples + n_seeds)
    for b in range(n_resamples):
        if method == "bootstrap":
            draw = rng.integers(0, m, size=m)
        else:
            draw = np.sort(rng.choice(m, size=max(4, int(round(subsample_fraction * m))), replace=False))
        labels = as_labels(fit_predict(_take(base, draw), int(seeds[b])), draw.size, "resample labels")
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
        new = as_labels(fit_predict(base, s), m, "refit labels")
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
        "ari_seed_median": finite_or_none(ari_seed.median()) if ari_seed.len() else None,
        "jaccard_min": finite_or_none(segments["jaccard_mean"].min()),
        "jaccard_mean": finite_or_none(segments["jaccard_mean"].mean()),
        "n_stable": int((segments["reading"] == "stable").sum()),
        "n_moderate": int((segments["reading"] == "moderate").sum()),
        "n_doubtful": int((segments["reading"] == "doubtful").sum()),
        "stable_threshold": stable_threshold,
        "doubtful_threshold": doubtful_threshold,
    }
    return StabilityResult(resamples, segments, summary)
