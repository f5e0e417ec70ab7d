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


def test_segment_changes_top_flows_and_movers_hand_counted():
    import datetime as dt

    from segmentation_lib.validate.movement import main_reason, movers, retention_by_segment, segment_changes, top_flows

    before = pl.DataFrame({"customer_id": list("abcde"), "segment": ["Loyal", "Loyal", "Loyal", "New", "Lost"],
                           "r_score": [5, 4, 5, 3, 1], "f_score": [4, 4, 4, 1, 1], "m_score": [4, 4, 4, 2, 1]})
    after = pl.DataFrame({"customer_id": list("abcdf"), "segment": ["At Risk", "At Risk", "Loyal", "Loyal", "New"],
                          "r_score": [2, 4, 5, 4, 5], "f_score": [4, 4, 4, 3, 1], "m_score": [4, 2, 4, 2, 1]})
    mv = movers(before, after)
    assert mv.rows() == [("a", "Loyal", "At Risk"), ("b", "Loyal", "At Risk"), ("d", "New", "Loyal")]
    reasons = dict(main_reason(before, after).iter_rows())
    assert reasons == {"a": "recency score 5 -> 2", "b": "monetary score 4 -> 2", "c": "scores unchanged",
                       "d": "frequency score 1 -> 3"}  # d: recency +1, frequency +2
    flows = top_flows(migration(before, after).counts)
    assert flows.rows() == [("Loyal", "At Risk", 2), ("New", "Loyal", 1)]
    sizes_b = pl.DataFrame({"segment": ["Loyal", "New", "Lost"], "customers": [3, 1, 1], "revenue": [30.0, 5.0, 1.0]})
    sizes_a = pl.DataFrame({"segment": ["At Risk", "Loyal", "New"], "customers": [2, 2, 1], "revenue": [8.0, 25.0, 2.0]})
    ch = segment_changes(sizes_b, sizes_a, order=["Loyal", "At Risk", "New", "Lost"])
    assert ch.select("segment", "customers_before", "customers_now", "customers_change", "revenue_change").rows() == [
        ("Loyal", 3, 2, -1, -5.0), ("At Risk", 0, 2, 2, 8.0), ("New", 1, 1, 0, -3.0), ("Lost", 1, 0, -1, -1.0)]
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    tx = pl.DataFrame({"customer_id": ["a", "a", "c", "c", "d"], "amount": [5.0, 5.0, 5.0, -5.0, 5.0],
                       "timestamp": [t0 + dt.timedelta(days=d) for d in (3, 31, 61, 62, 100)]})
    ret = retention_by_segment(tx, before.select("customer_id", "segment"), t0, t0 + dt.timedelta(days=95))
    got = {(r["segment"], r["month"]): (r["buyers"], r["customers"]) for r in ret.iter_rows(named=True)}
    # 3 whole months; a buys in months 1 and 2, c in month 3 (its return is no purchase), d after the end
    assert got[("Loyal", 1)] == (1, 3) and got[("Loyal", 2)] == (1, 3) and got[("Loyal", 3)] == (1, 3)
    assert got[("New", 1)] == (0, 1) and max(m for _, m in got) == 3
