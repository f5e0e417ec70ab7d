"""Actionability checks: size, distinctness, identifiability and count of the segments, pass / warn with reasons."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.validate.common import MIN_SEGMENT_RECALL, check_columns, finite_or_none



# --------------------------------------------------------------------------------------------
# actionability
# --------------------------------------------------------------------------------------------
def _check(name: str, ok: bool, value: float | None, reason: str) -> dict[str, Any]:
    return {"check": name, "status": "pass" if ok else "warn", "value": finite_or_none(value), "reason": reason}


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
    check_columns(seg.schema, [segment_col] + ([noise_col] if noise_col else []), "actionability_checks (segments)")
    table = seg
    if features is not None:
        feat = features.collect() if isinstance(features, pl.LazyFrame) else features
        check_columns(seg.schema, [id_col], "actionability_checks (segments)")
        check_columns(feat.schema, [id_col], "actionability_checks (features)")
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
    check_columns(table.schema, cols, "actionability_checks (feature_cols)")
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
