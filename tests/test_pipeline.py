"""Report pipeline: run folders, manifest, HTML, failure handling; and the whole pipeline on demo data."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import polars as pl
import pytest
from _helpers import kernel_pids

from segmentation_lib.report import pipeline
from segmentation_lib.describe import activity
from segmentation_lib.describe import format as report
from segmentation_lib.report import context, files, runs
from segmentation_lib.report import stages
from segmentation_lib.errors import ConfigError, PipelineError, SegmentationError

PARAMS = 'config_path = ""\nrun_dir = ""\nseed = 0\nrun_id = ""'


def _tiny_notebook(path: Path, body: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "segmentation-kit", "display_name": "Python (segmentation-kit)", "language": "python"}
    cell = nbformat.v4.new_code_cell(PARAMS)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(src) for src in body]
    nbformat.write(nb, path)
    return path


GOOD = [
    "import json, os, pathlib\nimport matplotlib.pyplot as plt\nfrom IPython.display import Markdown, display",
    "fig, ax = plt.subplots(figsize=(4, 3)); ax.plot([1, 2], [3, 4]); ax.set_title('line'); ax.set_xlabel('x (days)')",
    "import sys; print('a warning', file=sys.stderr)\n"
    "display(Markdown(f\"seed **{seed}**, tqdm disabled: {os.environ.get('TQDM_DISABLE')}\"))",
    "pathlib.Path(run_dir, 'metrics.json').write_text(json.dumps({'customers': 10, 'silhouette': 0.5}))\n"
    "pathlib.Path(run_dir, 'work').mkdir(exist_ok=True); pathlib.Path(run_dir, 'work', 'x.txt').write_text('x')",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    nbs = root / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "a_good.ipynb", GOOD)
    _tiny_notebook(nbs / "b_bad.ipynb", ["x = 1", "raise ValueError('unknown algorithm zzz')"])
    (root / "tx.csv").write_text("customer_id,timestamp,amount\n1,2024-01-01,5\n", encoding="utf-8")
    cfg = root / "cfg.yaml"
    cfg.write_text("run: {name: tiny, seed: 3}\ndata: {path: tx.csv}\n", encoding="utf-8")
    out = root / "reports"
    index = pipeline.run_pipeline(cfg, out_dir=out, progress=False, notebooks=["a_good"], notebooks_dir=nbs)
    return {"root": root, "nbs": nbs, "cfg": cfg, "out": out, "index": index}


# --------------------------------------------------------------------------- small pieces


def test_sha256_streamed(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert files.sha256_file(p, chunk=1) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_list_runs_newest_first_ignores_failed_and_tmp(tmp_path: Path) -> None:
    for name in ("2024-01-01_000000_aaaaaaaa", "2024-03-01_000000_bbbbbbbb", "failed-2024-04-01_000000_cccccccc",
                 ".tmp-dddddddd", "2024-05-01_000000_eeeeeeee"):
        (tmp_path / name).mkdir()
        if not name.startswith("2024-05"):  # a folder without index.html is not a finished run
            (tmp_path / name / "index.html").write_text("x")
    assert [p.name for p in runs.list_runs(tmp_path)] == ["2024-03-01_000000_bbbbbbbb", "2024-01-01_000000_aaaaaaaa"]
    assert [p.name for p in runs.list_failed_runs(tmp_path)] == ["failed-2024-04-01_000000_cccccccc"]


def test_formatting_helpers() -> None:
    assert report.fmt_value(1234567.8, "money") == "1,234,568"
    assert report.fmt_value(0.1234, "pct") == "12.3%"
    assert report.fmt_value([3, 5], "ratio") == "3 / 5"
    assert report.fmt_value(float("nan")) == "-"
    md = report.md_table(pl.DataFrame({"segment": ["A|B"], "n": [1200]}))
    assert md.splitlines() == ["| segment | n |", "|---|---:|", "| A\\|B | 1,200 |"]


def _tx() -> pl.DataFrame:
    ts = [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 20), dt.datetime(2024, 3, 9), dt.datetime(2024, 1, 5),
          dt.datetime(2024, 2, 2), dt.datetime(2024, 2, 10)]
    return pl.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c"], "timestamp": ts,
                         "amount": [10.0, -4.0, 6.0, 2.0, 3.0, 1.0], "order_id": ["1", "2", "3", "4", "5", "6"]})


def test_monthly_activity_hand_counted() -> None:
    m = activity.monthly_activity(_tx())
    # Jan: a and b buy (a's -4 is a return: counts in revenue, not in orders); Feb: c twice; Mar: a.
    assert m.rows() == [(dt.date(2024, 1, 1), 2, 2, 8.0), (dt.date(2024, 2, 1), 1, 2, 4.0), (dt.date(2024, 3, 1), 1, 1, 6.0)]


def test_resolve_config_path_from_notebooks_dir(monkeypatch) -> None:
    root = Path(pipeline.__file__).resolve().parents[2]
    monkeypatch.chdir(root / "notebooks")
    assert context.resolve_config_path("configs/default.yaml") == root / "configs" / "default.yaml"


# --------------------------------------------------------------------------- mechanics (tiny notebooks)


def test_tiny_run_folder(tiny) -> None:
    run = tiny["index"].parent
    assert runs.RUN_DIR_RE.match(run.name)
    assert {"a_good.ipynb", "a_good.html", "index.html", "manifest.json", "metrics.json"} <= {p.name for p in run.iterdir()}
    assert not (run / "work").exists(), "intermediate hand-off files must be removed"
    assert not list(tiny["out"].glob(".tmp-*"))
    man = json.loads((run / "manifest.json").read_text())
    assert man["configuration"]["run"]["seed"] == 3 and man["run_id"] in run.name
    inp = man["inputs"]["transactions"][0]
    assert inp["sha256"] == hashlib.sha256((tiny["root"] / "tx.csv").read_bytes()).hexdigest()
    assert {"python", "polars", "papermill"} <= set(man["versions"])
    assert dt.datetime.fromisoformat(man["finished"]) >= dt.datetime.fromisoformat(man["started"])
    html = (run / "a_good.html").read_text()
    assert 'class="jp-InputArea' not in html and "jp-InputPrompt" not in html.split("</style>")[-1]
    assert "Traceback" not in html and "a warning" not in html  # stderr is not for stakeholders
    assert html.count("<img") == 1 and "seed <strong>3</strong>, tqdm disabled: 1" in html
    assert not re.search(r'<script[^>]+src="https?://', html), "reports must open offline"
    top = (tiny["out"] / "index.html").read_text()
    assert f'{run.name}/index.html' in top


def test_failing_notebook_keeps_failed_folder_and_earlier_runs(tiny) -> None:
    before = runs.list_runs(tiny["out"])
    with pytest.raises(PipelineError) as err:
        pipeline.run_pipeline(tiny["cfg"], out_dir=tiny["out"], progress=False, notebooks=["a_good", "b_bad"],
                              notebooks_dir=tiny["nbs"])
    msg = str(err.value)
    assert "b_bad" in msg and "raise ValueError('unknown algorithm zzz')" in msg and "ValueError" in msg
    assert err.value.exit_code == 1
    failed = runs.list_failed_runs(tiny["out"])
    assert len(failed) == 1 and str(failed[0]) in msg
    nb = nbformat.read(failed[0] / "b_bad.ipynb", as_version=4)
    assert any("papermill-error-cell" in c.metadata.get("tags", []) or "An Exception was encountered" in c.source
               for c in nb.cells), "papermill's error banner is kept"
    assert runs.list_runs(tiny["out"]) == before  # earlier runs untouched, the failed one not listed
    top = (tiny["out"] / "index.html").read_text()
    assert before[0].name in top and "Failed or interrupted runs" in top
    assert not list(tiny["out"].glob(".tmp-*"))


def test_unknown_notebook_is_a_config_error(tiny) -> None:
    from segmentation_lib.errors import ConfigError

    with pytest.raises(ConfigError, match="report.notebooks names 'nope'"):
        pipeline.run_pipeline(tiny["cfg"], out_dir=tiny["out"], progress=False, notebooks=["nope"], notebooks_dir=tiny["nbs"])




RUN_SLOW = """import sys
from segmentation_lib import pipeline
try:
    pipeline.run_pipeline(sys.argv[1], out_dir=sys.argv[2], progress=False, notebooks=["c_slow"], notebooks_dir=sys.argv[3])
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_cell_kills_kernel_quietly(tiny, tmp_path, sig) -> None:
    """Stopping a run mid-cell: failed folder, no kernel left, and no kernel traceback (ZMQError) on stderr."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _tiny_notebook(nbs / "c_slow.ipynb", ["import pathlib, time\npathlib.Path(run_dir, 'started').write_text('x')\n"
                                          "time.sleep(120)"])
    out = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-c", RUN_SLOW, str(tiny["cfg"]), str(out), str(nbs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, tmp = time.monotonic() + 60, None
    while time.monotonic() < deadline and proc.poll() is None and tmp is None:
        tmp = next((p for p in out.glob(".tmp-*") if (p / "started").is_file()), None)
        time.sleep(0.05)
    assert tmp is not None, proc.communicate(timeout=30)
    run_id = tmp.name[len(runs.TMP_PREFIX):]
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stderr.strip() == "interrupted", stderr
    assert not list(out.glob(".tmp-*")) and runs.list_runs(out) == []
    failed = runs.list_failed_runs(out)
    assert len(failed) == 1 and "stopped during c_slow: interrupted" in (failed[0] / "FAILED.txt").read_text()
    time.sleep(0.3)
    assert kernel_pids(run_id) == set(), "the kernel outlived the interrupted run"


def test_summary_text_wording_follows_the_settings() -> None:
    m = {"customers": 1000, "transactions": 5000, "as_of": "2024-01-01", "n_clusters": 5, "algorithm": "hdbscan",
         "n_rfm_segments": 11, "silhouette": 0.3, "stability_ari_median": 0.7, "predictive_clusters": 0.1,
         "predictive_rfm": 0.4, "predictive_clusters_refit_k": 2, "outliers_flagged": 3, "validation": {}}
    text = stages.summary_text(m)
    assert "moderately stable when refitted (median ARI 0.70)" in text  # defaults 0.75 / 0.6
    assert "show weak structure (silhouette 0.30)" in text
    assert "3 outlier customer(s) (highest net spend) were left out of fitting" in text
    assert "hdbscan found 2 segments instead of 5" in text
    m["validation"] = {"stable_threshold": 0.7, "doubtful_threshold": 0.5}
    assert "segments are stable when refitted" in stages.summary_text(m)
    m["validation"] = {"stable_threshold": 0.9, "doubtful_threshold": 0.8}
    assert "segments are doubtful when refitted" in stages.summary_text(m)
    m.update(outliers_flagged=0, outliers_excluded=4, predictive_clusters_refit_k=5)
    text = stages.summary_text(m)
    assert "4 outlier customer(s) (highest net spend) were excluded from every table" in text
    assert "left out of fitting" not in text and "instead of" not in text


def test_kernel_registered_for_this_python() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    name = pipeline.ensure_kernel()
    spec = KernelSpecManager().get_kernel_spec(name)
    assert Path(spec.argv[0]).resolve() == Path(__import__("sys").executable).resolve()


# --------------------------------------------------------------------------- the whole pipeline on demo data


EXPECTED_IMAGES = {"01_exploration": 3, "02_rfm": 4, "03_clustering": 5, "04_validation": 4}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from segmentation_lib.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("demo")
    write_demo_data(root / "data", n_customers=2000, seed=7)
    cfg = root / "cfg.yaml"
    cfg.write_text(
        "run: {name: test-demo, seed: 7}\n"
        "data: {path: data/transactions.parquet, customers: {path: data/customers.parquet}, truth: data/truth.parquet}\n"
        "clustering: {k_range: [2, 8], metric_sample_size: 2000}\n"
        "validation: {n_resamples: 3, sample_size: 2000}\n", encoding="utf-8")
    index = pipeline.run_pipeline(cfg, out_dir=root / "reports", progress=False)
    return {"root": root, "cfg": cfg, "index": index, "out": root / "reports"}


@pytest.mark.slow
def test_demo_run_outputs(demo_run) -> None:
    run = demo_run["index"].parent
    names = {p.name for p in run.iterdir()}
    for nb in EXPECTED_IMAGES:
        assert {f"{nb}.ipynb", f"{nb}.html"} <= names
    assert {"index.html", "assignments.parquet", "model.joblib", "metrics.json", "manifest.json",
            "data_quality.json", "rfm_edges.json", "segment_rules.sql"} <= names
    a = pl.read_parquet(run / "assignments.parquet")
    assert a["customer_id"].n_unique() == a.height == json.loads((run / "metrics.json").read_text())["customers"]
    assert {"rfm_segment", "value_engagement", "tier", "cluster", "cluster_name"} <= set(a.columns)
    assert a.select(pl.col("cluster", "cluster_name", "rfm_segment").null_count()).sum_horizontal().item() == 0
    m = json.loads((run / "metrics.json").read_text())
    assert 1800 <= m["customers"] <= 2000
    assert 3 <= m["n_clusters"] <= 8
    assert 0.1 < m["silhouette"] <= 1
    assert 0.5 <= m["stability_ari_median"] <= 1
    assert 0 < m["predictive_clusters"] < 1 and 0 < m["predictive_rfm"] < 1
    assert m["ground_truth_ari"] > 0.5
    for nb, n_img in EXPECTED_IMAGES.items():
        html = (run / f"{nb}.html").read_text()
        body = html.split("</style>")[-1]
        assert "jp-CodeMirrorEditor" not in body and 'class="highlight' not in body, nb  # no code cells
        assert "from segmentation_lib" not in body and "stages." not in body, nb
        assert "Traceback" not in body and "application/vnd.jupyter.stderr" not in body, nb
        assert "Error" not in re.sub(r"<style.*?</style>|<script.*?</script>", "", html, flags=re.S), nb
        assert html.count("<img") >= n_img, (nb, html.count("<img"))
    man = json.loads((run / "manifest.json").read_text())
    assert man["row_counts"]["assignments.parquet"] == a.height and man["inputs"]["transactions"][0]["sha256"]


@pytest.mark.slow
def test_demo_run_is_repeatable_and_failure_is_clear(demo_run) -> None:
    first = demo_run["index"].parent
    second = pipeline.run_pipeline(demo_run["cfg"], out_dir=demo_run["out"], progress=False).parent
    assert pl.read_parquet(first / "assignments.parquet").equals(pl.read_parquet(second / "assignments.parquet"))
    m1, m2 = (json.loads((p / "metrics.json").read_text()) for p in (first, second))
    flat = lambda m: {k: v for k, v in {**m, **m.pop("validation")}.items()  # noqa: E731
                      if isinstance(v, (int, float))}
    assert flat(dict(m1))["migration_changed_share"] == flat(dict(m2))["migration_changed_share"]
    assert flat(dict(m1)) == pytest.approx(flat(dict(m2)), rel=1e-9)  # BLAS threads: last-digit noise only
    bad = demo_run["root"] / "bad.yaml"
    # a misspelt setting stops the run before any notebook (no folder at all) ...
    bad.write_text(demo_run["cfg"].read_text().replace("k_range", "algorithm: kmeanz, k_range"), encoding="utf-8")
    with pytest.raises(ConfigError, match="clustering.algorithm is 'kmeanz'"):
        pipeline.run_pipeline(bad, out_dir=demo_run["out"], progress=False)
    assert not runs.list_failed_runs(demo_run["out"]) and not list(demo_run["out"].glob(".tmp-*"))
    # ... a problem found inside a notebook leaves a failed-... folder with the executed notebook
    bad.write_text(demo_run["cfg"].read_text().replace("k_range", "features: [no_such_feature], k_range"),
                   encoding="utf-8")
    with pytest.raises(SegmentationError, match="no_such_feature"):
        pipeline.run_pipeline(bad, out_dir=demo_run["out"], progress=False)
    assert [p.name for p in runs.list_runs(demo_run["out"])] == sorted([first.name, second.name], reverse=True)
    assert (runs.list_failed_runs(demo_run["out"])[0] / "03_clustering.ipynb").is_file()
