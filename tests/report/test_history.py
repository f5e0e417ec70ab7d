"""Segments over time (segmentation_lib.report.history + the history stage): a scheduled run on the second
demo snapshot with the first run as its reference recovers the planted migration, keeps ids, names and
colours, exports the movers, appends the customer history and writes the drift numbers.

One extra pipeline run: snapshot 2 of the demo base (``make_snapshots(2000, 7)``, whose first snapshot is
exactly the ``demo_run`` fixture's data) scored with the ``demo_run`` folder as reference.
"""
from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from segmentation_lib.data.demo import make_snapshots
from segmentation_lib.errors import ConfigError, ModelError
from segmentation_lib.report import history as hist
from tests.conftest import DEMO_RUN_CONFIG, check_message


@pytest.fixture(scope="module")
def snapshots():
    return make_snapshots(n_customers=2000, seed=7)


@pytest.fixture(scope="module")
def second_run(demo_run, snapshots, tmp_path_factory):
    """Snapshot 2 run with ``--reference <demo_run>``, into its own reports folder (the reference is the previous run)."""
    from segmentation_lib.report import pipeline

    root = tmp_path_factory.mktemp("snapshot2")
    (root / "data").mkdir()
    for name in ("transactions", "customers", "truth"):
        getattr(snapshots.second, name).write_parquet(root / "data" / f"{name}.parquet")
    cfg = root / "cfg.yaml"
    cfg.write_text(DEMO_RUN_CONFIG, encoding="utf-8")
    first = demo_run["index"].parent
    # the pages the history needs (validation and predicted value are not: they would only add test time)
    index = pipeline.run_pipeline(cfg, out_dir=root / "reports", progress=False, reference=first,
                                  notebooks=["01_exploration", "02_rfm", "03_clustering", "06_since_last_run"])
    return {"first": first, "second": index.parent, "out": root / "reports"}


def _archetype_segments(run, truth: pl.DataFrame) -> dict[str, str]:
    a = pl.read_parquet(run / "assignments.parquet").join(truth, on="customer_id")
    return dict(a.group_by("archetype", "cluster_name").len().sort("len", descending=True)
                .group_by("archetype", maintain_order=True).first().select("archetype", "cluster_name").iter_rows())


def test_frozen_run_keeps_ids_names_edges_and_cuts(second_run):
    first, second = second_run["first"], second_run["second"]
    seg1 = {r["id"]: r["name"] for r in json.loads((first / "segments.json").read_text())}
    seg2 = {r["id"]: r["name"] for r in json.loads((second / "segments.json").read_text())}
    assert seg1 == seg2
    assert (first / "rfm_edges.json").read_text() == (second / "rfm_edges.json").read_text()
    assert json.loads((second / "history.json").read_text())["reference"] == str(first)
    # the same segment id carries the same name in both assignments (so the palette gives it the same colour)
    pairs = [set(pl.read_parquet(r / "assignments.parquet").select("cluster", "cluster_name").unique().iter_rows())
             for r in (first, second)]
    assert pairs[1] <= pairs[0] | {(-2, "No purchases (returns only)")}
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["history"]["frozen"] is True and metrics["history"]["previous"] == str(first)
    assert (metrics["history"]["customers_in_both"], metrics["history"]["appeared"]) == (2000, 100)


