"""The value stage on the demo project: predicted columns for every customer, archetypes, segments.json, metrics."""
from __future__ import annotations

import json

import polars as pl
import pytest

from segmentation_lib.report import stages
from segmentation_lib.report.context import open_run


@pytest.fixture(scope="module")
def value_run(demo_project, tmp_path_factory):
    ctx = open_run(demo_project.cfg, tmp_path_factory.mktemp("value-run"))
    data = stages.data_stage(ctx)
    rfm = stages.rfm_stage(ctx, data)
    cl = stages.clustering_stage(ctx, data, rfm)
    with pytest.warns(UserWarning):  # at least the Gamma-Gamma correlation note on the demo
        val = stages.value_stage(ctx, data, cl, recompute=True)
    return ctx, data, cl, val


def test_every_customer_gets_the_predicted_columns(value_run) -> None:
    ctx, data, cl, val = value_run
    a = pl.read_parquet(ctx.run_dir / "assignments.parquet")
    assert a.height == cl.assignments.height == data.features.height
    new = {"p_alive", "expected_purchases_30d", "expected_purchases_90d", "expected_purchases_365d", "expected_spend",
           "clv_12m", "churn_risk", "value_churn"}
    assert new <= set(a.columns) and set(cl.assignments.columns) <= set(a.columns)
    n_buyers = stages.purchasing(data.features).height
    assert a["p_alive"].is_not_null().sum() == n_buyers == val.info["customers_predicted"]
    assert val.info["customers_without_prediction"] == a.height - n_buyers
    assert set(a["value_churn"].drop_nulls().unique()) <= {"Champions", "At Risk", "Promising", "Dormant"}


def test_dormant_and_churned_archetypes_have_the_lowest_p_alive(value_run, demo_project) -> None:
    _, _, _, val = value_run
    truth = pl.read_parquet(demo_project.paths["truth"])
    col = [c for c in truth.columns if c != "customer_id"][0]
    means = (val.assignments.join(truth, on="customer_id").group_by(col).agg(pl.col("p_alive").mean()).sort("p_alive"))
    assert set(means[col].head(2)) == {"dormant", "churned"}, means


def test_segments_json_and_metrics_carry_the_predicted_value(value_run) -> None:
    ctx, _, _, val = value_run
    rows = json.loads((ctx.run_dir / "segments.json").read_text())
    assert all({"id", "name", "customers", "share", "revenue_share", "action", "expected_clv", "expected_clv_share"} <= set(r)
               for r in rows)
    total = float(val.assignments["clv_12m"].sum())
    assert sum(r["expected_clv"] for r in rows) == pytest.approx(total)
    m = json.loads((ctx.run_dir / "metrics.json").read_text())["predicted_value"]
    assert m["model"] == "mbgnbd" and set(m["params"]) == {"r", "alpha", "a", "b"}
    assert m["sufficiency_warnings"] == len(val.info["cautions"])
    assert m["calibration_error"] is not None and m["calibration_error"] >= 0
    assert val.buckets is not None and val.buckets.height == 7
    again = stages.value_stage(ctx, stages.data_stage(ctx), stages.clustering_stage(ctx, None, None))  # from the files
    assert again.assignments.equals(val.assignments)
