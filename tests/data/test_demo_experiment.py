"""The demo experiment: deterministic, its truth recorded, the planted effect recoverable, the split change planted."""
from __future__ import annotations

import json

import polars as pl
import pytest

from segmentation_lib.data.demo_experiment import make_experiment, write_demo_experiment
from segmentation_lib.errors import ConfigError
from segmentation_lib.experiment.readout import read_experiment


@pytest.fixture(scope="module")
def demo(demo_data):
    paths = demo_data()
    return pl.read_parquet(paths["transactions"]), pl.read_parquet(paths["truth"]), paths


def test_same_seed_same_exposures_and_truth(demo, tmp_path) -> None:
    _, _, paths = demo
    a = write_demo_experiment(paths["transactions"].parent, tmp_path / "a", seed=3, split_change=True)
    b = write_demo_experiment(paths["transactions"].parent, tmp_path / "b", seed=3, split_change=True)
    assert a["exposures"].read_bytes() == b["exposures"].read_bytes()
    truth = json.loads(a["truth"].read_text())
    assert truth["effects"] == {"treatment": {"explorer": 0.08, "dormant": -0.03}} and truth["split_change"]
    assert truth["effect_by_archetype"]["power"] == {"treatment": 0.0}


def test_split_change_and_one_exposure_per_customer(demo) -> None:
    tx, truth, _ = demo
    ex = make_experiment(tx, truth, split_change=True, seed=2).exposures
    assert ex["customer_id"].n_unique() == ex.height == truth.height
    share = ex.group_by("stratum").agg((pl.col("variant") == "treatment").mean().alias("t")).sort("stratum")
    ramp, full = share.filter(pl.col("stratum").str.starts_with("ramp"))["t"].item(), share.filter(
        pl.col("stratum").str.starts_with("full"))["t"].item()
    assert 0.05 < ramp < 0.16 and 0.45 < full < 0.55


def test_the_planted_effect_is_what_the_readout_recovers(demo) -> None:
    tx, truth, _ = demo
    ex = make_experiment(tx, truth, seed=5, effects={"treatment": {"explorer": 0.30}}).exposures
    frame = ex.join(truth, on="customer_id")
    r = read_experiment(frame, ["archetype"], ["conversion"], covariate=None)
    row = r.lifts.filter(pl.col("segment") == "explorer").row(0, named=True)
    assert row["abs_low"] <= 0.30 <= row["abs_high"] and row["significant"]


def test_bad_effects_are_refused(demo) -> None:
    tx, truth, _ = demo
    with pytest.raises(ConfigError, match="archetypes among"):
        make_experiment(tx, truth, effects={"treatment": {"whales": 0.1}})
