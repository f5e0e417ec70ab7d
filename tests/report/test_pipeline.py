"""segmentation_lib.report.pipeline: run folders, manifest, HTML, failure handling (tiny notebooks); and the
whole pipeline on demo data (the session's ``demo_run`` and the ``review_project``)."""
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

from segmentation_lib.report import pipeline
from segmentation_lib.report import runs
from segmentation_lib.report import stages
from segmentation_lib.errors import ConfigError, PipelineError, SegmentationError
from tests.conftest import kernel_pids

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


def test_overrides_reach_the_notebooks_and_the_manifest(tiny) -> None:
    import yaml

    other = tiny["root"] / "tx2.csv"
    other.write_text("customer_id,timestamp,amount\n2,2024-02-01,7\n", encoding="utf-8")
    over = {"run": {"seed": 11, "as_of": "today"}, "data": {"path": str(other)}, "report": {"keep_work": True}}
    index = pipeline.run_pipeline(tiny["cfg"], out_dir=tiny["root"] / "reports-over", progress=False,
                                  notebooks=["a_good"], notebooks_dir=tiny["nbs"], overrides=over)
    run = index.parent
    effective = yaml.safe_load((run / pipeline.RUN_CONFIG).read_text())
    assert effective["run"]["seed"] == 11 and effective["run"]["as_of"] == "today" and effective["data"]["path"] == str(other)
    assert "seed <strong>11</strong>" in (run / "a_good.html").read_text()  # the notebooks read the overridden value
    man = json.loads((run / "manifest.json").read_text())
    assert man["config_overrides"] == over and man["configuration"]["run"]["seed"] == 11
    assert man["inputs"]["transactions"][0]["path"].endswith("tx2.csv")
    assert not (tiny["index"].parent / pipeline.RUN_CONFIG).exists()  # no overrides: no extra file
    assert (run / "work" / "x.txt").read_text() == "x"  # report.keep_work: the hand-off files stay for the lab
    with pytest.raises(ConfigError, match="report.keep_work is 'yes'"):
        pipeline.run_pipeline(tiny["cfg"], out_dir=tiny["root"] / "reports-bad", progress=False, notebooks=["a_good"],
                              notebooks_dir=tiny["nbs"], overrides={"report": {"keep_work": "yes"}})
    assert json.loads((tiny["index"].parent / "manifest.json").read_text())["config_overrides"] == {}


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
from segmentation_lib.report import pipeline
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


def test_kernel_registered_for_this_python() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    name = pipeline.ensure_kernel()
    spec = KernelSpecManager().get_kernel_spec(name)
    assert Path(spec.argv[0]).resolve() == Path(__import__("sys").executable).resolve()


# --------------------------------------------------------------------------- the whole pipeline on demo data


EXPECTED_IMAGES = {"01_exploration": 3, "02_rfm": 4, "03_clustering": 5, "04_validation": 4, "05_value": 2}


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
    dq = json.loads((run / "data_quality.json").read_text())
    assert man["as_of"] == {"date": dq["as_of"][:10], "chosen": "the day after the last transaction (run.as_of: null)"}


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


@pytest.mark.slow
def test_return_only_customer_and_attribute_rule_run_end_to_end(review_project):
    index = pipeline.run_pipeline(review_project / "cfg.yaml", out_dir=review_project / "reports", progress=False)
    a = pl.read_parquet(index.parent / "assignments.parquet")
    ret = a.filter(pl.col("customer_id") == "RET1").row(0, named=True)
    assert ret["cluster"] == stages.NO_PURCHASE_LABEL and ret["cluster_name"] == stages.NO_PURCHASE_NAME
    assert a["customer_id"].n_unique() == a.height == 1501
    assert set(a["tier"].unique()) == {"Premium", "Bronze"}