def test_planted_migration_recovered_in_movers_csv(second_run, snapshots):
    """The 50 planted movers (10% of the 500 steady customers stopped buying) all move from the steady
    archetype's segment to the dormant archetype's segment; movers.csv lists them with the reason."""
    first, second = second_run["first"], second_run["second"]
    seg = _archetype_segments(first, snapshots.first.truth)
    planted = snapshots.movements.filter("planted").select("customer_id")
    assert planted.height == 50 == snapshots.params["planted_movers"]
    movers = pl.read_csv(second / "movers.csv", schema_overrides={"customer_id": pl.String})
    beh = movers.filter(pl.col("method") == "behavioural")
    got = beh.join(planted, on="customer_id")
    assert got.height == 50
    assert set(got.select("from_segment", "to_segment").unique().iter_rows()) == {(seg["steady"], seg["dormant"])}
    assert got["reason"].str.starts_with("recency score").all()
    # the whole flow steady -> dormant holds the 50 planted customers and at most a few unplanned ones
    flow = beh.filter((pl.col("from_segment") == seg["steady"]) & (pl.col("to_segment") == seg["dormant"]))
    assert 50 <= flow.height <= 55
    # movers.csv is every customer whose segment changed, per method (checked against the two assignments)
    a1 = pl.read_parquet(first / "assignments.parquet")
    a2 = pl.read_parquet(second / "assignments.parquet")
    for method, col in hist.methods({}).items():
        j = a1.select("customer_id", pl.col(col).alias("b")).join(a2.select("customer_id", pl.col(col).alias("a")), on="customer_id")
        assert movers.filter(pl.col("method") == method).height == int((j["a"] != j["b"]).sum()), method
    # ids exactly as in the input
    assert set(movers["customer_id"].to_list()) <= set(snapshots.second.truth["customer_id"].to_list())


def test_exports_history_and_drift(second_run, snapshots):
    first, second, out = second_run["first"], second_run["second"], second_run["out"]
    a2 = pl.read_parquet(second / "assignments.parquet")
    champions = pl.read_csv(second / "exports" / "rfm" / "champions.csv", schema_overrides={"customer_id": pl.String})
    assert champions.height == int((a2["rfm_segment"] == "Champions").sum())
    assert {"customer_id", "segment", "r_score", "f_score", "m_score", "days_since_last", "suggested_action"} <= set(champions.columns)
    assert champions["suggested_action"].str.len_chars().min() > 0
    n_rows = sum(pl.read_csv(p).height for p in (second / "exports" / "behavioural").glob("*.csv"))
    assert n_rows == a2.height
    h = pl.read_parquet(second / "segment_history.parquet")
    assert h.height == 4 * a2.height and set(h["method"].unique()) == {"rfm", "value_engagement", "rules", "behavioural"}
    beh = h.filter(pl.col("method") == "behavioural")
    joined = beh.filter(pl.col("previous_segment").is_null())
    assert joined.height == 100 and (joined["changed_on"].cast(pl.String) == "2025-09-28").all()
    changed = beh.filter(pl.col("previous_segment").is_not_null() & (pl.col("previous_segment") != pl.col("segment")))
    assert (changed["changed_on"].cast(pl.String) == "2025-09-28").all()
    kept = beh.filter(pl.col("previous_segment") == pl.col("segment"))
    assert (kept["changed_on"].cast(pl.String) == "2025-01-01").all()  # carried over from the first run's history
    assert (h["run"] == second.name).all()
    # the reports folder's dataset got this run's file, earlier files untouched
    assert (out / "segment_history.parquet" / f"{second.name}.parquet").is_file()
    drift = json.loads((second / "metrics.json").read_text())["drift"]
    assert set(drift["psi"]) == {"days_since_last", "n_orders", "total_spend", "avg_order_value", "mean_days_between", "tenure_days"}
    # every customer aged 270 days: tenure shifted far (PSI > 0.25) and the run says refit; the fresh fit still agrees
    assert drift["psi"]["tenure_days"] > 0.25 and drift["recommendation"] == "refit"
    assert 0.5 < drift["ari_frozen_vs_fresh"] <= 1.0
    page = (second / "06_since_last_run.html").read_text()
    assert "became" in page and "2,000 customers are in both" in page


def test_first_run_page_says_there_is_no_earlier_run(demo_run):
    page = (demo_run["index"].parent / "06_since_last_run.html").read_text()
    assert "There is no earlier run" in page
    assert pl.read_csv(demo_run["index"].parent / "movers.csv").height == 0


