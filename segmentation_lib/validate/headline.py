"""Headline metrics: the validation results folded into one JSON-safe dict for ``metrics.json``."""
from __future__ import annotations

from typing import Any

import polars as pl

from segmentation_lib.validate.common import finite_or_none
from segmentation_lib.validate.movement import MigrationResult
from segmentation_lib.validate.predictive import PredictiveResult
from segmentation_lib.validate.separation import QualityResult
from segmentation_lib.validate.resampling import StabilityResult
from segmentation_lib.validate.truth import TruthResult



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
        "silhouette": finite_or_none(q.get("silhouette")),
        "calinski_harabasz": finite_or_none(q.get("calinski_harabasz")),
        "davies_bouldin": finite_or_none(q.get("davies_bouldin")),
        "noise_share": finite_or_none(q.get("noise_share")),
        "dbcv": finite_or_none(q.get("dbcv")),
        "stability_ari_median": finite_or_none(s.get("ari_median")),
        "stability_ari_min": finite_or_none(s.get("ari_min")),
        "stability_jaccard_min": finite_or_none(s.get("jaccard_min")),
        "stability_doubtful_segments": s.get("n_doubtful"),
        "stable_threshold": s.get("stable_threshold"),
        "doubtful_threshold": s.get("doubtful_threshold"),
        "migration_changed_share": finite_or_none(m.get("changed_share")),
        "migration_to_at_risk_share": finite_or_none(m.get("moved_to_at_risk_share")),
        "checks_passed": None,
        "checks_total": None,
        "truth_ari": finite_or_none(truth.ari) if truth is not None else None,
        "truth_nmi": finite_or_none(truth.nmi) if truth is not None else None,
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
                "eta_squared_spend": finite_or_none(r["eta_squared_spend"]),
                "eta_squared_log_spend": finite_or_none(r["eta_squared_log_spend"]),
                "purchase_rate_spread": finite_or_none(r["purchase_rate_spread"]),
            }
        out["new_in_holdout_excluded"] = predictive.summary.get("new_in_holdout_excluded")
    return out
