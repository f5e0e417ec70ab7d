"""Usage-only runs (data.path null, data.events set): the report on a product-usage event log alone.

One pipeline run on a small SaaS demo (1,200 accounts, four planted usage archetypes) through
configs/saas_usage_only.yaml, shared by the assertions: the pages exist without a traceback or an empty
chart, the planted archetypes come back, every page speaks of usage, the value page is skipped with its
reason on the index; plus the preflight errors and the usage holdout on a hand-made log.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from segmentation_lib.config import load_config, usage_only
from segmentation_lib.errors import ConfigError
from segmentation_lib.features.usage import session_log
from segmentation_lib.report import pipeline
from segmentation_lib.validate.predictive import predictive_validity
from tests.report.test_end_to_end import html_problems

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "saas_usage_only.yaml"
PAGES = ("01_exploration", "02_rfm", "03_clustering", "04_validation")
#: small but complete (as tests/report/test_end_to_end.py): fewer resamples and candidates
SMALL = {"clustering": {"k_range": [2, 6], "metric_sample_size": 1200, "n_init": 2},
         "validation": {"n_resamples": 3, "sample_size": 1200, "n_seeds": 1}}
#: purchase words no page of a usage-only run may show (outside the skipped value page's reason)
PURCHASE_WORDS = re.compile(r"\b(spend|spent|orders?|purchas\w*|revenue|bought|buy|buys|buying|buyers?|transactions?)\b",
                            re.IGNORECASE)


def visible_text(html: str) -> str:
    body = re.sub(r"<style.*?</style>|<script.*?</script>|<head>.*?</head>", " ", html, flags=re.S)
    body = re.sub(r'src="data:[^"]*"', "", body)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def write_usage_config(root: Path, events: Path, customers: Path, truth: Path, **sections) -> Path:
    cfg = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    cfg["data"]["events"]["path"] = str(events)
    cfg["data"]["customers"]["path"] = str(customers)
    cfg["data"]["truth"] = str(truth)
    for key, value in sections.items():
        cfg[key] = {**(cfg.get(key) or {}), **value}
    path = root / "usage_only.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def saas(tmp_path_factory):
    from segmentation_lib.data.demo_usage import write_demo_usage

    root = tmp_path_factory.mktemp("usage-only")
    paths = write_demo_usage(root / "data", n_accounts=1200, seed=3)
    return root, paths


@pytest.fixture(scope="module")
def run(saas):
    root, paths = saas
    cfg = write_usage_config(root, paths["events"], paths["customers"], paths["truth"], **SMALL,
                             report={"notebooks": [*PAGES, "05_value"]})
    index = pipeline.run_pipeline(cfg, out_dir=root / "reports", progress=False)
    return index.parent


# --------------------------------------------------------------------------- the run


@pytest.mark.slow
def test_pages_exist_without_errors_or_empty_charts(run):
    for page in PAGES:
        html = (run / f"{page}.html").read_text(encoding="utf-8")
        assert html_problems(html) == [], (page, html_problems(html))  # no traceback, error or code
        assert html.count("<img") >= 2, page
    assert not (run / "05_value.html").exists()
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["notebooks"] == [f"{p}.ipynb" for p in PAGES]
    assert manifest["inputs"]["transactions"] == [] and manifest["inputs"]["events"]


@pytest.mark.slow
def test_planted_usage_archetypes_are_recovered(run):
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_clusters"] == 4
    assert metrics["ground_truth_ari"] >= 0.9
    assert metrics["stability_ari_median"] >= 0.9
    a = pl.read_parquet(run / "assignments.parquet")
    assert a.height == 1200 and a["cluster"].min() >= 0  # every account clustered, none "no purchases"


@pytest.mark.slow
def test_rfm_scores_use_the_usage_measures(run):
    edges = json.loads((run / "rfm_edges.json").read_text(encoding="utf-8"))
    text = json.dumps(edges)
    assert "days_since_last_activity" in text and "active_days" in text and "n_events" in text
    assert "total_spend" not in text and "days_since_last\"" not in text


@pytest.mark.slow
def test_every_page_talks_about_usage(run):
    for page in PAGES:
        words = PURCHASE_WORDS.findall(visible_text((run / f"{page}.html").read_text(encoding="utf-8")))
        assert words == [], (page, sorted(set(words)))
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert PURCHASE_WORDS.findall(metrics["summary_text"]) == []
    assert "sessions" in metrics["summary_text"]


@pytest.mark.slow
def test_index_says_why_the_value_page_is_skipped(run):
    html = (run / "index.html").read_text(encoding="utf-8")
    assert 'id="skipped-05_value"' in html and "05_value.html" not in html
    skipped = re.search(r'id="skipped-05_value">(.*?)</p>', html, flags=re.S).group(1)
    assert "does not apply" in skipped and "data.path is null" in skipped
    rest = visible_text(html.replace(skipped, ""))
    assert PURCHASE_WORDS.findall(rest) == [], sorted(set(PURCHASE_WORDS.findall(rest)))


# --------------------------------------------------------------------------- configuration and preflight


def test_usage_only_config_takes_the_usage_measures(saas):
    root, paths = saas
    cfg = load_config(write_usage_config(root, paths["events"], paths["customers"], paths["truth"]))
    assert usage_only(cfg)
    rc = cfg["rfm"]
    assert (rc["recency"], rc["frequency"], rc["monetary"]) == ("days_since_last_activity", "active_days", "n_events")
    assert (rc["value_engagement"]["value"], rc["value_engagement"]["engagement"]) == ("n_events", "active_days")
    plain = load_config(REPO / "configs" / "saas_usage.yaml")  # invoices as well: the purchase measures stay
    assert not usage_only(plain) and plain["rfm"]["recency"] == "days_since_last"


def test_preflight_without_any_log_stops_with_one_paragraph(tmp_path):
    cfg = load_config(write_usage_config(tmp_path, tmp_path / "e.parquet", tmp_path / "c.parquet", tmp_path / "t.parquet"))
    cfg["data"]["events"]["path"] = None
    with pytest.raises(ConfigError) as err:
        pipeline.preflight(cfg, "my.yaml")
    msg = str(err.value)
    assert "\n" not in msg and "data.path is null and data.events.path is not set" in msg and "Fix:" in msg


def test_preflight_says_the_value_page_is_skipped(saas):
    root, paths = saas
    cfg = load_config(write_usage_config(root, paths["events"], paths["customers"], paths["truth"]))
    span = pipeline.preflight(cfg, "usage.yaml")
    assert span["rows"] > 0 and span["purchases"] is None
    assert list(span["skipped"]) == ["05_value"] and "does not apply" in span["skipped"]["05_value"]
    assert pipeline.skipped_pages(cfg, ["01_exploration"]) == {}


def test_preflight_checks_the_holdout_against_the_event_span(saas):
    root, paths = saas
    cfg = load_config(write_usage_config(root, paths["events"], paths["customers"], paths["truth"],
                                         validation={"holdout_days": 400}))
    with pytest.raises(ConfigError, match="holdout_days \\(400\\) is not shorter than the history: the events"):
        pipeline.preflight(cfg, "usage.yaml")


# --------------------------------------------------------------------------- the usage holdout


def _events() -> pl.DataFrame:
    """a: sessions s1 (2 events, Jan 2), s2 (1, Jan 20), s3 (3, Feb 5), s4 (1, Feb 6); b: s5 (1, Jan 1); c: s6 (2, Jan 25)."""
    rows = [("a", "s1", 2, 1), ("a", "s1", 2, 1), ("a", "s2", 20, 1), ("a", "s3", 36, 3), ("a", "s3", 36, 3),
            ("a", "s3", 36, 3), ("a", "s4", 37, 1), ("b", "s5", 1, 1), ("c", "s6", 25, 2), ("c", "s6", 25, 2),
            ("c", "s7", 40, 1)]
    day0 = dt.datetime(2024, 1, 1, 9, tzinfo=dt.timezone.utc)
    return pl.DataFrame({"customer_id": [r[0] for r in rows], "session_id": [r[1] for r in rows],
                         "event": ["login"] * len(rows),
                         "timestamp": [day0 + dt.timedelta(days=r[2] - 1, minutes=i) for i, r in enumerate(rows)]})


def test_session_log_has_one_row_per_session_with_its_events():
    log = session_log(_events())
    assert log.select("customer_id", "order_id", "amount").rows() == [
        ("a", "s1", 2.0), ("a", "s2", 1.0), ("a", "s3", 3.0), ("a", "s4", 1.0), ("b", "s5", 1.0),
        ("c", "s6", 2.0), ("c", "s7", 1.0)]
    no_ids = session_log(_events().drop("session_id"))  # no session ids: one session per active day
    assert no_ids.filter(pl.col("customer_id") == "a")["amount"].to_list() == [2.0, 1.0, 3.0, 1.0]


def test_usage_holdout_measures_future_events_and_retention():
    """Cutoff Feb 1, holdout 30 days: a has 4 events in it (s3, s4), b none, c 1 (s7); retained a and c."""
    log = session_log(_events())
    seg = pl.DataFrame({"customer_id": ["a", "b", "c"], "segment": ["busy", "quiet", "busy"]})
    res = predictive_validity(log, "2024-02-01", {"given": seg}, holdout_days=30, min_segment_size=1)
    rows = {r["segment"]: r for r in res.segments.iter_rows(named=True)}
    assert rows["busy"]["customers"] == 2 and rows["busy"]["purchase_rate"] == 1.0   # both active again
    assert rows["busy"]["mean_holdout_spend"] == 2.5                                # (4 + 1) / 2 events
    assert rows["quiet"]["purchase_rate"] == 0.0 and rows["quiet"]["mean_holdout_spend"] == 0.0
    assert rows["busy"]["retention"] == 1.0  # a and c were active in the 30 days before the cutoff and again after
    assert rows["quiet"]["active_before"] == 0  # b's only session (Jan 1) is older than 30 days
    assert res.summary["calibration_customers"] == 3 and res.summary["new_in_holdout_excluded"] == 0


# --------------------------------------------------------------------------- pages in usage words


def test_value_page_on_its_own_says_why_it_does_not_apply(saas, tmp_path):
    from segmentation_lib.report.pages import NotApplicablePage, notebook_setup

    root, paths = saas
    cfg = write_usage_config(root, paths["events"], paths["customers"], paths["truth"])
    page = notebook_setup("value", str(cfg), str(tmp_path / "run"), seed=1)
    assert isinstance(page, NotApplicablePage)
    assert "does not apply" in page.model_intro() and "data.path is null" in page.model_intro()
    assert page.calibration_figure() == "" and page.value_matrix() == ""  # nothing shown, no error


def test_usage_worded_rewrites_markdown_captions_and_figure_texts():
    import matplotlib.pyplot as plt

    from segmentation_lib.report.pages import Chart, MarkdownText, usage_worded

    fig, ax = plt.subplots()
    ax.set_title("Revenue per month")
    ax.set_ylabel("Orders")
    ax.bar(["Lost", "Revenue"], [3, 4], label="spend")
    ax.legend()
    plt.close(fig)
    chart = usage_worded(Chart(fig, "Revenue peaked in May; one-time buyers are 20%."))
    assert chart.caption == "Events peaked in May; single-session users are 20%."
    texts = {t.get_text() for t in fig.findobj(plt.Text) if t.get_text()}
    assert {"Events per month", "Sessions", "events"} <= texts and not {"Revenue per month", "Orders", "spend"} & texts
    fig.canvas.draw()  # tick labels as drawn: the category 'Revenue' worded, 'Lost' unchanged
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Lost", "Events"]
    assert usage_worded(MarkdownText("The median customer placed 3 orders.")) == "The median customer had 3 sessions."
    assert usage_worded(None) is None


def test_check_data_reads_the_sessions_of_a_usage_only_run(saas):
    from typer.testing import CliRunner

    from segmentation_lib.cli import app

    root, paths = saas
    cfg = write_usage_config(root, paths["events"], paths["customers"], paths["truth"])
    result = CliRunner().invoke(app, ["check-data", "--config", str(cfg), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    sessions = session_log(pl.read_parquet(paths["events"])).height
    assert report["rows_in"] == report["rows_out"] == sessions
