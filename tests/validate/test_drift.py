"""segmentation_lib.validate.drift: PSI, share shift, frozen-vs-fresh ARI and the keep/refit recommendation, hand-computed."""
from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.validate.drift import drift_report, feature_bins, population_stability, share_shift


def test_feature_bins_and_psi_hand_computed():
    ref = pl.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]})
    bins = feature_bins(ref, ["x"], n_bins=2)
    assert bins == {"x": {"edges": [2.5], "shares": [0.5, 0.5]}}
    now = pl.DataFrame({"x": [1.0] * 9 + [4.0]})  # 90% below the edge, 10% above
    expected = 0.4 * math.log(0.9 / 0.5) + (-0.4) * math.log(0.1 / 0.5)
    assert population_stability(bins, now)["x"] == pytest.approx(expected)  # 0.8789
    assert population_stability(bins, ref)["x"] == 0.0
    # an empty bin is floored at 1e-4, not infinite
    assert population_stability(bins, pl.DataFrame({"x": [1.0, 1.0]}))["x"] == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5))


def test_share_shift_hand_counted():
    before = pl.DataFrame({"segment": ["A"] * 6 + ["B"] * 4})
    now = pl.DataFrame({"segment": ["A"] * 3 + ["C"] * 1})
    t = share_shift(before, now)
    assert t["segment"].to_list() == ["A", "B", "C"]
    assert t["shift"].to_list() == pytest.approx([0.15, -0.4, 0.25])
    assert t["share_now"].to_list() == pytest.approx([0.75, 0.0, 0.25])


def test_recommendation_follows_the_thresholds():
    bins = {"x": {"edges": [2.5], "shares": [0.5, 0.5]}}
    same = pl.DataFrame({"x": [1.0, 4.0] * 50})
    seg = pl.DataFrame({"segment": ["A", "B"] * 50})
    labels = np.array([0, 1] * 50)
    keep = drift_report(bins, same, seg, seg, labels, labels)
    assert (keep.recommendation, keep.ari, keep.reasons) == ("keep", 1.0, [])
    assert keep.summary["psi_max_feature"] == "x" and keep.summary["share_shift_max"] == 0.0
    moved = drift_report(bins, pl.DataFrame({"x": [1.0] * 90 + [4.0] * 10}), seg, seg, labels, labels)
    assert moved.recommendation == "refit" and "PSI 0.88 > 0.25" in moved.reasons[0]
    # a fresh fit that splits differently (ARI 0 on this layout) asks for a refit; a looser threshold keeps
    fresh = np.array([0, 0, 1, 1] * 25)
    assert drift_report(bins, same, seg, seg, labels, fresh).recommendation == "refit"
    assert drift_report(bins, same, seg, seg, labels, fresh, thresholds={"ari": -1.0}).recommendation == "keep"
    shifted = pl.DataFrame({"segment": ["A"] * 70 + ["B"] * 30})
    r = drift_report(bins, same, seg, shifted, thresholds={"share_shift": 0.1})
    assert r.recommendation == "refit" and r.ari is None and len(r.reasons) == 2  # A up 20 points, B down 20


def test_missing_feature_is_a_clear_error():
    with pytest.raises(DataError, match="'y'"):
        population_stability({"y": {"edges": [], "shares": [1.0]}}, pl.DataFrame({"x": [1.0]}))
