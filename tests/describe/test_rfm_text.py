"""segmentation_lib.describe.rfm_text: score descriptions, score ranges, cut points and axis labels follow
the configuration."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.describe.rfm_text import describe_cut_points, describe_measure, describe_scores, describe_segment_map, score_axis_labels, score_ranges
from segmentation_lib.segment.rfm import RFMScorer


def _table(r, f, m):
    return pl.DataFrame({"days_since_last": r, "n_orders": f, "total_spend": [float(x) for x in m]})


def test_score_descriptions_follow_the_configuration():
    assert describe_measure("avg_order_value") == ("average order value", "highest average order value")
    assert describe_measure("weeks_since", reverse=True) == ("weeks since", "lowest weeks since")
    text = describe_scores({"bins": 4, "frequency": "n_purchase_days", "monetary": "avg_order_value"})
    assert text.startswith("Every customer is scored 1-4 on **Recency** (4 = bought most recently; days since the last purchase)")
    assert "(4 = bought on the most days; number of days with a purchase)" in text
    assert "(4 = highest average order value; average order value)" in text and "most orders" not in text
    t = _table(list(range(1, 11)), list(range(1, 11)), list(range(1, 11)))
    s = RFMScorer().fit(t)  # edges 2.8, 4.6, 6.4, 8.2 on every dimension
    assert describe_scores(s) == describe_scores({"bins": 5})
    wide = score_ranges(s)
    assert wide.columns == ["score", "recency: days since the last purchase", "frequency: number of orders",
                            "monetary: total net spend"]
    assert wide.row(0) == (5, "up to 2.8", "over 8.2", "over 8.2")
    assert wide.row(2) == (3, "over 4.6, up to 6.4", "over 4.6, up to 6.4", "over 4.6, up to 6.4")
    assert describe_cut_points(s) == (
        "A recency score of 5 means the last purchase was at most 2.8 days before the analysis date; a frequency "
        "score of 5 means a number of orders over 8.2; a monetary score of 5 means a total net spend over 8.2.")
    # spread levels leave scores unused: shown as null, never dropped
    with pytest.warns(UserWarning):
        few = RFMScorer().fit(_table([5, 5, 5, 9], [1, 1, 2, 3], [10, 10, 10, 10]))
    assert score_ranges(few)["frequency: number of orders"].to_list() == ["over 2", None, "over 1, up to 2", None, "up to 1"]
    assert "every monetary score is 3" in describe_cut_points(few)
    assert "**rf4**: 9 named segments over the 16 R-F cells of 4-bin scores" in describe_segment_map("default", bins=4)
    assert "recency and frequency only" in describe_segment_map("rf")
    assert "the monetary score decides" in describe_segment_map("default")
    assert score_axis_labels(s) == {"recency": "Recency score (5 = bought most recently)",
                                    "frequency": "Frequency score (5 = most orders)",
                                    "monetary": "Monetary score (5 = highest net spend)"}
    assert score_axis_labels({"bins": 10, "monetary": "avg_order_value"})["monetary"] == \
        "Monetary score (10 = highest average order value)"
