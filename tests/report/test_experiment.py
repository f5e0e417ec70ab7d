"""`segment experiment` end to end on the small demo: the HTML page, its text and experiment.json."""
from __future__ import annotations

import html
import json
import re

import polars as pl
import pytest
from typer.testing import CliRunner

from segmentation_lib.cli import app
from segmentation_lib.data.demo_experiment import write_demo_experiment


def _strict(text: str) -> dict:
    def bad(name: str):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def page(demo_project, tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    paths = write_demo_experiment(demo_project.root / "data", root / "exp", seed=1, split_change=True)
    ex = pl.read_parquet(paths["exposures"]).with_columns(
        pl.col("variant").replace({"treatment": "<b>offer</b>"}))
    ex.write_parquet(paths["exposures"])
    paths["truth"].write_text(paths["truth"].read_text().replace('"treatment"', '"<b>offer</b>"'))
    out = root / "reports"
    result = CliRunner().invoke(app, ["experiment", "--config", str(demo_project.cfg), "--exposures",
                                      str(paths["exposures"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {"html": result.output.strip().splitlines()[-1], "out": out}


@pytest.mark.slow  # the page fixture: one papermill run of notebooks/experiment.ipynb (about 20 s)
def test_the_page_says_what_the_numbers_say(page) -> None:
    raw = open(page["html"], encoding="utf-8").read()
    body = re.sub(r"<style.*?</style>|<script.*?</script>", "", raw, flags=re.S)
    words = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))
    for phrase in ("Conclusion", "customers were exposed", "Sample ratio (planned: equal shares)", "Cochran's Q",
                   "Simpson's paradox flagged", "stratified by stratum", "Recommendation per segment",
                   "Planted conversion effects", "Segments as of the start (2024-12-01)"):
        assert phrase in words, phrase
    # the 90/10 ramp-up against a planned equal split: the SRM check fails and no segment effect is claimed
    assert "Do not act on this readout yet" in words and "No segment effect is claimed" in words
    assert "&lt;b&gt;offer&lt;/b&gt;" in raw and "<b>offer</b>" not in raw  # user strings escaped
    assert raw.count("<img") >= 1  # the forest plot
    assert "<title>Experiment by segment</title>" in raw
    index = (page["out"] / "index.html").read_text(encoding="utf-8")  # listed beside the runs, name escaped
    assert "Experiments read by segment" in index and "&lt;b&gt;offer&lt;/b&gt; " in index
    assert f"{html.escape(page['html'].split('/')[-2])}/experiment.html" in index
    assert "Traceback" not in words and "Error" not in words


@pytest.mark.slow
def test_experiment_json_is_strict_and_complete(page) -> None:
    folder = next(p for p in page["out"].iterdir() if p.name.startswith("experiment-"))
    doc = _strict((folder / "experiment.json").read_text())
    assert {"lifts", "srm", "heterogeneity", "simpson", "recommendations", "settings", "exposures", "truth"} <= set(doc)
    assert doc["settings"]["variants"] == ["control", "<b>offer</b>"]
    stratum = next(s for s in doc["simpson"] if s["by"] == "stratum")
    assert stratum["flagged"]
    assert sorted(p.name for p in folder.iterdir()) == ["experiment.html", "experiment.ipynb", "experiment.json", "index.html"]
    assert not [p for p in page["out"].iterdir() if p.name.startswith((".tmp-", "failed-"))]


def test_bad_exposures_are_one_message_and_no_folder(demo_project, tmp_path) -> None:
    bad = tmp_path / "ex.csv"
    bad.write_text("customer,arm\n1,control\n")
    result = CliRunner().invoke(app, ["experiment", "--config", str(demo_project.cfg), "--exposures", str(bad),
                                      "--out", str(tmp_path / "reports")])
    assert result.exit_code == 2
    assert "column 'customer_id' (experiment.columns.customer_id) not found" in result.output
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