def test_compare_two_runs(second_run, tmp_path):
    html = hist.write_comparison(second_run["first"], second_run["second"], tmp_path / "cmp")
    t = pl.read_parquet(tmp_path / "cmp" / "transitions.parquet")
    assert t.group_by("method").agg(pl.col("count").sum())["count"].to_list() == [2000] * 4
    assert "became" in html.read_text() and "<script" not in html.read_text()


def test_reference_errors(second_run, tmp_path):
    with pytest.raises(ConfigError) as err:
        hist.reference_dir(tmp_path)
    check_message(err, "run.reference", "model.joblib")
    model = hist.load_reference_model(second_run["first"])
    with pytest.raises(ModelError) as err:
        hist.check_reference_model(model, ["n_orders", "total_spend"], second_run["first"])
    check_message(err, "clustering.features")
    # a model saved with other library versions is refused, not silently reused
    import segmentation_lib.score.persistence as persistence

    bad = tmp_path / "old"
    shutil.copytree(second_run["first"], bad)
    real_versions = persistence.library_versions
    with pytest.MonkeyPatch.context() as mp:  # save the same model as if fitted with another scikit-learn
        mp.setattr(persistence, "library_versions", lambda: {**real_versions(), "scikit-learn": "0.0.1"})
        persistence.save_model(persistence.load_model(bad / "model.joblib"), bad / "model.joblib")
    with pytest.raises(ModelError) as err:
        hist.load_reference_model(bad)
    check_message(err, "reference")


def test_cli_compare(second_run, tmp_path):
    from typer.testing import CliRunner

    from segmentation_lib.cli import app

    res = CliRunner().invoke(app, ["compare", str(second_run["first"]), str(second_run["second"]), "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "comparison.html").is_file() and (tmp_path / "c" / "movers.parquet").is_file()
    res = CliRunner().invoke(app, ["compare", str(tmp_path), str(second_run["second"])])
    assert res.exit_code == 2 and "not a finished run folder" in res.output


def test_refit_stage_takes_over_the_previous_ids(demo_run, snapshots, tmp_path):
    """The clustering stage's matching step: a refit on snapshot 2 (another seed, its own names) gets the
    first run's ids and names for the archetypes' segments."""
    import datetime as dt

    from segmentation_lib.config import load_config
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.report.context import RunContext
    from segmentation_lib.report.files import write_json
    from segmentation_lib.report.stages import make_segmenter, match_previous_segments, purchasing

    first = demo_run["index"].parent
    cfg = load_config(demo_run["cfg"])
    (tmp_path / "work").mkdir()
    write_json(tmp_path / "history.json", {"reference": None, "previous": str(first)})
    ctx = RunContext(cfg=cfg, run_dir=tmp_path, seed=99, interactive=False)
    tx = snapshots.second.transactions.filter(pl.col("customer_id").is_not_null()).unique(maintain_order=True)
    feats = purchasing(customer_features(tx, dt.datetime(2025, 9, 28, tzinfo=dt.timezone.utc)))
    k = len(json.loads((first / "segments.json").read_text()))
    seg = make_segmenter(cfg, 99, n_segments=k, names={i: f"Refit {i}" for i in range(k)}).fit(feats)
    rows = match_previous_segments(ctx, seg, feats)
    assert rows and sum(r["status"] == "matched" for r in rows) >= k - 1
    before = _archetype_segments(first, snapshots.first.truth)
    a2 = pl.DataFrame({"customer_id": feats["customer_id"], "cluster": seg.labels_}).with_columns(
        pl.col("cluster").replace_strict(seg.segment_names_, return_dtype=pl.String).alias("cluster_name"))
    truth = snapshots.second.truth
    after = dict(a2.join(truth, on="customer_id").group_by("archetype", "cluster_name").len().sort("len", descending=True)
                 .group_by("archetype", maintain_order=True).first().select("archetype", "cluster_name").iter_rows())
    for arch in ("power", "explorer", "churned"):
        assert after[arch] == before[arch], (arch, before, after)
