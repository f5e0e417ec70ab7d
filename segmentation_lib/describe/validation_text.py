"""Tables and sentences of the validation page (04), from plain tables and dicts.

>>> stability_sentence({"n_resamples": 10, "ari_median": 0.93, "ari_min": 0.8, "n_stable": 3, "n_moderate": 1,
...                     "n_doubtful": 0})
'Median adjusted Rand index across 10 refits: **0.93** (lowest 0.80). 3 segment(s) stable, 1 moderate, 0 doubtful.'
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from segmentation_lib.describe.format import md_table

#: how the checklist shows each status
STATUS_LABELS = {"pass": "✅ pass", "warn": "⚠️ warn", "info": "ℹ️ info"}
#: column headers of the predictive-validity table
PREDICTIVE_HEADERS = {"eta_squared_spend": "holdout spend variance explained",
                      "eta_squared_purchase": "purchase variance explained",
                      "purchase_rate_spread": "highest minus lowest purchase rate",
                      "best_segment": "best segment (holdout spend)",
                      "worst_segment": "worst segment (holdout spend)"}
METHOD_NAMES = {"clusters": "Behavioural segments", "rfm": "RFM segments"}


def summary_markdown(summary_text: str) -> str:
    """The bold-led summary paragraph (``metrics["summary_text"]``).

    >>> summary_markdown("All good.")
    '**Summary.** All good.'
    """
    return f"**Summary.** {summary_text}"


def separation_table(qs: Mapping[str, Any], readings: Any, reading: str | None) -> pl.DataFrame:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin with how to read each.

    ``readings``: ``(lower bound, word)`` pairs of the silhouette scale; ``reading``: the word for this value.

    >>> t = separation_table({"silhouette": 0.3, "calinski_harabasz": 50.0, "calinski_harabasz_rows": 1200,
    ...                       "davies_bouldin": 0.9}, [(0.5, "reasonable"), (0.25, "weak")], "weak")
    >>> t.row(0)
    ('Silhouette', 0.3, '-1..1 (reasonable from 0.5, weak from 0.25); here: weak structure')
    """
    scale = ", ".join(f"{word} from {bound}" for bound, word in readings)
    rows = [("Silhouette", qs.get("silhouette"), f"-1..1 ({scale}); here: {reading or 'undefined'} structure"),
            ("Calinski-Harabasz", qs.get("calinski_harabasz"),
             "higher = more separated; no fixed scale, it grows with the number of customers "
             f"(here {qs.get('calinski_harabasz_rows') or 0:,}), so the clustering page's value, on a smaller sample, is lower"),
            ("Davies-Bouldin", qs.get("davies_bouldin"), "lower = more separated; below 1 is good")]
    return pl.DataFrame(rows, schema={"measure": pl.String, "value": pl.Float64, "how to read it": pl.String}, orient="row")


def separation_markdown(table: pl.DataFrame) -> str:
    """:func:`separation_table` as Markdown (values with three decimals)."""
    return md_table(table, {"value": "float"})


def stability_table(segments: pl.DataFrame, names: Mapping[int, str]) -> pl.DataFrame:
    """Per-segment stability with segment ids replaced by names (ids without a name read "Noise").

    >>> stability_table(pl.DataFrame({"segment": ["0", "-1"], "jaccard_mean": [0.9, 0.4]}), {0: "A"})["segment"].to_list()
    ['A', 'Noise']
    """
    return segments.with_columns(pl.col("segment").cast(pl.Int64).replace_strict(dict(names), default="Noise").alias("segment"))


def stability_sentence(s: Mapping[str, Any]) -> str:
    """Median / lowest ARI across refits and the count of stable, moderate and doubtful segments."""
    return (f"Median adjusted Rand index across {s['n_resamples']} refits: **{s['ari_median']:.2f}** (lowest {s['ari_min']:.2f}). "
            f"{s['n_stable']} segment(s) stable, {s['n_moderate']} moderate, {s['n_doubtful']} doubtful.")


def predictive_table(separation: pl.DataFrame) -> pl.DataFrame:
    """The columns of the predictive-validity separation table that the page shows."""
    return separation.select("method", "n_segments", "eta_squared_spend", "eta_squared_purchase",
                             "purchase_rate_spread", "best_segment", "worst_segment")


