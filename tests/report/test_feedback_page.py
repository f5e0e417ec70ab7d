"""The "What customers say" section of the profile pages (RFM, clustering, value) on demo data with planted feedback,
its absence without a feedback section, and the preflight error for a declared column the customer table lacks."""
from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from segmentation_lib.errors import DataError
from segmentation_lib.report import pages

REPO = Path(__file__).resolve().parents[2]


def _config(root: Path, paths: dict, feedback: dict | None) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))
    cfg["data"]["path"] = str(paths["transactions"])
    cfg["data"]["customers"]["path"] = str(paths["customers"])
    cfg["data"]["truth"] = str(paths["truth"])
    cfg["report"] = {**(cfg.get("report") or {}), "out_dir": str(root / "reports")}
    cfg["clustering"].update(k_range=[2, 6], metric_sample_size=1500, n_init=2)
    cfg["validation"].update(n_resamples=2, sample_size=1500, n_seeds=1, metric_sample_size=1500)
    if feedback is not None:
        cfg["feedback"].update(feedback)
    path = root / f"cfg-{len(list(root.glob('cfg-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from segmentation_lib.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("feedback")
    paths = write_demo_data(root / "data", n_customers=1500, seed=11, feedback=True)
    on = _config(root, paths, {"nps": "nps_score", "tickets": "ticket_count", "sentiment": "sentiment"})
    return {"root": root, "paths": paths, "on": on, "off": _config(root, paths, None), "run": root / "run"}


@pytest.mark.slow
def test_profile_pages_show_feedback_per_segment_for_every_method(project) -> None:
    rfm = pages.notebook_setup("rfm", str(project["on"]), str(project["run"]), seed=7)
    text = rfm.feedback()
    assert text.startswith("## What customers say\n\n")
    for title in ("### RFM segments", "### Value / engagement cells", "### Rule-based tiers"):
        assert text.count(title) == 1, title
    assert "NPS differs between the RFM segments beyond what chance would give" in text
    # every answer counted once per method: the NPS answers of the segments add up to the customer table's
    answered = pl.read_parquet(project["paths"]["customers"])["nps_score"].drop_nulls().len()
    fb = pl.read_parquet(rfm.ctx.work / "feedback.parquet")
    assert fb.height == 1500 and fb["nps"].drop_nulls().len() == answered
    table = text.split("### Rule-based tiers\n\n")[1].split("\n\n")[0].splitlines()
    assert table[0].startswith("| segment | customers | NPS answers |")
    assert sum(int(line.split(" | ")[2].replace(",", "")) for line in table[2:]) == answered

    cl = pages.notebook_setup("clustering", str(project["on"]), str(project["run"]), seed=7)
    assert "### Behavioural segments" in cl.feedback()
    value = pages.notebook_setup("value", str(project["on"]), str(project["run"]), seed=7)
    vt = value.feedback()
    assert "### Predicted value x churn-risk cells" in vt and "### Churn-risk tiers" in vt
    assert not rfm.notes and not cl.notes

    # no feedback configured: the section is simply absent
    from segmentation_lib.report.context import open_run

    ctx = open_run(str(project["off"]), str(project["run"]), seed=7)
    assert pages.feedback_markdown(ctx, rfm.data, [("RFM segments", rfm.rfm.table, "rfm_segment")]) == ""


def test_preflight_names_a_missing_feedback_column(project) -> None:
    from segmentation_lib.config import load_config
    from segmentation_lib.report.pipeline import preflight

    bad = _config(project["root"], project["paths"], {"nps": "nps", "csat": None})
    with pytest.raises(DataError) as err:
        preflight(load_config(bad), bad)
    msg = str(err.value)
    assert msg.startswith(f"{project['paths']['customers']}: column 'nps' (feedback.nps) is not in the customer table")
    assert "The closest is 'nps_score'." in msg and "Fix: set feedback.nps to one of these columns" in msg
    preflight(load_config(project["on"]), project["on"])  # the declared columns exist


@pytest.mark.slow
def test_feedback_from_the_event_log_matches_the_customer_table(project) -> None:
    import datetime as dt

    from segmentation_lib.report import stages
    from segmentation_lib.report.context import open_run

    c = pl.read_parquet(project["paths"]["customers"])
    when = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
    nps = c.drop_nulls("nps_score").select("customer_id", pl.lit(when).alias("timestamp"),
                                           pl.lit("nps_response").alias("event"), pl.col("nps_score").cast(pl.Float64).alias("value"))
    early = nps.with_columns(pl.lit(when - dt.timedelta(days=30)).alias("timestamp"), pl.lit(0.0).alias("value"))
    tickets = (c.select("customer_id", pl.int_ranges(0, "ticket_count").alias("i")).explode("i").drop_nulls("i")
               .select("customer_id", pl.lit(when).alias("timestamp") + pl.duration(minutes=pl.col("i")),
                       pl.lit("support_ticket").alias("event"), pl.lit(None, pl.Float64).alias("value")))
    path = project["root"] / "events.parquet"
    pl.concat([early, nps, tickets]).write_parquet(path)  # an earlier answer of 0 is replaced by the latest
    cfg = yaml.safe_load(project["off"].read_text(encoding="utf-8"))
    cfg["data"]["events"].update(path=str(path), columns={"customer_id": "customer_id", "timestamp": "timestamp",
                                                          "event": "event", "value": "value", "session_id": None})
    cfg["feedback"]["events"] = {"nps": "nps_response", "csat": None, "tickets": "support_ticket"}
    cfg_path = project["root"] / "cfg-events.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    from segmentation_lib.config import load_config
    from segmentation_lib.report.pipeline import preflight

    preflight(load_config(cfg_path), cfg_path)  # the event names exist
    ctx = open_run(str(cfg_path), str(project["root"] / "run-events"), seed=7)
    data = stages.data_stage(open_run(str(project["on"]), str(project["run"]), seed=7))  # the first test's, or computed
    features = data.features
    fb = stages.feedback_stage(ctx, data, recompute=True)
    want = features.select("customer_id", pl.col("nps_score").cast(pl.Float64).alias("nps"),
                           pl.col("ticket_count").cast(pl.Float64).alias("tickets"))
    assert fb.equals(want)
