"""segmentation_lib.validate.truth: agreement with the demo data's planted archetypes."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.validate.truth import ground_truth_agreement


def test_ground_truth_agreement():
    a = pl.DataFrame({"customer_id": ["1", "2", "3", "4", "5", "6", "9"], "segment": [2, 2, 0, 0, 1, 1, 1]})
    t = pl.DataFrame({"customer_id": ["1", "2", "3", "4", "5", "6", "7"],
                      "archetype": ["vip", "vip", "new", "new", "lost", "new", "lost"]})
    r = ground_truth_agreement(a, t)
    assert r.summary["matched"] == 6 and r.summary["unmatched_assignments"] == 1 and r.summary["unmatched_truth"] == 1
    conf = {(x["segment"], x["truth"]): x["count"] for x in r.confusion.iter_rows(named=True)}
    assert conf == {("0", "new"): 2, ("1", "lost"): 1, ("1", "new"): 1, ("2", "vip"): 2}
    assert r.summary["purity"] == pytest.approx(5 / 6)
    assert 0 < r.ari < 1 and 0 < r.nmi < 1
    perfect = ground_truth_agreement(a.filter(pl.col("customer_id") != "6"), t)
    assert perfect.ari == pytest.approx(1.0) and perfect.nmi == pytest.approx(1.0)


def test_ground_truth_no_match_names_the_setting():
    a = pl.DataFrame({"customer_id": ["u1", "u2"], "segment": [0, 1]})
    t = pl.DataFrame({"customer_id": ["1", "2"], "archetype": ["x", "y"]})
    with pytest.raises(DataError, match=r"set data\.truth: null \(it is only for the demo data\) or point it") as e:
        ground_truth_agreement(a, t)
    assert str(e.value).startswith("No customer id of the segment assignments is in the truth table")
