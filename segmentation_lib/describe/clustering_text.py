"""Tables and sentences of the behavioural-clusters page (03), from plain tables and dicts.

>>> k_choice_sentence({"k": 4, "algorithm": "kmeans", "recommendation": {"reasons": "Best silhouette."}})
'**4 segments** (kmeans). Best silhouette.'
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import polars as pl


def k_choice_sentence(info: Mapping[str, Any]) -> str:
    """How many segments and why (``info`` of the clustering stage: ``k``, ``algorithm``, ``recommendation.reasons``)."""
    return f"**{info['k']} segments** ({info['algorithm']}). {info['recommendation']['reasons']}"


def flagged_by_segment(assignments: pl.DataFrame) -> list[tuple[str, int]]:
    """``(segment name, customers)`` of the customers flagged ``is_outlier``, largest first (ties by name).

    >>> a = pl.DataFrame({"cluster_name": ["A", "B", "B", "C"], "is_outlier": [True, True, True, False]})
    >>> flagged_by_segment(a)
    [('B', 2), ('A', 1)]
    """
    if "is_outlier" not in assignments.columns:
        return []
    g = (assignments.filter(pl.col("is_outlier")).group_by("cluster_name").len()
         .sort(["len", "cluster_name"], descending=[True, False]))
    return [(str(name), int(n)) for name, n in g.iter_rows()]


def outlier_sentence(excluded: int, quantile: float, flagged: Sequence[tuple[str, int]]) -> str:
    """The outlier customers left out of fitting and where the model put them; "" when none was left out.

    >>> outlier_sentence(3, 0.999, [("B", 2), ("A", 1)])
    '3 outlier customer(s) (net spend above the 99.9% quantile, flagged `is_outlier`) were left out of fitting, so they cannot pull the segments, and then assigned by the fitted model: B (2), A (1).'
    """
    if not excluded:
        return ""
    return (f"{excluded:,} outlier customer(s) (net spend above the {quantile:.1%} quantile, flagged `is_outlier`) were "
            "left out of fitting, so they cannot pull the segments, and then assigned by the fitted model: "
            + ", ".join(f"{name} ({n:,})" for name, n in flagged) + ".")


def importance_table(relative: pl.DataFrame) -> pl.DataFrame:
    """Heatmap input from ``relative_importance(..., form="wide")``: ``segment`` (the name) and one column per feature.

    >>> importance_table(pl.DataFrame({"segment": [0], "name": ["A"], "rel_n_orders": [0.5]})).columns
    ['segment', 'n_orders']
    """
    cols = [c for c in relative.columns if c not in ("segment", "name")]
    return relative.select(pl.col("name").alias("segment"), *[pl.col(c).alias(c.removeprefix("rel_")) for c in cols])


def profile_table(profiles: pl.DataFrame, features: Sequence[str]) -> pl.DataFrame:
    """The profile table shown: segment, size, share, revenue share and the median of each clustering feature.

    >>> p = pl.DataFrame({"name": ["A"], "size": [3], "share": [1.0], "median_n_orders": [2.0], "mean_n_orders": [2.5]})
    >>> profile_table(p, ["n_orders", "tenure_days"]).columns
    ['segment', 'size', 'share', 'median n orders']
    """
    return profiles.select(
        pl.col("name").alias("segment"), "size", "share", *[c for c in ("revenue_share",) if c in profiles.columns],
        *[pl.col(f"median_{f}").alias(f"median {f.replace('_', ' ')}") for f in features if f"median_{f}" in profiles.columns])


def most_valuable_sentence(profiles: pl.DataFrame) -> str:
    """The segment with the largest revenue share (largest size without revenue) and its shares.

    >>> p = pl.DataFrame({"name": ["A", "B"], "size": [8, 2], "share": [0.8, 0.2], "revenue_share": [0.3, 0.7]})
    >>> most_valuable_sentence(p)
    '**B** is the most valuable segment: 20% of customers bringing 70% of revenue.'
    """
    has_rev = "revenue_share" in profiles.columns
    top = profiles.sort("revenue_share" if has_rev else "size", descending=True).row(0, named=True)
    return (f"**{top['name']}** is the most valuable segment: {top['share']:.0%} of customers"
            + (f" bringing {top['revenue_share']:.0%} of revenue." if has_rev else "."))


def projection_sentence(n_customers: int, explained: Sequence[float]) -> str:
    """What the 2-D picture shows: sample size and the variation its two axes keep.

    >>> projection_sentence(3000, [0.5, 0.21])
    'A seeded sample of 3,000 customers; the two axes keep 71% of the variation in the clustering features.'
    """
    return (f"A seeded sample of {n_customers:,} customers; the two axes keep {sum(explained):.0%} of the variation "
            "in the clustering features.")


def rules_markdown(fidelity: float, rules_text: str) -> str:
    """How well the surrogate rules reproduce the segments, then one bullet per rule (blank lines dropped).

    >>> print(rules_markdown(0.987, "If a then 'X'\\n\\nIf b then 'Y'"))
    The rules below reproduce the segments for **99% of customers**. The same rules as SQL are in `segment_rules.sql` in this run folder.
    <BLANKLINE>
    - If a then 'X'
    - If b then 'Y'
    """
    intro = (f"The rules below reproduce the segments for **{fidelity:.0%} of customers**. "
             f"The same rules as SQL are in `segment_rules.sql` in this run folder.")
    return intro + "\n\n" + "\n".join(f"- {line}" for line in rules_text.splitlines() if line.strip())


#: clustering features that read better in words than as their column name (others: rfm_text.describe_measure)
FEATURE_WORDS = {"mean_days_between": "average days between orders", "tenure_days": "days since the first purchase",
                 "std_days_between": "spread of the days between orders", "return_rate": "share of spend returned",
                 "n_products": "number of distinct products"}


def features_intro(features: Sequence[str]) -> str:
    """What this run's behavioural segments were found from (``clustering.features``), in words.

    >>> features_intro(["days_since_last", "n_orders", "tenure_days"])
    'Segments discovered from how customers buy (days since the last purchase, number of orders and days since the first purchase), rather than from fixed score boundaries.'
    """
    from segmentation_lib.describe.rfm_text import describe_measure

    words = [FEATURE_WORDS.get(str(c)) or describe_measure(str(c))[0] for c in features]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"Segments discovered from how customers buy ({listed}), rather than from fixed score boundaries."
