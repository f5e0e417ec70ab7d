"""segmentation_lib.describe.history_text: the words of the "Since last run" page, from plain tables."""
from __future__ import annotations

import polars as pl

from segmentation_lib.describe import history_text as ht


def test_flows_and_method_text():
    flows = pl.DataFrame({"from_segment": ["Loyal", "New Customers"], "to_segment": ["At Risk", "Hibernating"],
                          "count": [412, 1250]})
    assert ht.flows_sentences(flows) == ["412 Loyal customers became At Risk.", "1,250 New Customers became Hibernating."]
    text = ht.method_text("RFM segments", {"changed": 1662, "customers_in_both": 4000}, flows)
    assert text.startswith("**RFM segments**: 1,662 of 4,000 customers in both runs (41.5%) changed segment.")
    assert "- 412 Loyal customers became At Risk." in text
    assert ht.method_text("X", {"changed": 0, "customers_in_both": 5}, flows.head(0)).endswith("Nobody moved.")


def test_intro_first_run_drift_and_matching():
    s = {"previous_folder": "2026-01-05_020000_aaaaaaaa", "previous_as_of": "2026-01-05", "as_of": "2026-02-05",
         "customers_in_both": 1900, "appeared": 100, "disappeared": 3, "frozen": False}
    intro = ht.intro_text(s)
    assert "1,900 customers are in both, 100 are new since last run and 3 are no longer present." in intro
    assert "matched to the earlier ones by shared customers" in intro
    assert "no earlier run of the configuration 'shop'" in ht.first_run_text("shop")
    d = ht.drift_text({"recommendation": "refit", "reasons": ["feature 'tenure_days' shifted (PSI 2.79 > 0.25)"],
                       "psi_max": 2.786, "psi_max_feature": "tenure_days", "share_shift_max": 0.068,
                       "ari_frozen_vs_fresh": 0.864})
    assert d.startswith("**Recommendation: refit the segments.**")
    assert "tenure_days (PSI 2.79" in d and "6.8 points" in d and "ARI 0.86" in d
    assert ht.drift_text(None) == ""
    t = pl.DataFrame({"name": ["A", "B (split from A)", "C (new)"], "status": ["matched", "split", "new"]})
    assert ht.matching_text(t, []) == ("The refit found 3 behavioural segments: 1 kept its earlier id and name, "
                                       "1 split off an earlier segment, 1 is new.")
