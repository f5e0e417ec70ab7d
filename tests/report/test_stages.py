"""segmentation_lib.report.stages on the review project (1,500 demo customers, a return-only customer, an
attribute rule): validation settings passed through, a misspelled truth path, outliers flagged or excluded,
HDBSCAN noise in the checks."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.report import context, stages
from segmentation_lib.errors import ConfigError


def test_validation_settings_reach_the_validation_functions(review_project, monkeypatch):
    seen = {}
    V = stages

    real_stability, real_checks = V.stability, V.actionability_checks

    def spy_stability(*args, **kwargs):
        seen["stability"] = kwargs
        return real_stability(*args, **kwargs)

    def spy_checks(*args, **kwargs):
        seen["checks"] = kwargs
        return real_checks(*args, **kwargs)

    monkeypatch.setattr(V, "stability", spy_stability)
    monkeypatch.setattr(V, "actionability_checks", spy_checks)
    ctx = context.open_run(review_project / "cfg.yaml", review_project / "run-a", overrides={
        "validation": {"method": "subsample", "n_seeds": 1, "min_fidelity": 0.99, "min_effect_size": 3.0}})
    data = stages.data_stage(ctx, recompute=True)
    rfm = stages.rfm_stage(ctx, data, recompute=True)
    clusters = stages.clustering_stage(ctx, data, rfm, recompute=True)
    stages.validation_stage(ctx, data, rfm, clusters)
    assert seen["stability"]["method"] == "subsample" and seen["stability"]["n_seeds"] == 1
    assert seen["checks"]["min_fidelity"] == 0.99 and seen["checks"]["min_effect_size"] == 3.0


def test_misspelled_truth_path_is_a_config_error(review_project):
    ctx = context.open_run(review_project / "cfg.yaml", review_project / "run-b",
                          overrides={"data": {"truth": str(review_project / "data" / "truht.parquet")}})
    data = stages.data_stage(ctx, recompute=True)
    rfm = stages.rfm_stage(ctx, data, recompute=True)
    clusters = stages.clustering_stage(ctx, data, rfm, recompute=True)
    with pytest.raises(ConfigError, match="truht.parquet.*does not exist"):
        stages.validation_stage(ctx, data, rfm, clusters)


def _run_stages(review_project, name, overrides):
    ctx = context.open_run(review_project / "cfg.yaml", review_project / name, overrides=overrides)
    data = stages.data_stage(ctx, recompute=True)
    rfm = stages.rfm_stage(ctx, data, recompute=True)
    clusters = stages.clustering_stage(ctx, data, rfm, recompute=True)
    return ctx, data, clusters, stages.validation_stage(ctx, data, rfm, clusters)


def test_flagged_outliers_carried_per_customer_excluded_from_fit_and_counted(review_project):
    ctx, data, clusters, val = _run_stages(review_project, "run-outliers", {
        "quality": {"outliers": "flag", "outlier_quantile": 0.99}, "validation": {"n_resamples": 2, "n_seeds": 0}})
    # expected by hand from the definition: net spend per customer above its linear 99% quantile
    net = data.transactions.group_by("customer_id").agg(pl.col("amount").sum())
    cut = net["amount"].quantile(0.99, interpolation="linear")
    expected = set(net.filter(pl.col("amount") > cut)["customer_id"])
    assert len(expected) == 15  # 1,501 customers: 1% above the 99% quantile
    a = clusters.assignments
    assert set(a.filter(pl.col("is_outlier"))["customer_id"]) == expected
    assert a.filter(pl.col("is_outlier"))["cluster"].min() >= 0  # still assigned a segment
    feats = stages.purchasing(data.features)
    fitted = set(feats[clusters.model.sample_index_]["customer_id"])
    assert clusters.model.n_excluded_from_fit_ == 15 and not fitted & expected and len(fitted) == feats.height - 15
    m = val.metrics
    assert (m["outlier_customers"], m["outliers_flagged"], m["excluded_from_fit"], m["outliers_excluded"]) == (15, 15, 15, 0)
    assert "15 outlier customer(s)" in m["summary_text"] and data.quality["customers_outliers"] == 15
    assert pl.read_parquet(ctx.run_dir / "excluded_customers.parquet").height == data.quality["customers_dropped"]


def test_outliers_exclude_listed_never_silently_dropped(review_project):
    ctx, data, clusters, val = _run_stages(review_project, "run-exclude", {
        "quality": {"outliers": "exclude", "outlier_quantile": 0.99}, "validation": {"n_resamples": 2, "n_seeds": 0}})
    gone = pl.read_parquet(ctx.run_dir / "excluded_customers.parquet").filter(pl.col("reason") == "outliers")
    assert gone.height == 15 and val.metrics["outliers_excluded"] == 15
    assert not set(gone["customer_id"]) & set(clusters.assignments["customer_id"])
    assert clusters.assignments.height + data.quality["customers_dropped"] == data.quality["customers_in"]
    assert "is_outlier" not in clusters.assignments.columns


def test_hdbscan_noise_is_not_a_segment_in_the_checks(review_project):
    _, _, clusters, val = _run_stages(review_project, "run-noise", {
        "clustering": {"algorithm": "hdbscan", "noise": "label"}, "validation": {"n_resamples": 2, "n_seeds": 0}})
    checks = {r["check"]: r for r in val.checks.iter_rows(named=True)}
    a = clusters.assignments.filter(pl.col("cluster") != stages.NO_PURCHASE_LABEL)
    noise = float((a["cluster"] == -1).mean())
    assert noise > 0 and checks["n_segments"]["value"] == clusters.info["k"]
    assert checks["noise"]["status"] == "info" and checks["noise"]["value"] == pytest.approx(noise)
    shares = a.filter(pl.col("cluster") >= 0).group_by("cluster").len()["len"] / a.height
    assert checks["min_share"]["value"] == pytest.approx(shares.min())
    assert val.metrics["actionability_pass"][1] == val.checks.height - 1


def test_frozen_edges_setting_loads_the_edges_file(tmp_path) -> None:
    # rfm.frozen_edges names a file written by an earlier run (rfm_edges.json); fit must not read files
    import polars as pl

    from segmentation_lib.segment.rfm import RFMScorer

    feats = pl.DataFrame({"days_since_last": [1, 5, 9, 30, 200], "n_orders": [9, 5, 3, 2, 1],
                          "total_spend": [900.0, 300.0, 120.0, 50.0, 10.0]})
    RFMScorer().fit(feats).save_edges(tmp_path / "rfm_edges.json")
    cfg = {"rfm": {"bins": 5, "recency": "days_since_last", "frequency": "n_orders", "monetary": "total_spend",
                   "frozen_edges": str(tmp_path / "rfm_edges.json")}}
    scorer = stages.make_rfm_scorer(cfg).fit(feats.head(2))  # frozen: the two rows do not move the edges
    assert scorer.transform(feats)["rfm_code"].to_list() == ["555", "444", "333", "222", "111"]


def test_per_measure_bins_in_a_run_stage_and_page(review_project):
    """rfm.bins per measure: the stage scores frequency 1-3 and recency / monetary 1-5, the 5-bin
    map reads frequency 1, 2, 3 as 1, 3, 5, and the RFM page states and shows the per-measure ranges."""
    from segmentation_lib.report import pages
    from segmentation_lib.segment.rfm_maps import load_segment_map

    from tests.conftest import REVIEW_CONFIG

    cfg = review_project / "cfg-bins.yaml"
    cfg.write_text(REVIEW_CONFIG + "rfm: {bins: {recency: 5, frequency: 3, monetary: 5}}\n")
    page = pages.notebook_setup("rfm", str(cfg), str(review_project / "run-bins"))
    t = page.rfm.table
    assert page.cfg["rfm"]["bins"] == {"recency": 5, "frequency": 3, "monetary": 5}
    assert sorted(t["f_score"].unique().to_list()) == [1, 2, 3]
    assert t["r_score"].max() == 5 and t["m_score"].max() == 5
    # independently: the default 5-bin map looked up at (r, centre of f on the 5 scale, m)
    table = load_segment_map("default", bins=5).table()
    f5 = t.with_columns(pl.col("f_score").replace_strict({1: 1, 2: 3, 3: 5}, return_dtype=pl.Int8).alias("_f"))
    expect = f5.join(table.rename({"f_score": "_f"}).rename({"rfm_segment": "expected"}),
                     on=["r_score", "_f", "m_score"], how="left", maintain_order="left")
    assert expect["rfm_segment"].null_count() == 0
    assert expect["rfm_segment"].to_list() == expect["expected"].to_list()
    assert "1-3 (3 = " in page.scores_intro() and "1-3 reads as 1, 3, 5" in page.scores_intro()
    ranges = page.score_ranges()
    assert "Frequency score (3 = " in page.axis["frequency"] and "Recency score (5 = " in page.axis["recency"]
    assert "frequency score of 3 means" in ranges and "recency score of 5 means" in ranges
    assert page.segment_map().axes and page.score_heatmap().axes


def _in_memory_and_partitioned(review_project, prefix: str, overrides: dict) -> dict:
    """The data, RFM and clustering stages of the review project twice: in memory ("mem") and with the log
    split into customer partitions of 1,000 rows ("parts"); name -> (ctx, data, rfm, clusters)."""
    runs = {}
    for name, rows in (("mem", None), ("parts", 1000)):
        over = {**overrides, **({"data": {"partition_rows": rows}} if rows else {})}
        ctx = context.open_run(review_project / "cfg.yaml", review_project / f"{prefix}-{name}", overrides=over)
        data = stages.data_stage(ctx, recompute=True)
        rfm = stages.rfm_stage(ctx, data, recompute=True)
        runs[name] = (ctx, data, rfm, stages.clustering_stage(ctx, data, rfm, recompute=True))
    return runs


@pytest.mark.parametrize("outliers", ["keep", "flag"])
def test_out_of_core_data_stage_gives_the_same_run(review_project, outliers):
    """data.partition_rows below the log's length: the log is cleaned and summarised per customer partition,
    and the data-quality report, the feature table, the segments and the exploration numbers are the same."""
    from segmentation_lib.describe.activity import monthly_activity, top_line

    runs = _in_memory_and_partitioned(review_project, f"run-ooc-{outliers}",
                                      {"quality": {"outliers": outliers, "outlier_quantile": 0.99}})
    (_, mem, _, c_mem), (ctx, parts, _, c_parts) = runs["mem"], runs["parts"]
    n_parts = len(list((ctx.work / stages.TRANSACTION_PARTS).glob("part-*.parquet")))
    assert n_parts == -(-mem.quality["rows_in"] // 1000) and len(parts.parts()) == n_parts > 1
    assert not (ctx.work / "transactions.parquet").exists()
    assert parts.quality == mem.quality
    assert parts.features.equals(mem.features)
    assert c_parts.assignments.equals(c_mem.assignments)
    assert monthly_activity(parts.parts()).equals(monthly_activity(mem.parts()))
    a, b = top_line(parts.parts(), parts.features), top_line(mem.parts(), mem.features)
    assert a == b  # money summed exactly (data.quality.exact_sum): the same for any partitioning
    # the later notebooks read the parts back from the run folder
    again = stages.data_stage(ctx)
    assert again.scan().select(pl.len()).collect().item() == mem.transactions.height


def test_out_of_core_validation_and_value_stages_give_the_same_numbers(review_project):
    """The validation and value stages read a partitioned log part by part: the same figures as in memory."""
    out = {}
    runs = _in_memory_and_partitioned(review_project, "run-ooc-val", {"validation": {"n_resamples": 2, "n_seeds": 0}})
    for name, (ctx, data, rfm, clusters) in runs.items():
        out[name] = (ctx, stages.validation_stage(ctx, data, rfm, clusters),
                     stages.value_stage(ctx, data, clusters, recompute=True))
    (_, val_m, value_m), (ctx, val_p, value_p) = out["mem"], out["parts"]
    assert len(list((ctx.work / stages.TRANSACTION_PARTS).glob("part-*.parquet"))) > 1
    assert val_p.metrics == val_m.metrics
    assert value_p.assignments.equals(value_m.assignments)  # BTYD summary, models and predictions per customer
    assert value_p.info == value_m.info and value_p.buckets is not None
    assert value_p.buckets.equals(value_m.buckets)  # the holdout calibration plot table
