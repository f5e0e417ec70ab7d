"""segment.sizes: the one per-segment size table behind every summary of the kit."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.describe.tables import segment_summary
from segmentation_lib.segment.profiles import segment_profiles
from segmentation_lib.segment.sizes import segment_sizes, with_shares
from segmentation_lib.segment.value_engagement import value_engagement_summary


def test_hand_computed_sizes_and_shares() -> None:
    t = pl.DataFrame({"s": ["x", "y", "y", None], "total_spend": [6.0, 1.0, 1.0, 2.0]})
    out = segment_sizes(t, "s")
    assert out.select("s", "customers", "revenue", "share").rows() == [("x", 1, 6.0, 0.25), ("y", 2, 2.0, 0.5),
                                                                       (None, 1, 2.0, 0.25)]
    assert out["revenue_share"].to_list() == pytest.approx([0.6, 0.2, 0.2], abs=1e-15)


@pytest.mark.parametrize("spend", [[5.0, -5.0, 0.0], [-1.0, -2.0, -3.0]])
def test_every_summary_leaves_the_revenue_share_undefined_when_total_revenue_is_not_positive(spend) -> None:
    # before one core table, profiles divided by a negative total and segments.json by 1.0
    t = pl.DataFrame({"customer_id": ["a", "b", "c"], "seg": ["A", "B", "B"], "total_spend": spend,
                      "value_engagement": ["Champions", "Dormant", "Dormant"]})
    assert segment_sizes(t, "seg")["revenue_share"].null_count() == 2
    assert segment_summary(t, "seg")["revenue_share"].null_count() == 2
    assert value_engagement_summary(t)["revenue_share"].null_count() == 4
    assert segment_profiles(t.select("customer_id", "total_spend"), [0, 1, 1])["revenue_share"].null_count() == 2


def test_shares_of_listed_cells_use_the_column_sums() -> None:
    out = with_shares(pl.DataFrame({"cell": ["p", "q"], "customers": [0, 4], "revenue": [0.0, 8.0]}))
    assert out.rows() == [("p", 0, 0.0, 0.0, 0.0), ("q", 4, 8.0, 1.0, 1.0)]


def test_a_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="total_spend"):
        segment_sizes(pl.DataFrame({"s": ["a"]}), "s")
