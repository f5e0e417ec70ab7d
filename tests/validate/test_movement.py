"""segmentation_lib.validate.movement: segment migration between two assignments, hand-counted."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.validate.movement import migration


def test_migration_hand_counted():
    before = pl.DataFrame({"customer_id": list("abcdef"),
                           "segment": ["Champions", "Champions", "Loyal", "Loyal", "Lost", "At Risk"]})
    after = pl.DataFrame({"customer_id": list("abcdeg"),
                          "segment": ["Champions", "At Risk", "Champions", "Hibernating", "Lost", "New"]})
    m = migration(before, after)
    got = {(r["from_segment"], r["to_segment"]): r["count"] for r in m.counts.iter_rows(named=True)}
    assert got == {("Champions", "Champions"): 1, ("Champions", "At Risk"): 1, ("Loyal", "Champions"): 1,
                   ("Loyal", "Hibernating"): 1, ("Lost", "Lost"): 1}
    assert m.summary["changed"] == 3 and m.summary["changed_share"] == pytest.approx(0.6)
    assert (m.summary["appeared"], m.summary["disappeared"], m.summary["customers_in_both"]) == (1, 1, 5)
    assert m.moved_to_at_risk["customer_id"].to_list() == ["b", "d"]
    assert m.counts_wide.columns == ["from_segment", "At Risk", "Champions", "Hibernating", "Lost"]
    assert m.counts_wide["from_segment"].to_list() == ["Champions", "Lost", "Loyal"]
    assert m.counts_wide.row(0) == ("Champions", 1, 1, 0, 0)
    assert m.shares_wide.row(2) == ("Loyal", 0.0, 0.5, 0.5, 0.0)
    sk = {(r["source"], r["target"]): r["count"] for r in m.sankey_data.iter_rows(named=True)}
    assert sk[("(new)", "New")] == 1 and sk[("At Risk", "(gone)")] == 1 and sum(sk.values()) == 7


def test_migration_errors():
    b = pl.DataFrame({"customer_id": ["a", "a"], "segment": ["x", "y"]})
    with pytest.raises(DataError, match="more than one row"):
        migration(b, b)
    with pytest.raises(DataError, match="tier"):
        migration(b, b, segment_col="tier")
