"""The plain-language summary paragraph of a run, written from its metrics."""
from __future__ import annotations

from typing import Any, Mapping





#: how :func:`summary_text` words each stability reading of :func:`validation.stability_word`
STABILITY_WORDS = {"stable": "stable", "moderate": "moderately stable", "doubtful": "doubtful"}


def summary_text(m: Mapping[str, Any]) -> str:
    """One plain paragraph for the run index, written from the numbers.

    Wording thresholds are not hard-coded here: stability is read with ``validation.stable_threshold``
    / ``doubtful_threshold`` (carried in ``m["validation"]``, defaults
    :data:`validation.STABLE_THRESHOLD` / :data:`validation.DOUBTFUL_THRESHOLD`), the same cut-offs as
    the per-segment table; separation with :data:`validation.SILHOUETTE_READINGS`.

    >>> m = {"customers": 10, "transactions": 50, "as_of": "2024-01-01", "n_clusters": 3, "algorithm": "kmeans",
    ...      "n_rfm_segments": 5, "stability_ari_median": 0.7, "validation": {"stable_threshold": 0.65}}
    >>> summary_text(m).split(". ")[1]
    'The behavioural segments are stable when refitted (median ARI 0.70).'
    """
    from segmentation_lib.validate.common import DOUBTFUL_THRESHOLD, STABLE_THRESHOLD
    from segmentation_lib.validate.resampling import silhouette_reading, stability_word

    v = m.get("validation") or {}
    parts = [f"{m['customers']:,} customers with {m['transactions']:,} transactions up to {m['as_of']} "
             f"were segmented into {m['n_clusters']} behavioural segments ({m['algorithm']}) and "
             f"{m['n_rfm_segments']} RFM groups."]
    if m.get("noise_share"):
        parts.append(f"{m['noise_share']:.1%} of the customers fit no behavioural segment well (HDBSCAN noise).")
    if m.get("outliers_flagged"):
        parts.append(f"{m['outliers_flagged']:,} outlier customer(s) (highest net spend) were left out of fitting the "
                     "behavioural segments and then assigned by the fitted model (flagged is_outlier).")
    if m.get("outliers_excluded"):
        parts.append(f"{m['outliers_excluded']:,} outlier customer(s) (highest net spend) were excluded from every "
                     "table (listed in excluded_customers.parquet).")
    sil = m.get("silhouette")
    if sil is not None:
        parts.append(f"The behavioural segments show {silhouette_reading(sil)} structure (silhouette {sil:.2f}).")
    s = m.get("stability_ari_median")
    if s is not None:
        stable = v.get("stable_threshold") if v.get("stable_threshold") is not None else STABLE_THRESHOLD
        doubtful = v.get("doubtful_threshold") if v.get("doubtful_threshold") is not None else DOUBTFUL_THRESHOLD
        word = STABILITY_WORDS[stability_word(s, stable, doubtful)]
        parts.append(f"The behavioural segments are {word} when refitted (median ARI {s:.2f}).")
    pc, pr = m.get("predictive_clusters"), m.get("predictive_rfm")
    if pc is not None and pr is not None:
        better = "the behavioural segments" if pc > pr else "the RFM groups"
        parts.append(f"Over the holdout period {better} explain more of the variation in customers' spend "
                     f"({100 * max(pc, pr):.1f}% vs {100 * min(pc, pr):.1f}%).")
        k_cal = m.get("predictive_clusters_refit_k")
        if k_cal is not None and k_cal != m["n_clusters"]:
            parts.append(f"(Refitted on the history before the holdout, {m['algorithm']} found {k_cal} segments "
                         f"instead of {m['n_clusters']}, which limits that comparison.)")
    ap = m.get("actionability_pass")
    if ap:
        parts.append(f"{ap[0]} of {ap[1]} actionability checks pass.")
    return " ".join(parts)
