"""segmentation_lib.data.demo_usage: the SaaS demo is repeatable, its planted usage archetypes behave as
described, and clustering on the usage features recovers them (adjusted Rand index >= 0.9)."""
from __future__ import annotations

import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from segmentation_lib.data.demo_usage import KEY_FEATURES, demo_usage, write_demo_usage
from segmentation_lib.features.usage import usage_features
from segmentation_lib.segment.clustering import CustomerSegmenter

USAGE = ["active_days_90d", "sessions_per_active_week", "distinct_events", "events_per_session", "days_since_last_activity"]


@pytest.fixture(scope="module")
def saas():
    demo = demo_usage(n_accounts=300, seed=7)
    feats = usage_features(demo.events, "2025-01-01", key_features=KEY_FEATURES)
    return demo, feats.join(demo.truth, on="customer_id")


def test_same_seed_same_data_and_one_truth_row_per_account(saas, tmp_path):
    demo, _ = saas
    again = demo_usage(n_accounts=300, seed=7)
    assert again.events.equals(demo.events) and again.transactions.equals(demo.transactions)
    assert demo.truth.height == demo.customers.height == 300
    assert demo.truth["archetype"].value_counts().sort("archetype").rows() == [
        ("dormant", 75), ("explorer", 60), ("power", 60), ("steady", 105)]
    assert set(demo.transactions["customer_id"]) == set(demo.truth["customer_id"])
    paths = write_demo_usage(tmp_path, n_accounts=20, seed=1)
    assert pl.read_parquet(paths["events"]).equals(demo_usage(20, 1).events)


def test_archetypes_differ_as_planted(saas):
    _, f = saas
    med = {r["archetype"]: r for r in f.group_by("archetype").agg(pl.col(USAGE).median()).iter_rows(named=True)}
    assert med["dormant"]["days_since_last_activity"] > 100 > med["steady"]["days_since_last_activity"]
    assert med["explorer"]["distinct_events"] >= 18 and med["steady"]["distinct_events"] <= 5
    assert med["power"]["sessions_per_active_week"] > 3 * med["steady"]["sessions_per_active_week"]
    assert med["power"]["events_per_session"] > med["steady"]["events_per_session"] > med["explorer"]["events_per_session"]


def test_clustering_on_usage_alone_recovers_the_planted_groups(saas):
    _, f = saas
    seg = CustomerSegmenter(features=USAGE, order_by="active_days_90d").fit(f)
    assert len(set(seg.labels_.tolist())) == 4  # k recommended from the sweep
    assert adjusted_rand_score(f["archetype"].to_numpy(), seg.labels_) >= 0.9
