"""segmentation_lib.validate.headline: the headline metrics of every measure, JSON-safe."""
from __future__ import annotations

import json

import polars as pl
import pytest
from sklearn.cluster import KMeans

from segmentation_lib.validate.actionability import actionability_checks
from segmentation_lib.validate.headline import headline_metrics
from segmentation_lib.validate.movement import migration
from segmentation_lib.validate.predictive import predictive_validity
from segmentation_lib.validate.separation import internal_quality
from segmentation_lib.validate.resampling import stability
from segmentation_lib.validate.truth import ground_truth_agreement
from tests.conftest import segments_table as _segments


def test_headline_metrics_json_safe(blobs, planted_log):
    X, y = blobs
    q = internal_quality(X, y, sample_size=500)
    s = stability(KMeans(5, n_init=1), X, n_resamples=2, n_seeds=0, sample_size=500)
    ids = ["L1", "L2", "L3", "L4", "D1", "D2", "D3", "D4"]
    p = predictive_validity(planted_log, "2024-07-01",
                            {"rfm": pl.DataFrame({"customer_id": ids, "segment": ["a"] * 4 + ["b"] * 4})})
    seg = _segments()
    m = migration(seg, seg)
    c = actionability_checks(seg, fidelity=0.9)
    t = ground_truth_agreement(seg, seg.rename({"segment": "archetype"}))
    h = headline_metrics(q, s, p, m, c, t)
    json.dumps(h, allow_nan=False)
    assert h["silhouette"] > 0.85 and h["stability_ari_median"] > 0.9
    assert h["migration_changed_share"] == 0.0 and h["checks_passed"] == 5 and h["truth_ari"] == 1.0
    assert h["separation"]["rfm"]["eta_squared_spend"] == pytest.approx(1.0)
    assert h["new_in_holdout_excluded"] == 2
    assert h["separation"]["rfm"]["n_segments"] == 2
    assert (h["stable_threshold"], h["doubtful_threshold"]) == (0.75, 0.6)
    empty = headline_metrics()
    json.dumps(empty, allow_nan=False)
    assert empty["stability_ari_median"] is None
