"""Drift against a reference run: feature PSI, segment share shift, frozen vs fresh agreement, keep/refit.

- :func:`feature_bins`: decile edges and shares of each clustering feature (written to
  ``feature_bins.json`` by every run, so a later run can compare with it);
- :func:`population_stability`: population stability index (PSI) of each feature against those bins,
  ``sum((now - ref) * ln(now / ref))`` over the reference's bins (shares floored at 1e-4);
- :func:`share_shift`: per segment, the share now minus the share in the reference;
- :func:`drift_report`: the three above plus the ARI between the frozen assignment and a fresh fit,
  and a plain recommendation ``keep`` / ``refit`` by the thresholds given.

Common PSI readings: below 0.1 no real change, 0.1-0.25 a moderate shift, above 0.25 a large one.

>>> import polars as pl
>>> f = pl.DataFrame({"x": [float(i) for i in range(100)]})
>>> round(population_stability(feature_bins(f, ["x"]), f)["x"], 6)
0.0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from segmentation_lib.errors import DataError

#: share floor inside the PSI logarithm (an empty bin would make it infinite)
PSI_FLOOR = 1e-4

#: default thresholds of the keep/refit recommendation (``history.drift`` in the configuration)
DEFAULT_THRESHOLDS = {"psi": 0.25, "share_shift": 0.10, "ari": 0.65}


def _values(features: pl.DataFrame, col: str) -> np.ndarray:
    if col not in features.columns:
        raise DataError(f"drift: feature '{col}' is not in the feature table (columns: {features.columns}). "
                        "Fix: compare runs that cluster on the same features.")
    v = features[col].cast(pl.Float64).to_numpy()
    return v[np.isfinite(v)]


def feature_bins(features: pl.DataFrame, columns: Sequence[str], n_bins: int = 10) -> dict[str, dict[str, list[float]]]:
    """Per column: inner quantile ``edges`` (distinct) and the ``shares`` of the ``len(edges) + 1`` bins.

    >>> b = feature_bins(pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), ["x"], n_bins=2)
    >>> b["x"]["edges"], b["x"]["shares"]
    ([2.5], [0.5, 0.5])
    """
    out = {}
    for col in columns:
        v = _values(features, col)
        edges = np.unique(np.quantile(v, np.linspace(0, 1, n_bins + 1)[1:-1])) if v.size else np.array([])
        out[col] = {"edges": [float(e) for e in edges], "shares": _shares(v, edges)}
    return out


def _shares(v: np.ndarray, edges: np.ndarray | Sequence[float]) -> list[float]:
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), v, side="right"), minlength=len(edges) + 1)
    return [float(c) for c in counts / max(v.size, 1)]


def population_stability(reference: Mapping[str, Mapping[str, Sequence[float]]], features: pl.DataFrame) -> dict[str, float]:
    """PSI of each column of ``reference`` (a :func:`feature_bins` dict) in ``features``."""
    out = {}
    for col, ref in reference.items():
        now = np.maximum(np.asarray(_shares(_values(features, col), ref["edges"])), PSI_FLOOR)
        was = np.maximum(np.asarray(ref["shares"], dtype=float), PSI_FLOOR)
        out[col] = float(np.sum((now - was) * np.log(now / was)))
    return out


def share_shift(reference: pl.DataFrame, current: pl.DataFrame, segment_col: str = "segment") -> pl.DataFrame:
    """``segment, share_before, share_now, shift`` (now - before) over the union of segments, by segment.

    >>> a = pl.DataFrame({"segment": ["x", "x", "y", "y"]})
    >>> share_shift(a, pl.DataFrame({"segment": ["x", "y", "y", "y"]}))["shift"].to_list()
    [-0.25, 0.25]
    """
    def shares(t: pl.DataFrame, name: str) -> pl.DataFrame:
        return t.group_by(pl.col(segment_col).cast(pl.String).alias("segment")).agg(
            (pl.len() / t.height).alias(name))

    return (shares(reference, "share_before").join(shares(current, "share_now"), on="segment", how="full", coalesce=True)
            .with_columns(pl.col("share_before", "share_now").fill_null(0.0))
            .with_columns((pl.col("share_now") - pl.col("share_before")).alias("shift")).sort("segment"))


@dataclass
class DriftReport:
    """``psi`` per feature, ``shares`` (share_shift table), ``ari`` frozen vs fresh (None without a fresh
    fit), ``recommendation`` (``keep`` / ``refit``), ``reasons`` (plain sentences), ``summary`` for metrics.json."""

    psi: dict[str, float]
    shares: pl.DataFrame
    ari: float | None
    recommendation: str
    reasons: list[str]
    summary: dict[str, Any]


def drift_report(reference_bins: Mapping[str, Any], features: pl.DataFrame, reference_segments: pl.DataFrame,
                 current_segments: pl.DataFrame, frozen_labels: np.ndarray | None = None,
                 fresh_labels: np.ndarray | None = None, thresholds: Mapping[str, float] | None = None,
                 segment_col: str = "segment") -> DriftReport:
    """Feature PSI, share shift and frozen-vs-fresh ARI with the keep/refit recommendation.

    Refit when any feature's PSI exceeds ``thresholds["psi"]``, any segment's share moved by more
    than ``thresholds["share_shift"]`` (absolute), or the ARI is below ``thresholds["ari"]``.
    """
    from sklearn.metrics import adjusted_rand_score

    th = {**DEFAULT_THRESHOLDS, **dict(thresholds or {})}
    psi = population_stability(reference_bins, features)
    shares = share_shift(reference_segments, current_segments, segment_col)
    ari = None
    if frozen_labels is not None and fresh_labels is not None and len(frozen_labels):
        ari = float(adjusted_rand_score(np.asarray(frozen_labels), np.asarray(fresh_labels)))
    reasons = []
    worst = max(psi.items(), key=lambda kv: kv[1]) if psi else None
    if worst and worst[1] > th["psi"]:
        reasons.append(f"feature '{worst[0]}' shifted (PSI {worst[1]:.2f} > {th['psi']:.2f})")
    big = shares.filter(pl.col("shift").abs() > th["share_shift"])
    for r in big.iter_rows(named=True):
        reasons.append(f"segment '{r['segment']}' moved from {r['share_before']:.1%} to {r['share_now']:.1%} of customers "
                       f"(more than {th['share_shift']:.0%} points)")
    if ari is not None and ari < th["ari"]:
        reasons.append(f"a fresh fit agrees with the frozen model only at ARI {ari:.2f} (< {th['ari']:.2f})")
    rec = "refit" if reasons else "keep"
    summary = {
        "recommendation": rec,
        "reasons": reasons,
        "psi": psi,
        "psi_max": worst[1] if worst else None,
        "psi_max_feature": worst[0] if worst else None,
        "share_shift_max": float(shares["shift"].abs().max()) if shares.height else None,
        "ari_frozen_vs_fresh": ari,
        "thresholds": th,
    }
    return DriftReport(psi, shares, ari, rec, reasons, summary)
