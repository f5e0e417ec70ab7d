"""Every rule-based method at once: RFM scores, the named RFM segment, the value/engagement cell and the rule tier.

The one composition of the ``rfm`` and ``rules`` sections of a run configuration; the report
stages, the experiment readout (segments as of the start) and the Spark checks use it.
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from segmentation_lib.segment.rfm import RFMScorer, scorer_from_config
from segmentation_lib.segment.rfm_maps import assign_rfm_segments
from segmentation_lib.segment.rules import assign_rule_segments
from segmentation_lib.segment.value_engagement import value_engagement_matrix


def rule_based_segments(features: pl.DataFrame, cfg: Mapping[str, Any], scorer: RFMScorer | None = None) -> pl.DataFrame:
    """Scores, named RFM segment, value/engagement cell and rule tier for every customer of ``features``.

    ``scorer``: a fitted RFMScorer (frozen edges, a reference run); None fits one from ``cfg["rfm"]``.

    >>> import polars as pl
    >>> from segmentation_lib.config import resolve_config
    >>> f = pl.DataFrame({"customer_id": list("abcdef"), "days_since_last": [1, 5, 30, 60, 90, 200],
    ...                   "n_orders": [9, 7, 5, 3, 2, 1], "total_spend": [900.0, 500, 300, 100, 50, 10]})
    >>> rule_based_segments(f, resolve_config({}))["rfm_segment"].to_list()[0]
    'Champions'
    """
    rc = cfg["rfm"]
    scorer = scorer or scorer_from_config(rc).fit(features)
    scored = assign_rfm_segments(scorer.transform(features), rc["segment_map"], bins=rc["bins"])
    scored = value_engagement_matrix(scored, **dict(rc.get("value_engagement") or {}))
    return assign_rule_segments(scored, cfg["rules"])
