"""A model clustering on encoded text attributes (clustering.encodings) round-trips through the saved
model and `segment score`: the same encoded columns, unseen one-hot levels as other, unseen ordinal
levels refused with the column, level and count."""
from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from segmentation_lib.cli import app
from segmentation_lib.data.demo import PLAN_TIERS
from segmentation_lib.features.customer import customer_features
from segmentation_lib.score.persistence import load_model, save_model, score_customers
from segmentation_lib.segment.clustering import CustomerSegmenter

AS_OF = "2025-01-01"
FEATURES = ("days_since_last", "n_orders", "total_spend", "plan_tier", "region")
ENC = {"plan_tier": {"ordinal": list(PLAN_TIERS)}, "region": {"one_hot": {"max_levels": 3}}}


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, demo_project):
    root = tmp_path_factory.mktemp("score_encoded")
    paths = demo_project.paths
    tx = pl.read_parquet(paths["transactions"]).filter(pl.col("customer_id").is_not_null())
    feats = customer_features(tx, as_of=AS_OF).join(pl.read_parquet(paths["customers"]), on="customer_id", how="left")
    model = CustomerSegmenter(features=FEATURES, n_segments=4, random_state=0, encodings=ENC).fit(feats)
    model_path = root / "model.joblib"
    save_model(model, model_path)
    return root, paths, feats, model, model_path


def test_the_saved_model_keeps_the_encoding(encoded):
    _, _, feats, model, model_path = encoded
    loaded = load_model(model_path)
    names = list(loaded.preprocessor_[0].get_feature_names_out())
    assert names == list(model.preprocessor_[0].get_feature_names_out())
    assert names[:4] == ["days_since_last", "n_orders", "total_spend", "plan_tier"]
    assert [n for n in names if n.startswith("region_")][-1] == "region_other" and len(names) == 8
    assert (loaded.predict(feats) == model.labels_).all()


def test_segment_score_on_a_log_joins_the_customer_table_and_gives_the_model_labels(encoded, demo_project):
    root, paths, feats, model, model_path = encoded
    out = root / "scores.parquet"
    res = CliRunner().invoke(app, ["score", "-m", str(model_path), "-d", str(paths["transactions"]),
                                   "-c", str(demo_project.cfg), "-o", str(out), "--as-of", AS_OF])
    assert res.exit_code == 0, res.output
    scores = pl.read_parquet(out).join(
        pl.DataFrame({"customer_id": feats["customer_id"], "expected": model.labels_}), on="customer_id")
    assert scores.height == feats.height and (scores["segment"] == scores["expected"]).all()


def test_unseen_levels_one_hot_go_to_other_ordinal_stop(encoded, tmp_path):
    _, _, feats, model, model_path = encoded
    kept = [n[len("region_"):] for n in model.preprocessor_[0].get_feature_names_out() if n.startswith("region_")]
    folded = feats.filter(~pl.col("region").is_in(kept[:-1])).head(5)  # customers whose region is in 'other'
    assert folded.height == 5
    unseen = folded.with_columns(pl.lit("Antarctica").alias("region"))
    assert (score_customers(model, unseen)["segment"] == score_customers(model, folded)["segment"]).all()
    table = tmp_path / "features.parquet"
    feats.head(20).with_columns(pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("gold"))
                                .otherwise(pl.col("plan_tier")).alias("plan_tier")).write_parquet(table)
    res = CliRunner().invoke(app, ["score", "-m", str(model_path), "-d", str(table), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "'plan_tier'" in res.output and "'gold' (3 customers)" in res.output
