"""Shared inputs and thresholds of the validation step.

Every validation function works for any segmentation the kit produces (RFM maps, rules, clusters)
and depends on the rest of the kit only through small arguments: arrays, polars tables, an
sklearn-compatible estimator or a ``fit_predict(data, seed) -> labels`` callable.

>>> as_labels([0, 1, 1]).tolist()
[0, 1, 1]
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Union

import numpy as np
import polars as pl

from segmentation_lib.errors import DataError


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
def as_matrix(X: Any, name: str = "X") -> np.ndarray:
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


def as_labels(labels: Any, n: int | None = None, name: str = "labels") -> np.ndarray:
    """1-D label array; numeric labels stay numeric (negative = noise), others become strings with
    nulls mapped to -1 codes via :func:`noise_mask` (null segment = noise)."""
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


def noise_mask(labels: np.ndarray) -> np.ndarray:
    """Noise / missing labels: negative integers (hdbscan -1, sklearn HDBSCAN -2/-3)."""
    if np.issubdtype(labels.dtype, np.number):
        return labels < 0
    return labels == "\x00noise"


def finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None




def check_columns(df_schema: Mapping[str, Any], cols: Iterable[str], what: str) -> None:
    missing = [c for c in cols if c not in df_schema]
    if missing:
        raise DataError(
            f"{what}: column(s) {missing} not found (columns: {list(df_schema)}). Fix: rename them to the "
            f"canonical names (docs/architecture.md) or pass the column names as arguments."
        )
