"""segmentation_lib.segment.value_engagement: the value x engagement matrix, its cuts and summary (and the
text describing it)."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError
from segmentation_lib.describe.rfm_text import describe_value_engagement
from segmentation_lib.segment.value_engagement import (
    VALUE_ENGAGEMENT_LABELS, value_engagement_cuts, value_engagement_matrix, value_engagement_summary)

HH, HL, LH, LL = (VALUE_ENGAGEMENT_LABELS[k] for k in ((True, True), (True, False), (False, True), (False, False)))


def test_value_engagement_matrix_quadrants():
    t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0, 800.0, 500.0], "n_orders": [9, 8, 1, 1, 3]})
    # medians: spend 500, orders 3; high means strictly above
    out = value_engagement_matrix(t)["value_engagement"].to_list()
    assert out == [LH, HH, LL, HL, LL]
    assert HL == "High value, low engagement"  # named by what it measures: no recency, so no "At Risk" promise
    absolute = value_engagement_matrix(t, value_cut=100, engagement_cut=2, absolute=True)["value_engagement"]
    assert absolute.to_list() == [LH, HH, LL, HL, HH]
    with pytest.raises(ConfigError):
        value_engagement_matrix(t, value_cut=5)


def test_value_engagement_cuts_summary_and_text_follow_the_configuration():
    t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0, 800.0, 500.0], "n_orders": [9, 8, 1, 1, 3],
                      "n_purchase_days": [5, 8, 1, 1, 2]})
    assert value_engagement_cuts(t) == {"value": 500.0, "engagement": 3.0}
    assert value_engagement_cuts(t, engagement="n_purchase_days", engagement_cut=0.75) == {"value": 500.0, "engagement": 5.0}
    scored = value_engagement_matrix(t)
    summ = value_engagement_summary(scored)
    assert summ.select("value_engagement", "high_value", "high_engagement", "customers", "revenue").rows() == [
        (HH, True, True, 1, 900.0), (HL, True, False, 1, 800.0),
        (LH, False, True, 1, 10.0), (LL, False, False, 2, 520.0)]
    assert summ["revenue_share"].to_list() == pytest.approx([900 / 2230, 800 / 2230, 10 / 2230, 520 / 2230])
    text = describe_value_engagement(t, summ)
    assert text.startswith("**High value** means a total net spend above the median (500); **high engagement** means "
                           "a number of orders above the median (3).")
    assert "**1 high-value customer has low engagement**" in text and "hold 36% of revenue" in text
    assert "At Risk group of the predicted value page" in text and "first group for a win-back" not in text
    other = describe_value_engagement(t, value="total_spend", engagement="n_purchase_days", value_cut=0.9, engagement_cut=0.75)
    assert "above the 90th percentile (860)" in other and "number of days with a purchase above the upper quartile (5)" in other
    assert "above 100" in describe_value_engagement(None, value_cut=100, engagement_cut=2, absolute=True)
    aov = describe_value_engagement(t.with_columns(avg_order_value=pl.col("total_spend") / 2), value="avg_order_value")
    assert aov.startswith("**High value** means an average order value above the median (250);")
