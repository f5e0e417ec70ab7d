"""Text attributes from the customer table (clustering.encodings) through the report stages and the
clustering page, and the preflight that stops an undeclared text feature before any notebook."""
from __future__ import annotations

import pytest

from segmentation_lib.data.demo import PLAN_TIERS
from segmentation_lib.errors import DataError
from segmentation_lib.report import context, pages, stages
from segmentation_lib.report.files import read_json
from segmentation_lib.report.pipeline import preflight

FEATURES = ["days_since_last", "n_orders", "total_spend", "plan_tier", "region"]
ENCODED = {"clustering": {"features": FEATURES, "k": 4,
                          "encodings": {"plan_tier": {"ordinal": list(PLAN_TIERS)},
                                        "region": {"one_hot": {"max_levels": 3}}}},
           "validation": {"n_resamples": 2, "n_seeds": 0}}


def test_preflight_stops_an_undeclared_text_feature(review_project):
    ctx = context.open_run(review_project / "cfg.yaml", review_project / "run-text-preflight",
                           overrides={"clustering": {"features": FEATURES}})
    with pytest.raises(DataError, match=r"clustering feature 'plan_tier' is text \(not numeric; 4 levels\).*encodings"):
        preflight(ctx.cfg, review_project / "cfg.yaml")


def test_encoded_text_features_run_through_the_stages_and_the_clustering_page(review_project):
    ctx = context.open_run(review_project / "cfg.yaml", review_project / "run-text", overrides=ENCODED)
    preflight(ctx.cfg, review_project / "cfg.yaml")  # declared: passes
    data = stages.data_stage(ctx, recompute=True)
    rfm = stages.rfm_stage(ctx, data, recompute=True)
    clusters = stages.clustering_stage(ctx, data, rfm, recompute=True)
    names = [str(n) for n in clusters.model.preprocessor_[0].get_feature_names_out()]
    assert names[:4] == FEATURES[:4] and names[-1] == "region_other" and len(names) == 8
    bins = read_json(ctx.run_dir / "feature_bins.json")
    assert "region_other" in str(bins) and "plan_tier" in str(bins)
    stages.validation_stage(ctx, data, rfm, clusters)
    page = pages.ClusteringPage(ctx)
    prof = page.profiles
    assert set(prof["median_plan_tier"].to_list()) <= set(PLAN_TIERS)  # the level name of the median
    share_cols = [c for c in prof.columns if c.startswith("mean_region_")]
    assert len(share_cols) == 4
    assert ((prof.select(share_cols).sum_horizontal() - 1.0).abs() < 1e-9).all()  # shares of each segment
    table = page.profile_table()
    assert "region = other (share)" in str(table) and "median plan tier" in str(table)

