"""The rendered pages of the demo run read right: run-specific score-boundary text, the reworded retention
sentence, an action per behavioural segment, the run title, a glossary on every page, a caption under every
chart, the sufficiency banner and export links on the index; and one notebook re-run reuses the earlier stages."""
from __future__ import annotations

import html as htmllib
import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from segmentation_lib.describe.glossary import GLOSSARY, PAGE_TERMS
from segmentation_lib.segment.rfm_maps import load_segment_map

PAGES = {"01_exploration": "exploration", "02_rfm": "rfm", "03_clustering": "clustering", "04_validation": "validation",
         "05_value": "value"}


def _text(path: Path) -> str:
    """The visible text of a rendered page (no style/script, tags removed, entities decoded, spaces collapsed)."""
    body = re.sub(r"<style.*?</style>|<script.*?</script>", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", body)))
    return re.sub(r" ([:;,.])", r"\1", text)


@pytest.fixture(scope="module")
def run_dir(demo_run) -> Path:
    return demo_run["index"].parent


def test_score_boundaries_and_retention_wording(run_dir) -> None:
    rfm = _text(run_dir / "02_rfm.html")
    assert "learned from this data (quantiles)" not in rfm
    assert "All three scores use boundaries learned from this data (equal-count quantiles)." in rfm
    exploration = _text(run_dir / "01_exploration.html")
    assert "follows that long" not in exploration
    assert "Of the customers whose first purchase lies far enough back, " in exploration


def test_boundaries_follow_the_settings() -> None:
    from segmentation_lib.describe.rfm_page_text import boundaries_markdown

    frozen = boundaries_markdown({"frozen_edges": "/runs/2024-01/rfm_edges.json", "percentiles": [0.5]})
    assert frozen.startswith("The score boundaries are **not learned from this data**: they are the frozen edges in "
                             "`rfm_edges.json`") and "quantiles" not in frozen and "percentiles" not in frozen
    mixed = boundaries_markdown({"thresholds": {"recency": [30, 90, 180]}, "percentiles": {"monetary": [0.2, 0.8]}})
    assert mixed.startswith("Recency scores use **fixed thresholds** from the configuration (30, 90, 180); frequency "
                            "scores use boundaries **learned from this data** (equal-count quantiles); monetary scores "
                            "use boundaries **learned from this data** at the configured percentiles (20%, 80%).")


def test_segments_json_actions_are_actions(demo_run, run_dir) -> None:
    rows = json.loads((run_dir / "segments.json").read_text())
    actions = load_segment_map("default", bins=5).actions
    a = pl.read_parquet(run_dir / "assignments.parquet")
    for r in rows:
        # independently: the most common RFM segment of the cluster, and its action in the segment map
        sub = a.filter(pl.col("cluster") == r["id"])["rfm_segment"].value_counts(sort=True)
        top, n = sub.row(0)
        assert r["dominant_rfm_segment"] == top and r["dominant_rfm_share"] == pytest.approx(n / sub["count"].sum())
        assert r["action"] == actions[top] and not r["action"].startswith("mostly")
        assert r["rfm_composition"] == f"mostly RFM '{top}' ({100 * n / sub['count'].sum():.0f}%)"
    index = _text(demo_run["index"])
    assert "Suggested action" in index and all(r["action"] in index for r in rows)


def test_run_title(demo_run) -> None:
    from segmentation_lib.describe.index_text import run_title

    assert "Run test-demo " in _text(demo_run["index"])
    # the default name on real data gives way to the data file's name; on the demo data it stays
    assert run_title({"run": {"name": "demo"}, "data": {"path": "/srv/shop/orders_2024.csv"}}) == "orders_2024"
    assert run_title({"run": {"name": "demo"}, "data": {"path": "/repo/data/demo/transactions.parquet"}}) == "demo"
    assert run_title({"run": {"name": "demo"}, "data": {"path": "/lake/sales/"}}) == "sales"


@pytest.mark.parametrize("stem", list(PAGES))
def test_every_page_has_its_glossary_and_captions(run_dir, stem) -> None:
    raw = (run_dir / f"{stem}.html").read_text(encoding="utf-8")
    text = _text(run_dir / f"{stem}.html")
    assert "Terms on this page." in text
    for term in PAGE_TERMS[PAGES[stem]]:
        assert f"{term[0].upper() + term[1:]}: {GLOSSARY[term]}" in text, term
    # every figure is followed by its caption (an italic sentence) before anything else is shown
    images = [m.end() for m in re.finditer(r"<img [^>]*>", raw)]
    assert images, stem
    for end in images:
        after = raw[end:end + 4000]
        nxt = re.search(r"<em>([^<]+)</em>", after)
        assert nxt is not None and "<img " not in after[:nxt.start()], (stem, after[:300])
        assert nxt.group(1).rstrip().endswith("."), nxt.group(1)


def test_captions_come_from_the_numbers(run_dir) -> None:
    a = pl.read_parquet(run_dir / "assignments.parquet").drop_nulls("rfm_segment")
    counts = a["rfm_segment"].value_counts().sort(["count", "rfm_segment"], descending=[True, False])
    top, n = counts.row(0)
    share = 100 * n / a.height
    text = _text(run_dir / "02_rfm.html")
    shown = f"{share:.0f}%" if share >= 9.95 else f"{share:.1f}%".replace(".0%", "%")
    assert f"The largest segment, {top}, holds {shown} of customers and " in text


def test_index_banner_glossary_and_export_links(run_dir, tmp_path) -> None:
    from segmentation_lib.report.html import render_run_index

    text = _text(run_dir / "index.html")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["data_sufficiency"] == [] and "Thin data" not in text  # 2,000 customers over years: enough
    assert "Terms on this page" in text and GLOSSARY["silhouette"] in text
    # the same run with thin data and exported lists (the files another step writes to exports/)
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("segments.json", "data_quality.json", "manifest.json"):
        shutil.copy(run_dir / name, copy / name)
    metrics["data_sufficiency"] = ["Short history: the log covers 90 days from the first purchase to the observation "
                                   "end. Fix: load a longer transaction history.", "<b>Odd</b>: x"]
    (copy / "metrics.json").write_text(json.dumps(metrics))
    segments = json.loads((copy / "segments.json").read_text())
    first = segments[0]["name"]
    (copy / "exports" / "behavioural").mkdir(parents=True)  # the layout of exports/<method>/<segment>.csv
    slug = re.sub(r"[^0-9a-z]+", "_", first.lower()).strip("_")
    (copy / "exports" / "behavioural" / f"{slug}.csv").write_text("customer_id\n1\n")
    render_run_index(copy, json.loads((copy / "manifest.json").read_text()))
    raw = (copy / "index.html").read_text(encoding="utf-8")
    banner = _text(copy / "index.html")
    assert ("Thin data: read these figures with care Short history: the log covers 90 days from the first purchase to "
            "the observation end. Treat with care: cohort retention, the holdout checks") in banner
    assert "<b>Odd</b>" not in raw and "&lt;b&gt;Odd&lt;/b&gt;" in raw  # escaped by the template
    assert raw.count('href="exports/') == 1 and f'href="exports/behavioural/{slug}.csv"' in raw


def test_one_notebook_rerun_reuses_the_earlier_stages(demo_run, run_dir, tmp_path, monkeypatch) -> None:
    """The RFM page (notebook 02) on a run folder that kept work/ (report.keep_work, or notebook 01 run in the
    lab) reads stage 1's files: reading or cleaning the log, or computing features, would fail here."""
    from segmentation_lib.data import quality
    from segmentation_lib.features import customer
    from segmentation_lib.report import pages, stages
    from segmentation_lib.report.context import open_run

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert not (copy / "work").exists()
    stages.data_stage(open_run(demo_run["cfg"], copy), recompute=True)  # what notebook 01 / keep_work leaves

    def recompute(*args, **kwargs):
        raise AssertionError("stage 1 recomputed")

    monkeypatch.setattr(quality, "load_transactions", recompute)
    monkeypatch.setattr(customer, "customer_features", recompute)
    page = pages.notebook_setup("rfm", str(demo_run["cfg"]), str(copy))
    expect = pl.read_parquet(run_dir / "assignments.parquet").select("customer_id", "rfm_segment").sort("customer_id")
    assert page.rfm.table.select("customer_id", "rfm_segment").sort("customer_id").equals(expect)
    assert page.score_boundaries().startswith("All three scores use")