def predictive_markdown(table: pl.DataFrame) -> str:
    """:func:`predictive_table` as Markdown with plain headers and shares in %."""
    return md_table(table, {"eta_squared_spend": "pct", "eta_squared_purchase": "pct", "purchase_rate_spread": "pct"},
                    rename=PREDICTIVE_HEADERS)


def predictive_sentence(ps: Mapping[str, Any], holdout_days: int, table: pl.DataFrame) -> str:
    """Cutoff, holdout, customers excluded and which method explains more of the holdout spend.

    >>> t = pl.DataFrame({"method": ["clusters", "rfm"], "eta_squared_spend": [0.2, 0.31]})
    >>> predictive_sentence({"cutoff": "2024-10-03T00:00:00", "new_in_holdout_excluded": 1200}, 90, t)
    'Cutoff 2024-10-03, holdout of 90 days; 1,200 customers first seen in the holdout were excluded. **RFM segments** explain more of the holdout spend (31.0%).'
    """
    winner = table.sort("eta_squared_spend", descending=True).row(0, named=True)
    return (f"Cutoff {ps['cutoff'][:10]}, holdout of {holdout_days} days; {ps['new_in_holdout_excluded']:,} customers first seen "
            f"in the holdout were excluded. **{METHOD_NAMES['clusters'] if winner['method'] == 'clusters' else METHOD_NAMES['rfm']}** "
            f"explain more of the holdout spend ({winner['eta_squared_spend']:.1%}).")


def refit_sentence(refit_k: int | None, k: int, algorithm: str) -> str:
    """A warning when the refit at the cutoff found another number of segments; "" otherwise.

    >>> refit_sentence(5, 5, "kmeans")
    ''
    >>> refit_sentence(3, 5, "hdbscan")[:62]
    'Refitted on the history before the cutoff, hdbscan found **3 s'
    """
    if refit_k is None or refit_k == k:
        return ""
    return (f"Refitted on the history before the cutoff, {algorithm} found **{refit_k} segments** instead of "
            f"{k}: the structure it finds depends on the period, so this comparison describes that refit, "
            "not the segments of this run.")


def migration_sentence(ms: Mapping[str, Any]) -> str:
    """Share of customers that changed RFM segment, moves into at-risk / lost segments and new customers.

    >>> migration_sentence({"changed_share": 0.44, "customers_in_both": 17000, "moved_to_at_risk": 109, "appeared": 3000})
    '44% of the 17,000 customers present at both dates changed segment; **109** moved into an at-risk or lost segment, and 3,000 are new.'
    """
    return (f"{ms['changed_share']:.0%} of the {ms['customers_in_both']:,} customers present at both dates changed segment; "
            f"**{ms['moved_to_at_risk']:,}** moved into an at-risk or lost segment, and {ms['appeared']:,} are new.")


def checks_markdown(checks: pl.DataFrame) -> str:
    """The actionability checklist (check, status with its symbol, reason) as Markdown.

    >>> print(checks_markdown(pl.DataFrame({"check": ["k"], "status": ["pass"], "reason": ["ok"], "value": [1]})))
    | check | status | reason |
    |---|---|---|
    | k | ✅ pass | ok |
    """
    ck = checks.with_columns(pl.col("status").replace_strict(STATUS_LABELS, default=pl.col("status")))
    return md_table(ck.select("check", "status", "reason"))


def truth_markdown(ari: float, nmi: float) -> str:
    """The planted-truth section's heading and its agreement sentence.

    >>> print(truth_markdown(0.957, 0.951))
    ## Agreement with the planted truth
    The demo data has known customer archetypes. Adjusted Rand index **0.96** (1 = identical grouping), normalised mutual information 0.95.
    """
    return (f"## Agreement with the planted truth\nThe demo data has known customer archetypes. Adjusted Rand index "
            f"**{ari:.2f}** (1 = identical grouping), normalised mutual information {nmi:.2f}.")


def truth_wide(confusion: pl.DataFrame) -> pl.DataFrame:
    """Long confusion counts (``segment``, ``truth``, ``count``) as a wide segment x archetype table (0 when absent).

    >>> c = pl.DataFrame({"segment": ["A", "A", "B"], "truth": ["x", "y", "y"], "count": [3, 1, 2]})
    >>> truth_wide(c).rows()
    [('A', 3, 1), ('B', 0, 2)]
    """
    return confusion.pivot(on="truth", index="segment", values="count", sort_columns=True).fill_null(0)
